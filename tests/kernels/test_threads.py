"""The two-thread work split: every thread gets work at m = 1024, results bitwise equal to one thread
at the split boundaries, and the CPU placement of a two-thread call (caller held, helper kept apart,
the caller's affinity restored afterwards). No timings."""

from __future__ import annotations

import importlib
import os
import threading

import numpy as np
import pytest

pytest.importorskip("numba")

from gpufleet.kernels.gemm import _gemm  # noqa: E402
from gpufleet.kernels.hostinfo import Blocking  # noqa: E402

gemm_module = importlib.import_module("gpufleet.kernels.gemm")
blocked = importlib.import_module("gpufleet.kernels.blocked")

DTYPES = (np.float32, np.float64)
SMALL_BLOCKS = {"float32": Blocking(mc=64, kc=40, nc=18), "float64": Blocking(mc=48, kc=24, nc=16)}


def shape_of(dtype):
    return blocked.SHAPES[np.dtype(dtype).name]


@pytest.mark.parametrize("mc,mr", [(256, 64), (128, 32), (256, 16), (128, 8), (96, 8)])
def test_row_chunks_give_every_thread_work_at_m_1024(mc, mr):
    for threads in (2, 3):
        chunk, rows = gemm_module._row_chunks(1024, mc, mr, threads)
        assert chunk % mr == 0 and chunk <= mc
        assert rows[0][0] == 0 and rows[-1][1] == 1024
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
        assert len(rows) >= 2 * threads  # a few chunks per thread, not one L2 block for one thread
        sizes = [hi - lo for lo, hi in rows]
        assert max(sizes) - min(sizes) < mr or sizes[:-1] == [chunk] * (len(rows) - 1)


@pytest.mark.parametrize("m", [1, 2, 5, 63, 64, 65, 127, 129, 200])
def test_row_chunks_cover_small_and_ragged_m(m):
    chunk, rows = gemm_module._row_chunks(m, 256, 16, 2)
    assert rows[0][0] == 0 and rows[-1][1] == m and all(lo < hi for lo, hi in rows)
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))


def boundary_shapes(dtype):
    """m around the thread split (2 MR: the row split starts there; chunk multiples plus and minus one)
    and n, k crossing several NC and KC panels so the double-buffered B alternates."""
    mr = shape_of(dtype).mr
    return [(2 * mr - 1, 50, 30), (2 * mr, 50, 30), (2 * mr + 1, 7, 61), (8 * mr - 1, 31, 45),
            (8 * mr + 1, 29, 100), (1024, 13, 70), (1000, 64, 33), (3, 200, 20)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("small", [True, False])
def test_two_threads_equal_one_thread_bitwise(dtype, small, monkeypatch):
    """Each element sees the same KC blocks and the same micro-kernel, whichever thread computes it,
    so the split changes nothing in the result: bitwise equal to the one-thread product (and within
    the error bound of the exact one)."""
    monkeypatch.setattr(gemm_module, "_PARALLEL_MIN_FLOPS", 0.0)  # split even these small products
    rng = np.random.default_rng(21)
    blocks = SMALL_BLOCKS if small else None
    for m, n, k in boundary_shapes(dtype):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        for order in ("C", "F"):
            one, two, three = (np.array(c0, order=order) for _ in range(3))
            _gemm(a, b, one, 1.5, -0.5, False, False, 1, blocks)
            _gemm(a, b, two, 1.5, -0.5, False, False, 2, blocks)
            _gemm(a, b, three, 1.5, -0.5, False, False, 3, blocks)
            assert np.array_equal(one, two), (m, n, k, order)
            assert np.array_equal(one, three), (m, n, k, order)
            exact = 1.5 * (a.astype(np.float64) @ b.astype(np.float64)) - 0.5 * c0
            scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64) + np.abs(c0)
            assert np.all(np.abs(two - exact) <= 4 * (k + 3) * np.finfo(dtype).eps * scale)


@pytest.fixture
def recorded_macro_kernels(monkeypatch):
    """Wrap ``blocked.macro_kernel``: record (thread, rows, affinity) per call; the first call of each
    thread waits (up to 10 s) until a second thread has made one too, so the record shows whether the
    split hands work to both threads without depending on how fast the OS wakes the helper."""
    calls = []
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=10)
    seen = set()
    original = blocked.macro_kernel

    def wrapper(m_lo, m_hi, *args):
        ident = threading.get_ident()
        try:
            mask = frozenset(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            mask = frozenset()
        with lock:
            first = ident not in seen
            seen.add(ident)
            calls.append((ident, m_hi - m_lo, mask))
        if first and len(seen) <= 2:
            both.wait()
        return original(m_lo, m_hi, *args)

    monkeypatch.setattr(blocked, "macro_kernel", wrapper)
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
def test_both_threads_compute_at_m_1024(dtype, recorded_macro_kernels):
    rng = np.random.default_rng(4)
    m, n, k = 1024, 48, 64
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.asfortranarray(np.zeros((m, n), dtype))  # column-major C: the 1024 rows are split
    _gemm(a, b, c, 1.0, 0.0, False, False, 2, None)
    threads = {ident for ident, _, _ in recorded_macro_kernels}
    assert len(threads) == 2
    assert sum(rows for _, rows, _ in recorded_macro_kernels) == m  # one KC panel: each row once
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or gemm_module._sched_getcpu is None, reason="needs CPU affinity and 2 CPUs")
def test_two_thread_call_holds_caller_and_keeps_helper_apart(recorded_macro_kernels):
    before = os.sched_getaffinity(0)
    caller = threading.get_ident()
    rng = np.random.default_rng(6)
    a = rng.standard_normal((512, 40)).astype(np.float32)
    b = rng.standard_normal((40, 160)).astype(np.float32)
    c = np.asfortranarray(np.zeros((512, 160), np.float32))  # 6.6 MFLOP: threaded
    _gemm(a, b, c, 1.0, 0.0, False, False, 3, None)  # a pool of two helpers, the next call reuses it
    recorded_macro_kernels.clear()
    _gemm(a, b, c, 1.0, 0.0, False, False, 2, None)
    assert os.sched_getaffinity(0) == before  # the caller's own mask is back
    assert {ident for ident, _, _ in recorded_macro_kernels} >= {caller}
    masks = {ident: mask for ident, _, mask in recorded_macro_kernels}
    assert len(masks) == 2
    helper = next(ident for ident in masks if ident != caller)
    assert len(masks[caller]) == 1  # held on one CPU during the call
    assert masks[helper] and not (masks[helper] & masks[caller])  # and the helper off it
    # a later call with three threads lets the helper go anywhere again
    recorded_macro_kernels.clear()
    _gemm(a, b, c, 1.0, 0.0, False, False, 3, None)
    assert all(mask == before for ident, _, mask in recorded_macro_kernels if ident != caller)
