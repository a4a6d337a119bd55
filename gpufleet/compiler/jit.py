"""LLVM IR through llvmlite: parse and verify, optimise, and run `main` in a JIT (MLIR Toy tutorial,
Chapter 6 "Lowering to LLVM and CodeGeneration": toyc's `dumpLLVMIR` optimises at -O3 with `-opt`, and
`runJit` runs main in MLIR's ExecutionEngine; here llvmlite's MCJIT does the same).

`main` prints with the C library's printf; run_main captures what it writes to file descriptor 1
(through a temporary file) and returns it as text, so the caller decides where it goes.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from functools import lru_cache

import llvmlite.binding as llvm
from llvmlite import ir

from .diagnostics import CompileError


@lru_cache(maxsize=None)
def _initialise() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()


def new_target_machine(opt: int = 2) -> llvm.TargetMachine:
    """The host's target machine (its CPU and features, so the vectoriser may use them)."""
    _initialise()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(), opt=opt, jit=True)


@lru_cache(maxsize=None)
def target_machine() -> llvm.TargetMachine:
    """One shared target machine for the triple, data layout and pass pipelines (never given to a JIT,
    which takes ownership of its own)."""
    return new_target_machine()


def host_triple_and_layout() -> tuple[str, str]:
    tm = target_machine()
    return tm.triple, str(tm.target_data)


def parse_and_verify(module: ir.Module) -> llvm.ModuleRef:
    """Hand the module to LLVM: parse its text and run LLVM's verifier (errors are compiler bugs)."""
    _initialise()
    try:
        parsed = llvm.parse_assembly(str(module))
        parsed.verify()
    except RuntimeError as exc:  # pragma: no cover - a bug in our lowering
        raise CompileError(None, f"internal error: LLVM rejected the generated IR: {exc}") from None
    return parsed


def optimise(module: llvm.ModuleRef, level: int = 3) -> llvm.ModuleRef:
    """LLVM's default -O<level> module pipeline (new pass manager)."""
    tm = target_machine()
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    builder = llvm.create_pass_builder(tm, options)
    builder.getModulePassManager().run(module, builder)
    module.verify()
    return module


def _libc():
    return ctypes.CDLL(None)


class CompiledMain:
    """`void main()` of a module, compiled to machine code by MCJIT (keeps the engine alive)."""

    def __init__(self, module: llvm.ModuleRef):
        self.engine = llvm.create_mcjit_compiler(module, new_target_machine())
        self.engine.finalize_object()
        address = self.engine.get_function_address("main")
        if not address:
            raise CompileError(None, "no 'main' function to run")
        self.entry = ctypes.CFUNCTYPE(None)(address)

    def __call__(self) -> str:
        """Run main; return what it printed to stdout."""
        libc = _libc()
        sys.stdout.flush()
        libc.fflush(None)
        saved = os.dup(1)
        with tempfile.TemporaryFile() as capture:
            try:
                os.dup2(capture.fileno(), 1)
                self.entry()
                libc.fflush(None)
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            capture.seek(0)
            return capture.read().decode("utf-8", "replace")


def run_main(module: llvm.ModuleRef) -> str:
    """JIT-compile `module`, call `void main()`, return what it printed to stdout."""
    return CompiledMain(module)()
