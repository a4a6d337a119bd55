"""GEMM benchmark: GFLOP/s of ``gpufleet.kernels.gemm`` and numpy's BLAS (OpenBLAS) in the same run.

For each thread count the measurements run with the BLAS limited to the same number of threads: through
threadpoolctl when it is installed, else in a child process started with ``OPENBLAS_NUM_THREADS`` (and
``OMP_NUM_THREADS``/``MKL_NUM_THREADS``) set, since OpenBLAS reads them once at load. Calls of the two
libraries alternate and each figure is the best of the repeats, so a burst of load from other processes
hits both alike; with more than one thread each timed call follows a short pause (``SETTLE_S``) so that
OpenBLAS's worker threads, which spin for about 0.1 s after each call, are asleep and do not take a core
from ours. One-thread rows also give the ratio of thread CPU times, which a busy machine disturbs
less than wall time. The JIT compile time (empty cache) and the time to load the compiled code from the
on-disk cache are measured in fresh processes and reported apart from the rates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..errors import GpufleetError

DEFAULT_SIZES = (256, 512, 1024, 2048, 4096)
DEFAULT_DTYPES = ("float32", "float64")
DEFAULT_THREADS = (1, 2)


def parse_int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GpufleetError(f"--{what}: expected comma-separated positive integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise GpufleetError(f"--{what}: expected comma-separated positive integers, got {text!r}")
    return values


def parse_dtypes(text: str) -> list[str]:
    dtypes = [part.strip() for part in text.split(",") if part.strip()]
    bad = [d for d in dtypes if d not in DEFAULT_DTYPES]
    if not dtypes or bad:
        raise GpufleetError(f"--dtypes: expected float32 and/or float64, got {text!r}")
    return dtypes


# OpenBLAS's worker threads keep spinning (sched_yield) after a call until 2**THREAD_TIMEOUT TSC cycles
# have passed (2**28 by default, 0.1 s at 2.6 GHz) before they sleep. Timed right after np.matmul, a
# two-thread gemm shares a core with that spinner: on the 2-CPU development machine this alone took
# n = 1024 from about 200 to about 105 GFLOP/s. With more than one thread, every timed call therefore
# starts after this pause, for both libraries alike.
SETTLE_S = 0.15


def measure(sizes, dtypes, threads: int, repeats: int, budget_s: float = 20.0,
            settle_s: float | None = None) -> list[dict]:
    """Rows of GFLOP/s for ours and numpy at each size and dtype, with ``threads`` threads (the caller
    has already limited the BLAS to the same count). With more than one thread each timed call follows
    a pause of ``settle_s`` (default ``SETTLE_S``), so the other library's idle threads have gone to
    sleep."""
    if settle_s is None:
        settle_s = SETTLE_S if threads > 1 else 0.0
    from .gemm import gemm

    rng = np.random.default_rng(0)
    rows = []
    for dtype in dtypes:
        for n in sizes:
            a = rng.standard_normal((n, n)).astype(dtype)
            b = rng.standard_normal((n, n)).astype(dtype)
            c_ours = np.empty((n, n), dtype)
            c_blas = np.empty((n, n), dtype)
            start = time.perf_counter()
            np.matmul(a, b, out=c_blas)
            gemm(a, b, out=c_ours, threads=threads)
            once = time.perf_counter() - start
            reps = max(2, min(repeats, int(budget_s / max(once, 1e-6))))
            best = {"ours": float("inf"), "blas": float("inf")}
            best_cpu = {"ours": float("inf"), "blas": float("inf")}
            for _ in range(reps):
                for name in ("blas", "ours"):
                    if settle_s:
                        time.sleep(settle_s)
                    wall0, cpu0 = time.perf_counter(), time.thread_time()
                    if name == "ours":
                        gemm(a, b, out=c_ours, threads=threads)
                    else:
                        np.matmul(a, b, out=c_blas)
                    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
                    best[name] = min(best[name], wall)
                    best_cpu[name] = min(best_cpu[name], cpu)
            scale = float(np.abs(c_blas).max()) or 1.0
            flops = 2.0 * n ** 3
            row = {"dtype": dtype, "size": n, "threads": threads, "repeats": reps,
                   "ours_gflops": flops / best["ours"] / 1e9, "blas_gflops": flops / best["blas"] / 1e9,
                   "ratio": best["blas"] / best["ours"],
                   "max_rel_diff": float(np.abs(c_ours - c_blas).max()) / scale}
            if threads == 1:
                row["cpu_ratio"] = best_cpu["blas"] / max(best_cpu["ours"], 1e-9)
            rows.append(row)
    return rows


def _blas_limited_rows(sizes, dtypes, threads: int, repeats: int) -> list[dict]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=threads, user_api="blas"):
            return measure(sizes, dtypes, threads, repeats)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "gpufleet.kernels.bench", "--worker", "--sizes", ",".join(map(str, sizes)),
           "--dtypes", ",".join(dtypes), "--threads", str(threads), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GpufleetError(f"benchmark worker failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_COMPILE_SNIPPET = """
