"""The Toy tensor language compiler, after the MLIR Toy tutorial (https://mlir.llvm.org/docs/Tutorials/Toy/).

Pipeline (chapter of the tutorial in brackets):
  lexer.py, parser.py, ast.py   source -> AST and the toyc AST dump            [Ch1, structs Ch7]
  ir.py                         Toy IR: types, attributes, operations, verifier [Ch2, Ch4, Ch7]
  irgen.py                      AST -> Toy IR                                  [Ch2, Ch7]
  printer.py, mlir_parser.py    MLIR textual form (custom and generic syntax)  [Ch2]
  passes/                       canonicalize, inline, shape inference, CSE, DCE [Ch3, Ch4, Ch7];
                                loop fusion, scalar replacement on the loops   [Ch5]
  affine.py, lower_to_affine.py loop IR (affine/memref/arith) and Toy -> loops [Ch5; matmul ours]
  lower_to_llvm.py, jit.py      loops -> LLVM IR (llvmlite), -O3, MCJIT        [Ch6]
  driver.py, cli.py             the toyc-style command (`gpufleet toyc`, `toyc`)
"""
