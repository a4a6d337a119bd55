"""Lower the affine loop IR to LLVM IR with llvmlite (MLIR Toy tutorial, Chapter 6 "Lowering to LLVM and
CodeGeneration": LowerToLLVM.cpp, and toyc's `dumpLLVMIR`, which optimises the module at -O3 with `-opt`).

Rules, as the tutorial's full lowering produces them:
  * `memref.alloc` -> `malloc` of the buffer's bytes, `memref.dealloc` -> `free`; memrefs have static
    shapes, so a memref is just a pointer to its row-major f64 data; `memref.get_global` -> a private
    constant global array;
  * `affine.for` -> a counted loop (a phi for the induction variable), `affine.load`/`affine.store` ->
    getelementptr at the row-major offset + load/store, `arith.mulf`/`arith.addf` -> fmul/fadd,
    `arith.constant` -> a double constant;
  * `toy.print` -> a loop nest over the shape calling `printf("%f ", element)` for each element and
    `printf("\\n")` after each run of the inner loops (so a 2x2 tensor prints two lines, a vector one line
    without a newline, as toyc's PrintOpLowering does), with the format strings as private globals;
  * `return` -> `ret void`; the module gets the host's target triple and data layout.
"""

from __future__ import annotations

from llvmlite import ir

from . import affine as A

DOUBLE = ir.DoubleType()
I64 = ir.IntType(64)
I32 = ir.IntType(32)
I8 = ir.IntType(8)
PTR = ir.PointerType()


def _cstring(module: ir.Module, name: str, text: str) -> ir.GlobalVariable:
    data = bytearray(text.encode() + b"\0")
    var = ir.GlobalVariable(module, ir.ArrayType(I8, len(data)), name)
    var.linkage = "internal"
    var.global_constant = True
    var.initializer = ir.Constant(ir.ArrayType(I8, len(data)), data)
    return var


