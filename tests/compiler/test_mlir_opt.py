"""Our `-emit=mlir-affine` output is real MLIR: LLVM 19's `mlir-opt` (Debian package mlir-19-tools) reads it
and lowers it to the LLVM dialect without error. Skipped, with a message, where mlir-opt is not installed.

toy.print is not an op of any dialect mlir-opt knows, so the output is printed with `--generic-toy-print`
(`"toy.print"(%m) : (memref<..>) -> ()`) and read with `--allow-unregistered-dialect`, as upstream's test
setup does; after lowering, toy.print is the only op left outside the LLVM dialect (with the
unrealized cast that feeds it its memref)."""

import os
import re
import shutil
import subprocess

import pytest

from gpufleet.compiler.driver import compile_text

from .test_lowering import MATMUL, TUTORIAL


def find_mlir_opt():
    for candidate in (os.environ.get("MLIR_OPT"), "mlir-opt-19", "mlir-opt", "/usr/lib/llvm-19/bin/mlir-opt"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


MLIR_OPT = find_mlir_opt()
pytestmark = pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt not found (apt-get install mlir-19-tools, "
                                                         "or set MLIR_OPT)")
PIPELINE = ["--lower-affine", "--convert-scf-to-cf", "--convert-arith-to-llvm", "--finalize-memref-to-llvm",
            "--convert-func-to-llvm", "--reconcile-unrealized-casts"]
RESHAPE_AND_GLOBAL = ("def main() {\n  var a = [" + ", ".join(str(i) for i in range(300)) + "];\n"
                      "  var b<20, 15> = a;\n  var c<15, 20> = b + b;\n  var s<4, 4> = 1.5;\n"
                      "  print(matmul(c, b));\n  print(s);\n}\n")


def examples(toy_tests):
    yield "Ch5/affine-lowering.mlir", (toy_tests / "Ch5" / "affine-lowering.mlir").read_text()
    for name in ("codegen.toy", "transpose_transpose.toy", "trivial_reshape.toy", "scalar.toy"):
        yield f"Ch5/{name}", (toy_tests / "Ch5" / name).read_text()
    yield "Ch7/struct-codegen.toy", (toy_tests / "Ch7" / "struct-codegen.toy").read_text()
    yield "tutorial.toy", TUTORIAL
    yield "matmul.toy", MATMUL
    yield "reshape_and_global.toy", RESHAPE_AND_GLOBAL


def mlir_opt(text, *flags):
    return subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", *flags], input=text, capture_output=True,
                          text=True, timeout=60)


def test_mlir_opt_accepts_our_affine_output_and_lowers_it_to_llvm(toy_tests):
    checked = 0
    for name, source in examples(toy_tests):
        for opt in (False, True):
            result = compile_text(source, name, emit="mlir-affine", opt=opt, generic_print=True)
            assert result.exit_code == 0, (name, result.diagnostics)
            assert "affine.for" in result.output or "affine.store" in result.output, name
            parsed = mlir_opt(result.output)  # parse + verify, printed back
            assert parsed.returncode == 0, (name, opt, parsed.stderr)
            lowered = mlir_opt(result.output, *PIPELINE)
            assert lowered.returncode == 0, (name, opt, lowered.stderr)
            assert "llvm.func @main()" in lowered.stdout, name
            ops = set(re.findall(r"(?:= |^\s+)\"?([a-z_]+\.[a-z_.]+)", lowered.stdout, re.M))
            assert ops <= {"llvm." + op.split("llvm.", 1)[1] for op in ops if "llvm." in op} | {
                "toy.print", "builtin.unrealized_conversion_cast"}, (name, ops)
            checked += 1
    assert checked == 18


def test_custom_toy_print_is_what_the_upstream_test_checks(toy_tests):
    """Without --generic-toy-print the output matches toyc's (toy.print in the dialect's syntax)."""
    source = (toy_tests / "Ch5" / "affine-lowering.mlir").read_text()
    text = compile_text(source, "a.mlir", emit="mlir-affine").output
    assert re.search(r"^\s+toy.print %alloc : memref<3x2xf64>$", text, re.M)
