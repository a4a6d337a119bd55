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
  pre-empts takes fewer chunks rather than stalling the call. With two threads the caller is held
  on its CPU for the call and the helper kept off it (``_Placement``): without that, on a 2-vCPU VM
  both threads were often woken onto one vCPU and two threads ran no faster than one.
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


def _load_sched_getcpu():
    """libc's ``sched_getcpu`` (the CPU the calling thread runs on), or None where there is none."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn


_sched_getcpu = _load_sched_getcpu()


def _caller_cpu() -> int:
    """The CPU this thread is on now, or -1 when unknown."""
    if _sched_getcpu is None:
        return -1
    try:
        return int(_sched_getcpu())
    except OSError:
        return -1


def _process_mask() -> frozenset:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return frozenset()


_PROCESS_MASK = _process_mask()  # what a helper thread goes back to after a two-thread call pinned it


def _step_aside(others: frozenset) -> None:
    """Restrict this helper thread to the CPUs ``others`` (those the caller may use, less the one it is
    held on); with ``others`` empty, undo an earlier restriction. Measured on the 2-vCPU development
    VM, see ``_Placement``. One ``sched_setaffinity`` (about 40 us, and only when the mask changes)
    moves the helper at once. The mask is always set explicitly: a pool thread inherits the affinity
    of the thread that started it, which may have been a held caller."""
    target = others or (_PROCESS_MASK if getattr(_local, "mask", None) else None)
    if not target or getattr(_local, "mask", None) == target:
        return
    try:
        os.sched_setaffinity(0, target)
        _local.mask = others or None
    except OSError:
        pass


class _Placement:
    """For a two-thread call: hold the calling thread on the CPU it is on for the duration of the call
    (its own affinity mask is restored afterwards) while the helper keeps to the other CPUs
    (``_step_aside``, with ``others``).

    Why: at each join of ``_parallel`` both threads sleep, and on the 2-vCPU development VM (KVM) the
    wake-up placement that follows often stacks the two threads on one vCPU (traced with
    ``sched_getcpu`` per row chunk: both threads on one CPU, each chunk taking twice its CPU time),
    and the load balancer takes milliseconds to separate them; after the process has been idle for
    0.1 s or more this happened in most calls, and a 10 ms float32 product at n = 1024 took 20 ms (no
    gain over one thread). A plausible cause is that a guest counts an idle vCPU whose host thread is
    descheduled as busy (Linux ``available_idle_cpu`` checks ``vcpu_is_preempted``), so the wake-up
    does not pick it. With the caller held and the helper kept off its CPU they stay apart: after
    0.3 s idle, 12 ms per call instead of 18-20 ms. A no-op where affinity or ``sched_getcpu`` is not
    available, where only one CPU is allowed, or with more than two threads."""

    def __init__(self, threads: int):
        self.others: frozenset = frozenset()
        self.saved = None
        if threads != 2 or _sched_getcpu is None:
            return
        try:
            saved = os.sched_getaffinity(0)
        except OSError:
            return
        cpu = _caller_cpu()
        if cpu < 0 or len(saved) < 2 or cpu not in saved:
            return
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            return
        self.others, self.saved = frozenset(saved - {cpu}), saved

    def __enter__(self) -> "_Placement":
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            try:
                os.sched_setaffinity(0, self.saved)
            except OSError:
                pass


def _parallel(count: int, task, threads: int, others: frozenset = frozenset()) -> None:
    """Run ``task(i)`` for ``i`` in ``range(count)`` on up to ``threads`` threads (this one included),
    handing indices out in order: a thread the OS pre-empts (other processes on the cores) simply takes
    fewer of them instead of holding up everyone at the join. Returns when all are done (the barrier).
    Helpers first move to ``others`` (for two threads, the CPUs but the one the caller is held on,
    ``_Placement``; empty: anywhere), see ``_step_aside``."""
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

    def helper() -> None:
        _step_aside(others)  # empty (more than two threads, no placement): the helper may go anywhere
        worker()

    helpers = min(threads, count) - 1
    pool = _get_pool(helpers)
    futures = [pool.submit(helper) for _ in range(helpers)]
    worker()
    for future in futures:
        future.result()


def _row_chunks(m: int, mc_max: int, mr: int, threads: int) -> tuple[int, list[tuple[int, int]]]:
    """The row ranges the threads share in ``_shared_panel_threads``: MR-aligned chunks of at most one
    L2 block of A each, and at least ``_CHUNKS_PER_THREAD`` per thread where m allows, so that every
    thread gets work and a thread the OS pre-empts costs at most a chunk (m = 1024 with mc = 256 and
    MR = 64: 8 chunks of 128 rows). Returns the chunk height and the ``(lo, hi)`` ranges."""
    chunk = min(_balanced(m, mc_max, mr), _round_up(max(-(-m // (threads * _CHUNKS_PER_THREAD)), 1), mr))
    return chunk, [(lo, min(m, lo + chunk)) for lo in range(0, m, chunk)]


def _shared_panel_threads(m, n, k, alpha, beta, flat, mc_max, kc, nc_max, mr, nr, threads, dtype):
    """BLIS's choice for a few cores (Smith et al. 2014, section 5): the threads pack each ``kc x nc``
    panel of B together into a shared buffer (it sits in the shared L3) and split the MC loop over it,
    each packing its own blocks of A into its private L2. Nothing is packed twice.

    B is double-buffered: the step that computes on panel ``i`` also packs panel ``i + 1`` into the
    other buffer (its pieces are handed out first), so there is one join per panel plus one for the
    first pack, instead of a join after the pack and another after the compute of every panel."""
    nc = _balanced(n, nc_max, nr)
    chunk, rows = _row_chunks(m, mc_max, mr, threads)
    panels = [(jc, pc) for jc in range(0, n, nc) for pc in range(0, k, kc)]
    second = _round_up(nc * kc, 64 // dtype.itemsize)  # the second buffer starts 64-byte aligned too
    _, shared_b = _buffers(dtype, chunk * kc, second + nc * kc)
    b_bufs = (shared_b[:nc * kc], shared_b[second:second + nc * kc])
    with _Placement(threads) as place:
        _panel_steps(n, k, alpha, beta, flat, kc, nc, mr, nr, threads, dtype, chunk, rows, panels, b_bufs,
                     place.others)


def _panel_steps(n, k, alpha, beta, flat, kc, nc, mr, nr, threads, dtype, chunk, rows, panels, b_bufs,
                 others):
    """The steps of ``_shared_panel_threads``: step ``i`` packs panel ``i + 1`` and computes panel ``i``."""
    a_flat, a_off, a_rs, a_cs, b_flat, b_off, b_rs, b_cs, c_flat, c_off, ldc = flat
    blocked = _blocked()

    def pieces_of(index):
        """The pack tasks of panel ``index``: its NR-column micro-panels in one piece per thread."""
        if index >= len(panels):
            return []
        jc, pc = panels[index]
        nb, kb = min(nc, n - jc), min(kc, k - pc)
        per_thread = -(-(-(-nb // nr)) // threads) * nr
        dst = b_bufs[index % 2]
        return [(b_off + pc * b_rs + (jc + lo) * b_cs, kb, min(nb, lo + per_thread) - lo, dst[lo * kb:])
                for lo in range(0, nb, per_thread)]

    def pack(piece):
        src, kb, width, dst = piece
        blocked.pack_b(b_flat, src, b_rs, b_cs, kb, width, nr, dst)

    first = pieces_of(0)
    _parallel(len(first), lambda i: pack(first[i]), threads, others)
    for index, (jc, pc) in enumerate(panels):
        nb, kb = min(nc, n - jc), min(kc, k - pc)
        beta_eff = beta if pc == 0 else 1.0
        b_pack = b_bufs[index % 2]
        following = pieces_of(index + 1)

        def step(task, following=following, jc=jc, pc=pc, nb=nb, kb=kb, beta_eff=beta_eff, b_pack=b_pack):
            if task < len(following):
                pack(following[task])
                return
            lo, hi = rows[task - len(following)]
            a_buf, _ = _buffers(dtype, chunk * kc, 0)
            blocked.macro_kernel(lo, hi, kb, nb, alpha, a_flat, a_off + pc * a_cs, a_rs, a_cs, beta_eff,
                                 c_flat, c_off + jc * ldc, ldc, chunk, mr, nr, a_buf, b_pack)

        _parallel(len(following) + len(rows), step, threads, others)


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

    with _Placement(threads) as place:
        _parallel(len(parts), run, threads, place.others)