class LLVMLowering:
    def __init__(self, module: A.AModule, triple: str = "", data_layout: str = ""):
        self.amodule = module
        self.module = ir.Module(name="toy")
        if triple:
            self.module.triple = triple
        if data_layout:
            self.module.data_layout = data_layout
        self.printf = ir.Function(self.module, ir.FunctionType(I32, [PTR], var_arg=True), "printf")
        self.malloc = ir.Function(self.module, ir.FunctionType(PTR, [I64]), "malloc")
        self.free = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR]), "free")
        self.format_spec = _cstring(self.module, "frmt_spec", "%f ")
        self.newline = _cstring(self.module, "nl", "\n")
        self.globals: dict[str, ir.GlobalVariable] = {}
        for g in module.globals:
            self.globals[g.name] = self.global_array(g)
        self.values: dict[int, ir.Value] = {}

    def global_array(self, g: A.Global) -> ir.GlobalVariable:
        import struct
        count = len(g.values)
        data = bytearray(struct.pack(f"<{count}d", *g.values))
        type_ = ir.ArrayType(I8, len(data))
        var = ir.GlobalVariable(self.module, type_, g.name)
        var.linkage = "private"
        var.global_constant = True
        var.align = 16
        var.initializer = ir.Constant(type_, data)
        return var

    # -- values ----------------------------------------------------------------------------------
    def value(self, v: A.AValue) -> ir.Value:
        return self.values[id(v)]

    def index(self, builder: ir.IRBuilder, expr) -> ir.Value:
        if isinstance(expr, int):
            return ir.Constant(I64, expr)
        if isinstance(expr, A.AValue):
            return self.value(expr)
        if isinstance(expr, ir.Value):  # an induction variable of a print loop
            return expr
        kind, a, b = expr
        lhs = self.index(builder, a)
        if kind == "add":
            return builder.add(lhs, self.index(builder, b))
        rhs = ir.Constant(I64, b)
        return {"mul": builder.mul, "floordiv": builder.sdiv, "mod": builder.srem}[kind](lhs, rhs)

    def address(self, builder: ir.IRBuilder, memref: A.AValue, indices: tuple) -> ir.Value:
        shape = memref.type.shape
        offset = None
        stride = 1
        for dim, expr in zip(reversed(shape), reversed(indices)):
            term = self.index(builder, expr)
            if stride != 1:
                term = builder.mul(term, ir.Constant(I64, stride))
            offset = term if offset is None else builder.add(offset, term)
            stride *= dim
        if offset is None:
            return self.value(memref)
        return builder.gep(self.value(memref), [offset], inbounds=True, source_etype=DOUBLE)

    # -- ops -------------------------------------------------------------------------------------
    def loop(self, builder: ir.IRBuilder, lower: int, upper: int, emit_body) -> ir.IRBuilder:
        """Emit `for iv in [lower, upper)`; emit_body(builder, iv) fills the body."""
        if upper <= lower:
            return builder
        func = builder.function
        pre = builder.block
        header = func.append_basic_block("loop")
        exit_block = func.append_basic_block("loop.end")
        builder.branch(header)
        builder.position_at_end(header)
        iv = builder.phi(I64)
        iv.add_incoming(ir.Constant(I64, lower), pre)
        emit_body(builder, iv)
        latch = builder.block
        step = builder.add(iv, ir.Constant(I64, 1), flags=["nsw", "nuw"])
        iv.add_incoming(step, latch)
        builder.cbranch(builder.icmp_signed("<", step, ir.Constant(I64, upper)), header, exit_block)
        builder.position_at_end(exit_block)
        return builder

    def emit_block(self, builder: ir.IRBuilder, body: list) -> None:
        for op in body:
            self.emit(builder, op)

    def emit(self, builder: ir.IRBuilder, op) -> None:
        if isinstance(op, A.Constant):
            self.values[id(op.result)] = ir.Constant(DOUBLE, op.value)
        elif isinstance(op, A.Alloc):
            size = max(A.memref_elements(op.type), 1) * 8
            self.values[id(op.result)] = builder.call(self.malloc, [ir.Constant(I64, size)])
        elif isinstance(op, A.GetGlobal):
            self.values[id(op.result)] = self.globals[op.name]
        elif isinstance(op, A.Dealloc):
            builder.call(self.free, [self.value(op.memref)])
        elif isinstance(op, A.Load):
            pointer = self.address(builder, op.memref, op.indices)
            self.values[id(op.result)] = builder.load(pointer, typ=DOUBLE, align=8)
        elif isinstance(op, A.Store):
            pointer = self.address(builder, op.memref, op.indices)
            builder.store(self.value(op.value), pointer, align=8)
        elif isinstance(op, A.Arith):
            fn = builder.fmul if op.kind == "mulf" else builder.fadd
            self.values[id(op.result)] = fn(self.value(op.lhs), self.value(op.rhs))
        elif isinstance(op, A.For):
            def body(b, iv, op=op):
                self.values[id(op.iv)] = iv
                self.emit_block(b, op.body)
            self.loop(builder, op.lower, op.upper, body)
        elif isinstance(op, A.Print):
            self.emit_print(builder, op.memref)
        elif isinstance(op, A.Return):
            builder.ret_void()
        else:  # pragma: no cover
            raise TypeError(f"unknown loop-IR op {op!r}")

    def emit_print(self, builder: ir.IRBuilder, memref: A.AValue) -> None:
        shape = memref.type.shape
        ivs: list = []

        def level(b: ir.IRBuilder, depth: int) -> None:
            if depth == len(shape):
                element = b.load(self.address(b, memref, tuple(ivs)), typ=DOUBLE, align=8)
                b.call(self.printf, [self.format_spec, element])
                return

            def body(bb, iv):
                ivs.append(iv)
                level(bb, depth + 1)
                ivs.pop()
                if depth != len(shape) - 1:
                    bb.call(self.printf, [self.newline])
            self.loop(b, 0, shape[depth], body)
        level(builder, 0)

    def lower(self) -> ir.Module:
        for func in self.amodule.functions:
            fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), []), func.name)
            builder = ir.IRBuilder(fn.append_basic_block("entry"))
            self.values = {}
            self.emit_block(builder, func.body)
        return self.module


def lower_to_llvm(module: A.AModule, triple: str = "", data_layout: str = "") -> ir.Module:
    return LLVMLowering(module, triple, data_layout).lower()
