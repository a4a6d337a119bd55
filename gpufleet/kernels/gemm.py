"""``gemm``: C = alpha * op(A) @ op(B) + beta * C on numpy arrays, with the BLAS ``xGEMM`` semantics.

The numeric core is ``blocked.gemm_colmajor`` (GotoBLAS loops, packing, IR micro-kernel). This layer

* checks shapes and dtypes and says what is wrong in one line (``GemmError``);
* turns any operand layout into flat views with signed element strides, and a row-major C into the
  column-major problem ``C^T = op(B)^T op(A)^T`` (the transposition trick BLIS uses for row-major C,
  Van Zee and van de Geijn 2015, section 4), so one compiled specialisation per dtype serves C-order,
  Fortran-order, strided, reversed and transposed inputs;
* follows BLAS for the corner cases (reference BLAS ``sgemm.f``): ``alpha == 0`` or ``k == 0`` never reads
  A and B, and ``beta == 0`` never reads C (NaNs already in C do not leak into the result);
* runs up to ``threads`` threads; the compiled core releases the GIL (``nogil=True``), so plain Python
  threads run it in parallel. As BLIS does on few cores (Smith et al., "Anatomy of High-Performance
  Many-Threaded Matrix Multiplication", IPDPS 2014, section 5), the threads pack each ``kc x nc``
  panel of B together into one shared buffer and then split the MC loop, each packing its own blocks
  of A (``_shared_panel_threads``); when C has too few rows for that, they split the NC loop instead
  (``_column_split_threads``). Work is handed out in chunks, a few per thread, so a thread that the OS
  pre-empts takes fewer chunks rather than stalling the call.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import GpufleetError
from .hostinfo import Blocking

_SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))
_NAMES = {"f": "float32", "d": "float64"}
# below this many flops a second thread costs more than it saves (thread hand-off ~ 50 us)
_PARALLEL_MIN_FLOPS = 4.0e6
_CHUNKS_PER_THREAD = 4
_MIN_CHUNK = 128  # rows or columns of C per chunk, at least


class GemmError(GpufleetError, ValueError):
    """A gemm call whose operands do not fit together (shapes, dtypes, output array)."""


def _as_matrix(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.ndim != 2:
        raise GemmError(f"gemm: {name} must be a 2-D array, got shape {x.shape}")
    return x


def _check_dtype(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.dtype:
    dtypes = {a.dtype.newbyteorder("="), b.dtype.newbyteorder("=")}
    if len(dtypes) != 1:
        raise GemmError(f"gemm: A and B must have the same dtype, got {a.dtype} and {b.dtype} "
                        "(convert one with .astype)")
    dtype = dtypes.pop()
    if dtype not in _SUPPORTED:
        raise GemmError(f"gemm: dtype {dtype} is not supported (float32 or float64)")
    if out is not None and out.dtype.newbyteorder("=") != dtype:
        raise GemmError(f"gemm: out has dtype {out.dtype}, A and B have {dtype}")
    return dtype


def _flat_view(x: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, int, int, int]:
    """A 1-D contiguous view over all of ``x``'s memory with the element offset of ``x[0, 0]`` and signed
    element strides, so ``x[i, j] == flat[off + i*rs + j*cs]``. Copies only when the strides are not
    whole elements, the byte order is foreign or the memory is read-only."""
    if (x.dtype != dtype or not x.dtype.isnative or not x.flags.writeable
            or any(s % x.itemsize for s in x.strides)):
        x = np.array(x, dtype=dtype, order="C")
    size = x.itemsize
    rs, cs = x.strides[0] // size, x.strides[1] // size
    if x.flags.c_contiguous and x.size:
        return x.reshape(-1), 0, x.shape[1] if x.shape[0] > 1 else rs, 1 if x.shape[1] > 1 else cs
    if x.flags.f_contiguous and x.size:
        return x.T.reshape(-1), 0, 1 if x.shape[0] > 1 else rs, x.shape[0] if x.shape[1] > 1 else cs
    base, off = x, 0
    if rs < 0:
        base, off = base[::-1, :], off + (x.shape[0] - 1) * -rs
    if cs < 0:
        base, off = base[:, ::-1], off + (x.shape[1] - 1) * -cs
    extent = 1 + (x.shape[0] - 1) * abs(rs) + (x.shape[1] - 1) * abs(cs)
    flat = np.lib.stride_tricks.as_strided(base, shape=(extent,), strides=(size,))
    return flat, off, rs, cs


_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _aligned_empty(count: int, dtype: np.dtype, align: int = 64) -> np.ndarray:
    raw = np.empty(count + align // dtype.itemsize, dtype)
    shift = (-raw.ctypes.data % align) // dtype.itemsize
    return raw[shift:shift + count]


def _buffers(dtype: np.dtype, a_len: int, b_len: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's packing buffers (64-byte aligned), grown on demand and reused across calls."""
    store = getattr(_local, "buffers", None)
    if store is None:
        store = _local.buffers = {}
    a_buf, b_buf = store.get(dtype.char, (None, None))
    if a_buf is None or a_buf.size < a_len:
        a_buf = _aligned_empty(a_len, dtype)
    if b_buf is None or b_buf.size < b_len:
        b_buf = _aligned_empty(b_len, dtype)
    store[dtype.char] = (a_buf, b_buf)
    return a_buf, b_buf


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gpufleet-gemm")
        return _pool


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _balanced(extent: int, block: int, multiple: int) -> int:
    """The smallest block, a multiple of ``multiple``, that covers ``extent`` in as few blocks as
    ``block`` does (so k = 400 with kc = 384 runs as 2 x 200, not 384 + 16)."""
    count = -(-extent // block)
    return min(block, _round_up(-(-extent // count), multiple))


def default_threads() -> int:
    """Threads used when ``threads=None``: ``GPUFLEET_GEMM_THREADS``, else up to 2 usable CPUs."""
    env = os.environ.get("GPUFLEET_GEMM_THREADS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def gemm(a, b, out: np.ndarray | None = None, alpha: float = 1.0, beta: float = 0.0,
         trans_a: bool = False, trans_b: bool = False, threads: int | None = None) -> np.ndarray:
    """Return ``C = alpha * op(A) @ op(B) + beta * C`` (``op(X)`` is ``X.T`` when ``trans_x``).

    ``a``, ``b``: 2-D float32 or float64 arrays of one dtype, any layout (C, Fortran, strided, reversed).
    ``out``: the C array, updated in place and returned; any layout. Without ``out`` a new C-ordered
    array is returned and ``beta`` is ignored (there is no C to scale). ``threads``: worker threads,
    default ``default_threads()``; small products run on one thread regardless.
    Raises ``GemmError`` (a ``ValueError``) naming the shapes or dtypes that do not fit.
    """
    return _gemm(a, b, out, alpha, beta, trans_a, trans_b, threads, None)


def _gemm(a, b, out, alpha, beta, trans_a, trans_b, threads, blocking: dict[str, Blocking] | None):
    a = _as_matrix("A", a)
    b = _as_matrix("B", b)
    if out is not None and not isinstance(out, np.ndarray):
        raise GemmError(f"gemm: out must be a numpy array, got {type(out).__name__}")
    if out is not None and out.ndim != 2:
        raise GemmError(f"gemm: out must be a 2-D array, got shape {out.shape}")
    dtype = _check_dtype(a, b, out)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    (m, k), (k_b, n) = op_a.shape, op_b.shape
    if k != k_b:
        raise GemmError(f"gemm: op(A) has shape {op_a.shape} and op(B) has shape {op_b.shape}: "
                        f"inner dimensions {k} and {k_b} differ (A {a.shape}, trans_a={bool(trans_a)}; "
                        f"B {b.shape}, trans_b={bool(trans_b)})")
    if out is None:
        out = np.empty((m, n), dtype)
        beta = 0.0
    elif out.shape != (m, n):
        raise GemmError(f"gemm: out has shape {out.shape}, op(A) @ op(B) has shape {(m, n)} "
                        f"(op(A) {op_a.shape}, op(B) {op_b.shape})")
    elif not out.flags.writeable:
        raise GemmError("gemm: out is read-only")
    if threads is None:
        threads = default_threads()
    elif not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise GemmError(f"gemm: threads must be a positive integer, got {threads!r}")
    alpha, beta = float(alpha), float(beta)
    if m == 0 or n == 0:
        return out
    if k == 0 or alpha == 0.0:
        if beta == 0.0:
            out[...] = 0
        elif beta != 1.0:
            out *= dtype.type(beta)
        return out
    if np.may_share_memory(out, op_a):
        op_a = op_a.copy()
    if np.may_share_memory(out, op_b):
        op_b = op_b.copy()

    size = dtype.itemsize
    target = _direct_target(out, size)
    if target is None:  # C has no unit stride, overlaps itself or is byte-swapped: use a Fortran copy
        work = (np.array(out, dtype=dtype, order="F") if beta != 0.0
                else np.empty((m, n), dtype, order="F"))
        _gemm_colmajor(work, op_a, op_b, alpha, beta, threads, blocking, dtype)
        out[...] = work
    elif target == "F":
        _gemm_colmajor(out, op_a, op_b, alpha, beta, threads, blocking, dtype)
    else:  # row-major C: C^T = op(B)^T op(A)^T is column-major
        _gemm_colmajor(out.T, op_b.T, op_a.T, alpha, beta, threads, blocking, dtype)
    return out


def _direct_target(out: np.ndarray, size: int) -> str | None:
    """'F' when ``out`` is column-major with a usable column stride, 'C' when row-major, else None."""
    m, n = out.shape
    s0, s1 = out.strides
    if s0 % size or s1 % size or not out.dtype.isnative:
        return None
    if (m == 1 or s0 == size) and (n == 1 or s1 >= m * size):
        return "F"
    if (n == 1 or s1 == size) and (m == 1 or s0 >= n * size):
        return "C"
    return None


def _gemm_colmajor(c: np.ndarray, op_a: np.ndarray, op_b: np.ndarray, alpha: float, beta: float,
                   threads: int, blocking: dict[str, Blocking] | None, dtype: np.dtype) -> None:
    """Run the blocked core on a column-major ``c`` (``c.strides[0] == itemsize`` or one row)."""
    from .tuning import tuned_blocking

    name = _NAMES[dtype.char]
    shape = _blocked().SHAPES[name]
    m, n = c.shape
    k = op_a.shape[1]
    size = dtype.itemsize
    ldc = c.strides[1] // size if n > 1 else max(1, m)
    c_flat, c_off, _, _ = _flat_view(c, dtype)
    a_flat, a_off, a_rs, a_cs = _flat_view(op_a, dtype)
    b_flat, b_off, b_rs, b_cs = _flat_view(op_b, dtype)

    block = (blocking or {}).get(name) or tuned_blocking(name)
    kc = _balanced(k, max(1, block.kc), 1)

    if threads > 1 and 2.0 * m * n * k < _PARALLEL_MIN_FLOPS:
        threads = 1
    mr, nr = shape.mr, shape.nr
    mc_max = _round_up(max(1, block.mc), mr)
    nc_max = _round_up(max(1, block.nc), nr)
    flat = (a_flat, a_off, a_rs, a_cs, b_flat, b_off, b_rs, b_cs, c_flat, c_off, ldc)
    if threads > 1 and m >= 2 * mr:
        _shared_panel_threads(m, n, k, alpha, beta, flat, mc_max, kc, nc_max, mr, nr, threads, dtype)
    elif threads > 1 and n >= 2 * nr:
        _column_split_threads(m, n, k, alpha, beta, flat, mc_max, kc, nc_max, mr, nr, threads, dtype)
    else:
        mc, nc = _balanced(m, mc_max, mr), _balanced(n, nc_max, nr)
        a_buf, b_buf = _buffers(dtype, mc * kc, nc * kc)
        _blocked().gemm_colmajor(m, n, k, alpha, a_flat, a_off, a_rs, a_cs, b_flat, b_off, b_rs, b_cs,
                                 beta, c_flat, c_off, ldc, mc, kc, nc, mr, nr, a_buf, b_buf)


def _blocked():
    from . import blocked

    return blocked


def _parallel(count: int, task, threads: int) -> None:
    """Run ``task(i)`` for ``i`` in ``range(count)`` on up to ``threads`` threads (this one included),
    handing indices out in order: a thread the OS pre-empts (other processes on the cores) simply takes
    fewer of them instead of holding up everyone at the join. Returns when all are done (the barrier)."""
    if count == 1 or threads == 1:
        for index in range(count):
            task(index)
        return
    order = itertools.count()  # next() on a count is atomic under the GIL

    def worker() -> None:
        for index in iter(order.__next__, None):
            if index >= count:
                return
            task(index)

    helpers = min(threads, count) - 1
    pool = _get_pool(helpers)
    futures = [pool.submit(worker) for _ in range(helpers)]
    worker()
    for future in futures:
        future.result()


def _shared_panel_threads(m, n, k, alpha, beta, flat, mc_max, kc, nc_max, mr, nr, threads, dtype):
    """BLIS's choice for a few cores (Smith et al. 2014, section 5): for each ``kc x nc`` panel of B,
    the threads pack it together into one shared buffer (it sits in the shared L3), then split the MC
    loop, each packing its own blocks of A into its private L2. Nothing is packed twice; two barriers
    per panel (the joins of ``_parallel``)."""
    a_flat, a_off, a_rs, a_cs, b_flat, b_off, b_rs, b_cs, c_flat, c_off, ldc = flat
    blocked = _blocked()
    nc = _balanced(n, nc_max, nr)
    # row chunks: at most one L2 block each, and a few per thread so pre-emption costs little
    chunk = min(_balanced(m, mc_max, mr),
                _round_up(max(-(-m // (threads * _CHUNKS_PER_THREAD)), 1), mr))
    rows = [(lo, min(m, lo + chunk)) for lo in range(0, m, chunk)]
    _, shared_b = _buffers(dtype, chunk * kc, nc * kc)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        panels = -(-nb // nr)
        per_thread = -(-panels // threads) * nr
        pieces = [(lo, min(nb, lo + per_thread)) for lo in range(0, nb, per_thread)]
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            beta_eff = beta if pc == 0 else 1.0

            def pack(index, jc=jc, pc=pc, kb=kb):
                lo, hi = pieces[index]
                blocked.pack_b(b_flat, b_off + pc * b_rs + (jc + lo) * b_cs, b_rs, b_cs, kb, hi - lo, nr,
                               shared_b[lo * kb:])

            def compute(index, jc=jc, pc=pc, kb=kb, nb=nb, beta_eff=beta_eff):
                lo, hi = rows[index]
                a_buf, _ = _buffers(dtype, chunk * kc, 0)
                blocked.macro_kernel(lo, hi, kb, nb, alpha, a_flat, a_off + pc * a_cs, a_rs, a_cs, beta_eff,
                                     c_flat, c_off + jc * ldc, ldc, chunk, mr, nr, a_buf, shared_b)

            _parallel(len(pieces), pack, threads)
            _parallel(len(rows), compute, threads)


def _column_split_threads(m, n, k, alpha, beta, flat, mc_max, kc, nc_max, mr, nr, threads, dtype):
    """For C with few rows (m < 2 MR): split the NC loop, each thread running the whole blocked
    algorithm on its columns (it packs its own copy of the small A, about m*k per chunk)."""
    a_flat, a_off, a_rs, a_cs, b_flat, b_off, b_rs, b_cs, c_flat, c_off, ldc = flat
    blocked = _blocked()
    chunk = _round_up(max(-(-n // (threads * _CHUNKS_PER_THREAD)), _MIN_CHUNK), nr)
    parts = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    mc = _balanced(m, mc_max, mr)

    def run(index: int) -> None:
        lo, hi = parts[index]
        nc = _balanced(hi - lo, nc_max, nr)
        a_buf, b_buf = _buffers(dtype, mc * kc, nc * kc)
        blocked.gemm_colmajor(m, hi - lo, k, alpha, a_flat, a_off, a_rs, a_cs, b_flat, b_off + lo * b_cs,
                              b_rs, b_cs, beta, c_flat, c_off + lo * ldc, ldc, mc, kc, nc, mr, nr,
                              a_buf, b_buf)

    _parallel(len(parts), run, threads)
