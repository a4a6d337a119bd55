"""Block-size autotuner: measure a small grid around the analytical block sizes, keep the best per machine.

The analytical model (``hostinfo.analytical_blocking``, after Low et al., ACM TOMS 43(2), 2016) gets the
order of magnitude right, but the best ``kc``/``mc`` also depends on the prefetchers, the L2 policy and
the TLB, which no formula sees; ATLAS (Whaley and Dongarra, "Automatically Tuned Linear Algebra
Software", SC 1998) settles that by measuring. We measure a 4 x 3 grid: ``kc`` at 1/2, 3/4, 1 and 3/2
times the analytical value (the depth of the ``kc x NR`` micro-panel of B held in L1; at most 512) by the
share of L2 given to the ``mc x kc`` block of A (1/8, 1/4, 1/2), on
one square problem with one thread, time each candidate with the thread's CPU clock (robust against other
processes on a shared machine), and keep the fastest.

The result is stored as JSON under the per-user cache directory (``blocked.cache_dir()``), in a file
named by a hash of everything the answer depends on: the CPU name and features, the cache sizes and the
micro-kernel shapes and the grid. A different machine, or the same one after a kernel change, tunes afresh; deleting
the file, or ``gpufleet gemm tune``, re-tunes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import asdict

import numpy as np

from .hostinfo import Blocking, analytical_blocking, cache_sizes, host_cpu, kernel_shapes

KC_SCALES = (0.5, 0.75, 1.0, 1.5)  # kc at most 512 (analytical_blocking's cap); duplicates dropped
L2_FRACTIONS = (0.125, 0.25, 0.5)


@functools.lru_cache(maxsize=None)
def machine_key() -> str:
    """A short hash of what the tuned block sizes depend on."""
    name, features = host_cpu()
    text = repr((name, features, cache_sizes(), sorted(kernel_shapes().items()), KC_SCALES, L2_FRACTIONS))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tuning_path() -> str:
    env = (os.environ.get("GPUFLEET_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"))
    return _tuning_path(env)


@functools.lru_cache(maxsize=8)
def _tuning_path(env: tuple) -> str:
    from .blocked import cache_dir

    return os.path.join(cache_dir(), f"gemm-tuning-{machine_key()}.json")


@functools.lru_cache(maxsize=None)
def _load(path: str, mtime: float) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


_memo: dict[tuple[str, str], Blocking] = {}


def tuned_blocking(dtype: str) -> Blocking:
    """The autotuned block sizes for ``dtype`` on this machine, else the analytical ones (looked up once
    per process and cache directory; ``autotune`` refreshes it)."""
    path = tuning_path()
    key = (path, dtype)
    if key not in _memo:
        _memo[key] = _read_blocking(path, dtype)
    return _memo[key]


def _read_blocking(path: str, dtype: str) -> Blocking:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = None
    if mtime is not None:
        entry = _load(path, mtime).get("blocking", {}).get(dtype)
        if entry:
            try:
                return Blocking(int(entry["mc"]), int(entry["kc"]), int(entry["nc"]))
            except (KeyError, TypeError, ValueError):
                pass
    return analytical_blocking(kernel_shapes()[dtype])


def candidates(dtype: str) -> list[Blocking]:
    """The grid the tuner measures (duplicates removed, analytical default first)."""
    shape = kernel_shapes()[dtype]
    base = analytical_blocking(shape)
    grid = [base]
    for scale in KC_SCALES:
        kc = max(16, min(512, int(base.kc * scale)) // 16 * 16)
        for l2 in L2_FRACTIONS:
            block = analytical_blocking(shape, l2_fraction=l2, kc=kc)
            if block not in grid:
                grid.append(block)
    return grid


def autotune(dtypes=("float32", "float64"), size: int = 1024, repeats: int = 3,
             grid: dict[str, list[Blocking]] | None = None, write: bool = True,
             progress=None) -> dict:
    """Measure each candidate blocking on a ``size``-cubed product (1 thread, best of ``repeats``
    CPU-clock timings) and store the fastest per dtype. Returns the JSON document written."""
    from .gemm import _gemm

    rng = np.random.default_rng(0)
    result = {"machine": machine_key(), "cpu": host_cpu()[0], "size": size, "blocking": {},
              "measured": {}}
    for dtype in dtypes:
        a = rng.standard_normal((size, size)).astype(dtype)
        b = rng.standard_normal((size, size)).astype(dtype)
        c = np.empty((size, size), dtype)
        options = (grid or {}).get(dtype) or candidates(dtype)
        best: dict[Blocking, float] = {}
        for block in options:  # warm-up (and compile) once per candidate
            _gemm(a, b, c, 1.0, 0.0, False, False, 1, {dtype: block})
        for _ in range(repeats):  # interleave candidates so load changes hit all of them alike
            for block in options:
                start = time.thread_time()
                _gemm(a, b, c, 1.0, 0.0, False, False, 1, {dtype: block})
                elapsed = max(time.thread_time() - start, 1e-9)
                best[block] = min(best.get(block, float("inf")), elapsed)
        flops = 2.0 * size ** 3
        winner = min(best, key=best.get)
        result["blocking"][dtype] = asdict(winner)
        result["measured"][dtype] = [dict(asdict(block), gflops=round(flops / t / 1e9, 2))
                                     for block, t in best.items()]
        if progress:
            progress(dtype, winner, flops / best[winner] / 1e9)
    if write:
        path = tuning_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        existing = {}
        if os.path.exists(path):
            existing = _load(path, os.stat(path).st_mtime)
        merged = dict(existing, **{k: v for k, v in result.items() if k not in ("blocking", "measured")})
        merged["blocking"] = dict(existing.get("blocking", {}), **result["blocking"])
        merged["measured"] = dict(existing.get("measured", {}), **result["measured"])
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(merged, f, indent=1)
        os.replace(tmp, path)
        _memo.clear()
        result = merged
    return result