import json, time
import numpy as np
t0 = time.perf_counter()
import gpufleet.kernels.blocked
t1 = time.perf_counter()
from gpufleet.kernels import gemm
out = {"import_s": t1 - t0}
for dtype in ("float32", "float64"):
    a = np.ones((8, 8), dtype)
    t = time.perf_counter()
    gemm(a, a, threads=1)
    out[dtype + "_first_call_s"] = time.perf_counter() - t
print(json.dumps(out))
"""


def compile_times() -> dict:
    """First-call times in fresh processes: with an empty cache (JIT compile) and with the cache warm."""
    result = {}
    with tempfile.TemporaryDirectory(prefix="gpufleet-jit-") as empty:
        for label, cache in (("cold", empty), ("warm", None)):
            env = dict(os.environ)
            if cache is not None:
                env["GPUFLEET_CACHE_DIR"] = cache
            for _ in range(1 if cache is not None else 2):  # warm: the second run surely hits the cache
                proc = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise GpufleetError(f"compile-time probe failed: {proc.stderr.strip().splitlines()[-1:]}")
                result[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def format_table(rows: list[dict]) -> str:
    lines = ["| dtype | n | threads | gpufleet GFLOP/s | OpenBLAS GFLOP/s | ratio (wall) | ratio (CPU time) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cpu = f"{r['cpu_ratio']:.3f}" if "cpu_ratio" in r else "-"
        lines.append(f"| {r['dtype']} | {r['size']} | {r['threads']} | {r['ours_gflops']:.1f} | "
                     f"{r['blas_gflops']:.1f} | {r['ratio']:.3f} | {cpu} |")
    return "\n".join(lines)


def run(sizes=DEFAULT_SIZES, dtypes=DEFAULT_DTYPES, threads=DEFAULT_THREADS, repeats: int = 5,
        tune: bool = True, compile_time: bool = True, json_path: str | None = None, echo=print) -> dict:
    from . import blocked, tuning
    from .hostinfo import cache_sizes

    load_before = os.getloadavg()
    echo(f"host: {tuning.host_cpu()[0]}, ISA {blocked.ISA}, kernels "
         + ", ".join(f"{d} {s.mr}x{s.nr}" for d, s in blocked.SHAPES.items())
         + f", caches {cache_sizes()}, load average {load_before[0]:.2f} {load_before[1]:.2f}")
    report: dict = {"load_before": load_before}
    if compile_time:
        times = compile_times()
        report["compile"] = times
        echo("JIT compile (empty cache, first call): "
             + ", ".join(f"{d} {times['cold'][d + '_first_call_s']:.2f} s" for d in DEFAULT_DTYPES)
             + f"; import {times['cold']['import_s']:.2f} s")
        echo("load from cache (first call):         "
             + ", ".join(f"{d} {times['warm'][d + '_first_call_s']:.2f} s" for d in DEFAULT_DTYPES))
    if tune and not os.path.exists(tuning.tuning_path()):
        echo("autotuning block sizes (once per machine) ...")
        tuning.autotune(progress=lambda d, b, g: echo(f"  {d}: mc={b.mc} kc={b.kc} nc={b.nc} ({g:.1f} GFLOP/s)"))
    report["blocking"] = {d: tuning.tuned_blocking(d).__dict__ for d in dtypes}
    echo("blocking: " + ", ".join(f"{d} mc={b['mc']} kc={b['kc']} nc={b['nc']}"
                                  for d, b in report["blocking"].items()))
    rows = []
    for count in threads:
        rows.extend(_blas_limited_rows(list(sizes), list(dtypes), count, repeats))
    report["rows"] = rows
    report["load_after"] = os.getloadavg()
    echo(format_table(rows))
    echo(f"load average after: {report['load_after'][0]:.2f} {report['load_after'][1]:.2f} "
         f"(on {os.cpu_count()} CPUs; above that count other processes shared the cores)")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="bench/gemm.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.worker:
            rows = measure(parse_int_list(args.sizes, "sizes"), parse_dtypes(args.dtypes),
                           parse_int_list(args.threads, "threads")[0], args.repeats)
            print(json.dumps(rows))
            return 0
        return run_from_args(args)
    except GpufleetError as exc:
        print(f"gemm bench: error: {exc}", file=sys.stderr)
        return 2


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="square sizes n (m = n = k), comma-separated (default %(default)s)")
    parser.add_argument("--dtypes", default=",".join(DEFAULT_DTYPES), help="default %(default)s")
    parser.add_argument("--threads", default=",".join(map(str, DEFAULT_THREADS)),
                        help="thread counts, comma-separated (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs (default 5)")
    parser.add_argument("--no-tune", action="store_true", help="do not autotune when no tuning is cached")
    parser.add_argument("--no-compile-time", action="store_true", help="skip the JIT compile-time probe")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")


def run_from_args(args) -> int:
    if args.repeats < 1:
        raise GpufleetError(f"--repeats: expected a positive integer, got {args.repeats}")
    run(parse_int_list(args.sizes, "sizes"), parse_dtypes(args.dtypes), parse_int_list(args.threads, "threads"),
        args.repeats, tune=not args.no_tune, compile_time=not args.no_compile_time, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
