"""Toy compiler: compile-plus-run time of the tutorial examples and of a 512 x 512 matmul-and-transpose
program (`gpufleet toyc -emit=jit -opt`), against numpy doing the same computation in the same run.

For each program the compiler's time is split into stages: front end (lex, parse, IR generation, verify,
inline/shape inference/canonicalize/CSE), lowering (affine loops, fusion and scalar replacement, LLVM IR
through llvmlite, LLVM's parse + verify), LLVM -O3, machine code (MCJIT), and running main. The baseline
is numpy computing the same values, and numpy computing them and formatting the same text ("%f " per
element, rows on lines) that the compiled program prints. Outputs are checked equal before timing.
Medians of several repeats. Run: ``.venv/bin/python bench/toy.py [--size N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gpufleet.compiler import jit
from gpufleet.compiler.ir import verify
from gpufleet.compiler.irgen import generate
from gpufleet.compiler.lower_to_affine import lower_to_affine
from gpufleet.compiler.lower_to_llvm import lower_to_llvm
from gpufleet.compiler.parser import parse_toy
from gpufleet.compiler.passes import optimize
from gpufleet.compiler.passes.loop_fusion import fuse_loops
from gpufleet.compiler.passes.scalar_replacement import scalar_replace

# The tutorial's example programs (Chapters 1-6 of the MLIR Toy tutorial; the shape-error call of the
# Chapter 1 example left out so that it runs), each with numpy computing what it prints.
A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
TUTORIAL = {
    "ch1 multiply_transpose": ("""
def multiply_transpose(a, b) {
  return transpose(a) * transpose(b);
}
def main() {
  var a = [[1, 2, 3], [4, 5, 6]];
  var b<2, 3> = [1, 2, 3, 4, 5, 6];
  var c = multiply_transpose(a, b);
  var d = multiply_transpose(b, a);
  var e = multiply_transpose(c, d);
  print(d);
  print(e);
}
""", lambda: [A.T * A.T, (A.T * A.T).T * (A.T * A.T).T]),
    "ch3 transpose_transpose": ("""
def transpose_transpose(x) {
  return transpose(transpose(x));
}
def main() {
  var a = [[1, 2, 3], [4, 5, 6]];
  var b = transpose_transpose(a);
  print(b);
}
""", lambda: [A.T.T]),
    "ch3 trivial_reshape": ("""
def main() {
  var a<2,1> = [1, 2];
  var b<2,1> = a;
  var c<2,1> = b;
  print(c);
}
""", lambda: [np.array([1.0, 2.0]).reshape(2, 1)]),
    "ch5 affine example": ("""
def main() {
  var a = [[1, 2, 3], [4, 5, 6]];
  var b = transpose(a);
  print(b * b);
}
""", lambda: [A.T * A.T]),
    "ch6 jit example": ("def main() {\n  print([[1, 2], [3, 4]]);\n}\n",
                        lambda: [np.array([[1.0, 2.0], [3.0, 4.0]])]),
}


def toyc_format(arrays: list) -> str:
    """What toyc's printf lowering writes for each printed rank-2 array."""
    return "".join("".join(" ".join("%f" % v for v in row) + " \n" for row in a) for a in arrays)


def literal(matrix: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join("%d" % v for v in row) + "]" for row in matrix) + "]"


def compile_and_run(source: str) -> tuple[str, dict]:
    """toyc -emit=jit -opt, stage by stage (as driver.compile_text does), timing each stage."""
    times = {}
    t0 = time.perf_counter()
    module_ast, _ = parse_toy(source, "bench.toy")
    module = generate(module_ast)
    verify(module)
    optimize(module, 7)
    verify(module)
    t1 = time.perf_counter()
    loops = lower_to_affine(module)
    while fuse_loops(loops) | scalar_replace(loops):
        pass
    triple, layout = jit.host_triple_and_layout()
    parsed = jit.parse_and_verify(lower_to_llvm(loops, triple, layout))
    t2 = time.perf_counter()
    jit.optimise(parsed, 3)
    t3 = time.perf_counter()
    compiled = jit.CompiledMain(parsed)
    t4 = time.perf_counter()
    output = compiled()
    t5 = time.perf_counter()
    times.update(front=t1 - t0, lower=t2 - t1, llvm_opt=t3 - t2, codegen=t4 - t3, run=t5 - t4, total=t5 - t0)
    return output, times


def median_times(source: str, repeats: int) -> tuple[str, dict]:
    runs = [compile_and_run(source) for _ in range(repeats)]
    output = runs[0][0]
    return output, {k: statistics.median(r[1][k] for r in runs) for k in runs[0][1]}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def report(name: str, times: dict, numpy_compute: float, numpy_with_text: float) -> None:
    stages = " ".join(f"{times[k] * 1e3:8.1f}" for k in ("front", "lower", "llvm_opt", "codegen", "run"))
    print(f"{name:<26} {stages} {times['total'] * 1e3:9.1f} {numpy_compute * 1e3:9.3f} "
          f"{numpy_with_text * 1e3:9.2f} {times['total'] / numpy_with_text:9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="matrix size of the matmul program (512)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per figure; medians are printed")
    args = parser.parse_args()

    print("toyc -emit=jit -opt: compile-plus-run time against numpy (ms, medians)")
    print(f"{'program':<26} {'front':>8} {'lower':>8} {'llvm-O3':>8} {'codegen':>8} {'run':>8} "
          f"{'toyc':>9} {'np calc':>9} {'np+text':>9} {'ratio':>9}")
    for name, (source, expected) in TUTORIAL.items():
        output, times = median_times(source, args.repeats)
        assert output == toyc_format(expected()), (name, output)
        report(name, times, best_of(expected, 50), best_of(lambda e=expected: toyc_format(e()), 50))

    n = args.size
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, (n, n)).astype(float), rng.integers(0, 10, (n, n)).astype(float)
    source = (f"def main() {{\n  var a = {literal(a)};\n  var b = {literal(b)};\n"
              f"  print(transpose(matmul(a, b)));\n}}\n")

    def numpy_calc():
        return [(a @ b).T]

    output, times = median_times(source, max(1, args.repeats // 2))
    assert output == toyc_format(numpy_calc()), "matmul program output differs from numpy"
    calc = best_of(numpy_calc, args.repeats * 4)
    with_text = best_of(lambda: toyc_format(numpy_calc()), max(1, args.repeats // 2))
    report(f"matmul+transpose {n}x{n}", times, calc, with_text)
    print(f"\nsource of the {n}x{n} program: {len(source) / 1e6:.1f} MB; ratio = toyc total / (numpy + text)")
    print(f"{n}x{n}: compiled main alone (run column) vs numpy's (a @ b).T: "
          f"{times['run'] / calc:.1f}x numpy's time; toyc total vs numpy calc: {times['total'] / calc:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
