"""The toyc driver: read a file, run the pipeline up to the requested `-emit` stage, return the text
(MLIR Toy tutorial, toyc.cpp of each chapter; `--chapter N` selects the behaviour of toyc-chN).

Chapter differences we reproduce: before Chapter 7 an empty file is reported as a parse error (and the
empty module is still dumped, exit status 0, as toyc-ch1..6 do); functions other than main are private
from Chapter 4 on; `-opt` is the canonicalizer alone in Chapter 3 and inline + shape inference +
canonicalize + CSE from Chapter 4 on; Chapter 7 types a function's result and a call by the returned
value.

Lowering (Chapters 5 and 6): `-emit=mlir-affine` (from Chapter 5) and `-emit=mlir-llvm|llvm|jit` (from
Chapter 6) always run inline + shape inference + canonicalize + CSE first, then lower `main` to affine
loops; `-opt` adds loop fusion and scalar replacement on the loops (and LLVM's -O3 for llvm and jit).
`-emit=mlir-affine` prints the loops in MLIR's affine/memref/arith form; `-emit=mlir-llvm` prints the
LLVM IR our lowering builds (verified by LLVM through llvmlite) before LLVM's optimiser; `-emit=llvm`
prints it after (-O3 with `-opt`); `-emit=jit` runs main and returns what it printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gpufleet.errors import GpufleetError

from . import ast as toy_ast
from .diagnostics import CompileError, Location, SourceFile
from .ir import verify
from .irgen import generate
from .mlir_parser import parse_mlir
from .parser import parse_toy
from .passes import optimize
from .printer import print_module

EMIT_CHOICES = ("ast", "mlir", "mlir-affine", "mlir-llvm", "llvm", "jit")
FIRST_CHAPTER = {"ast": 1, "mlir": 2, "mlir-affine": 5, "mlir-llvm": 6, "llvm": 6, "jit": 6}
LOWERED = ("mlir-affine", "mlir-llvm", "llvm", "jit")
LATEST_CHAPTER = 7


class ToycUsageError(GpufleetError):
    """A bad command line or unreadable input (exit status 2)."""


@dataclass
class Result:
    output: str = ""
    diagnostics: list[str] = field(default_factory=list)
    exit_code: int = 0


def compile_text(text: str, filename: str, emit: str = "mlir", opt: bool = False, input_kind: str | None = None,
                 chapter: int = LATEST_CHAPTER, generic_print: bool = False) -> Result:
    """Run toyc on `text`. Compile errors come back as diagnostics with exit code 1."""
    if not 1 <= chapter <= LATEST_CHAPTER:
        raise ToycUsageError(f"--chapter must be between 1 and {LATEST_CHAPTER}, got {chapter}")
    if emit not in EMIT_CHOICES:
        raise ToycUsageError(f"unknown -emit={emit}; choose one of {', '.join(EMIT_CHOICES)}")
    if chapter == 1 and emit != "ast":
        raise ToycUsageError("chapter 1 toyc only supports -emit=ast")
    if chapter < FIRST_CHAPTER[emit]:
        raise ToycUsageError(f"-emit={emit} needs chapter {FIRST_CHAPTER[emit]} or later (got --chapter {chapter})")
    if opt and chapter < 3:
        raise ToycUsageError(f"-opt needs chapter 3 or later (got --chapter {chapter})")
    if input_kind is None:
        input_kind = "mlir" if filename.endswith(".mlir") else "toy"
    if input_kind not in ("toy", "mlir"):
        raise ToycUsageError(f"unknown input kind -x {input_kind}; choose toy or mlir")
    if input_kind == "mlir" and chapter == 1:
        raise ToycUsageError("chapter 1 toyc reads only Toy source")
    result = Result()
    try:
        if input_kind == "toy":
            module_ast, warnings = parse_toy(text, filename, allow_empty_module=chapter >= 7)
            result.diagnostics += [w.render() for w in warnings]
            if emit == "ast":
                result.output = toy_ast.dump(module_ast)
                return result
            module = generate(module_ast, chapter)
        else:
            if emit == "ast":
                raise ToycUsageError("can't dump a Toy AST when the input is MLIR")
            module = parse_mlir(text, filename)
        verify(module)
        if opt or emit in LOWERED:
            optimize(module, chapter)
            verify(module)
        if emit in LOWERED:
            result.output = lower(module, emit, opt, generic_print)
        else:
            result.output = print_module(module)
    except CompileError as err:
        if err.location is None:
            err.location = Location(filename, 1, 1)
            err.args = (err.render(),)
        result.diagnostics.append(err.with_source(SourceFile(filename, text)).render())
        result.exit_code = 1
    except RecursionError:
        result.diagnostics.append(f"{filename}: error: input nested too deeply to compile")
        result.exit_code = 1
    return result


def lower(module, emit: str, opt: bool, generic_print: bool = False) -> str:
    """Lower an optimised Toy module to loops and on to LLVM (Chapters 5, 6); return the text to print."""
    from .affine import print_affine_module
    from .lower_to_affine import lower_to_affine
    from .passes.loop_fusion import fuse_loops
    from .passes.scalar_replacement import scalar_replace

    loops = lower_to_affine(module)
    if opt:  # fusion and scalar replacement enable each other (a forwarded store frees a producer)
        while fuse_loops(loops) | scalar_replace(loops):
            pass
    if emit == "mlir-affine":
        return print_affine_module(loops, generic_print)
    from . import jit
    from .lower_to_llvm import lower_to_llvm

    triple, layout = jit.host_triple_and_layout()
    llvm_module = lower_to_llvm(loops, triple, layout)
    parsed = jit.parse_and_verify(llvm_module)
    if emit == "mlir-llvm":
        return str(llvm_module)
    if opt:
        jit.optimise(parsed, 3)
    if emit == "llvm":
        return str(parsed)
    return jit.run_main(parsed)


def compile_file(path: str, **options) -> Result:
    if path == "-":
        import sys
        return compile_text(sys.stdin.read(), "<stdin>", **options)
    if not os.path.isfile(path):
        raise ToycUsageError(f"could not open input file {path}: no such file")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ToycUsageError(f"could not read input file {path}: {exc}") from None
    return compile_text(text, path, **options)
