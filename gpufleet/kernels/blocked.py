"""The blocked GEMM driver: GotoBLAS's five loops around the micro-kernel, JIT-compiled by numba.

Goto and van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (ACM TOMS 34(3), 2008),
and the BLIS layering (Van Zee and van de Geijn, ACM TOMS 41(3), 2015, figure 2) for a column-major C::

    for jc in 0..n step NC:                 # 5th loop: a kc x NC panel of B lives in L3
      for pc in 0..k step KC:               # 4th loop: rank-KC updates
        pack B[pc:pc+kc, jc:jc+nc] into NR-column micro-panels      (pack_b)
        for ic in 0..m step MC:             # 3rd loop: an MC x kc block of A lives in L2
          pack A[ic:ic+mc, pc:pc+kc] into MR-row micro-panels        (pack_a)
          for jr in 0..nc step NR:          # 2nd loop: a kc x NR micro-panel of B lives in L1
            for ir in 0..mc step MR:        # 1st loop: MR x kc micro-panels of A stream from L2
              micro-kernel: C[ic+ir, jc+jr] (MR x NR) += A_panel @ B_panel

Everything here works on flat 1-D views with signed element strides: element ``(i, p)`` of ``op(A)`` is
``a[a_off + i * a_rs + p * a_cs]``. That covers C- and Fortran-ordered, strided, negatively strided and
transposed operands with a single compiled specialisation per dtype (the Python layer in ``gemm.py``
builds the views and turns a row-major C into the column-major problem ``C^T = op(B)^T op(A)^T``).

The micro-kernel is LLVM IR from ``microkernel.py`` emitted through ``numba.extending.intrinsic``.
Compiled code is cached on disk by numba (``cache=True``) under a per-user directory, with a cache
locator (below) whose source stamp covers this file, ``microkernel.py`` and the chosen kernel shapes, so
editing the IR generator or changing the forced ISA recompiles instead of loading stale code.
"""

from __future__ import annotations

import hashlib
import os

import numba
from numba import njit, types
from numba.core import caching
from numba.extending import intrinsic

from .hostinfo import detect_isa, kernel_shapes
from .microkernel import build_microkernel

ISA = detect_isa()
SHAPES = kernel_shapes(ISA)


def cache_dir() -> str:
    """Per-user directory for compiled kernels and tuning results (``GPUFLEET_CACHE_DIR`` overrides)."""
    base = os.environ.get("GPUFLEET_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gpufleet")
    return os.path.join(base, "kernels")


_HERE = os.path.dirname(os.path.abspath(__file__))
_STAMPED_FILES = ("blocked.py", "microkernel.py")


def _source_stamp() -> str:
    digest = hashlib.sha256()
    for name in _STAMPED_FILES:
        with open(os.path.join(_HERE, name), "rb") as f:
            digest.update(f.read())
    digest.update(repr(sorted(SHAPES.items())).encode())
    return digest.hexdigest()


class _KernelCacheLocator(caching.UserProvidedCacheLocator):
    """numba cache locator for this package's kernels: per-user directory, stamp over all kernel sources.

    Registered in front of numba's own locators; ``from_function`` declines every function that is not
    defined in this directory, so other numba users are unaffected.
    """

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = os.path.join(cache_dir(), "numba")

    def get_source_stamp(self):
        return _source_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _HERE:
            return None
        self = cls(py_func, py_file)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


if _KernelCacheLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, _KernelCacheLocator)


@intrinsic
def _microkernel(typingctx, kc, a_pack, a_off, b_pack, b_off, c, c_off, ldc, mr, nr, alpha, beta):
    """numba call site of the IR micro-kernel: pointers are ``array.data + offset`` (in elements)."""
    shape = SHAPES[str(a_pack.dtype)]
    sig = types.void(types.int64, a_pack, types.int64, b_pack, types.int64, c, types.int64,
                     types.int64, types.int64, types.int64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        kc_v, ap, ao, bp, bo, cp, co, ldc_v, mr_v, nr_v, al, be = args
        fn = build_microkernel(builder.module, shape)
        elem = fn.args[1].type.pointee

        def pointer(array_type, value, offset):
            data = context.make_array(array_type)(context, builder, value).data
            return builder.gep(data, [offset])

        if elem != al.type:
            al = builder.fptrunc(al, elem)
            be = builder.fptrunc(be, elem)
        builder.call(fn, [kc_v, pointer(signature.args[1], ap, ao), pointer(signature.args[3], bp, bo),
                          pointer(signature.args[5], cp, co), ldc_v, mr_v, nr_v, al, be])
        return context.get_dummy_value()

    return sig, codegen


_U = numba.uint64


@intrinsic
def _kernel_nr(typingctx, array):
    """The micro-kernel's NR for ``array``'s dtype, as a compile-time constant."""
    nr = SHAPES[str(array.dtype)].nr

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, nr)

    return types.intp(array), codegen


@njit(nogil=True, cache=True)
def pack_a(a, a_off, a_rs, a_cs, mb, kb, mr_blk, dst):
    """Pack the ``mb x kb`` block of A at ``a_off`` into MR-row micro-panels, ``dst[(ip*kb + p)*MR + i]``,
    zero-padding the last panel to MR rows (so the micro-kernel never reads past the data).

    Indices are converted to unsigned before indexing: numba wraps negative indices, and that check on
    every access keeps LLVM from vectorising the copy loops (measured: 4x slower packing)."""
    for ip in range(0, mb, mr_blk):
        rows = min(mr_blk, mb - ip)
        base = ip * kb
        if a_rs == 1:
            for p in range(kb):
                src = a_off + ip + p * a_cs
                d = base + p * mr_blk
                for i in range(rows):
                    dst[_U(d + i)] = a[_U(src + i)]
                for i in range(rows, mr_blk):
                    dst[_U(d + i)] = 0
        elif a_cs == 1:  # rows of A contiguous
            for i in range(rows):
                src = a_off + (ip + i) * a_rs
                for p in range(kb):
                    dst[_U(base + p * mr_blk + i)] = a[_U(src + p)]
            for i in range(rows, mr_blk):
                for p in range(kb):
                    dst[_U(base + p * mr_blk + i)] = 0
        else:
            for i in range(rows):
                src = a_off + (ip + i) * a_rs
                for p in range(kb):
                    dst[_U(base + p * mr_blk + i)] = a[_U(src + p * a_cs)]
            for i in range(rows, mr_blk):
                for p in range(kb):
                    dst[_U(base + p * mr_blk + i)] = 0


@njit(nogil=True, cache=True)
def pack_b(b, b_off, b_rs, b_cs, kb, nb, nr_blk, dst):
    """Pack the ``kb x nb`` panel of B at ``b_off`` into NR-column micro-panels, ``dst[(jp*kb + p)*NR + j]``,
    zero-padding the last panel to NR columns."""
    for jp in range(0, nb, nr_blk):
        cols = min(nr_blk, nb - jp)
        base = jp * kb
        if b_cs == 1:
            for p in range(kb):
                src = b_off + jp + p * b_rs
                d = base + p * nr_blk
                for j in range(cols):
                    dst[_U(d + j)] = b[_U(src + j)]
                for j in range(cols, nr_blk):
                    dst[_U(d + j)] = 0
        elif b_rs == 1 and cols == nr_blk and nr_blk == _kernel_nr(dst):
            # columns of B contiguous (a row-major A seen through the transposition), full panel:
            # the compile-time NR lets LLVM unroll the j loop into NR loads and one vector store
            src = b_off + jp * b_cs
            for p in range(kb):
                d = base + p * _kernel_nr(dst)
                for j in range(_kernel_nr(dst)):
                    dst[_U(d + j)] = b[_U(src + j * b_cs + p)]
        elif b_rs == 1:
            src = b_off + jp * b_cs
            for p in range(kb):
                d = base + p * nr_blk
                for j in range(cols):
                    dst[_U(d + j)] = b[_U(src + j * b_cs + p)]
                for j in range(cols, nr_blk):
                    dst[_U(d + j)] = 0
        else:
            for j in range(cols):
                src = b_off + (jp + j) * b_cs
                for p in range(kb):
                    dst[_U(base + p * nr_blk + j)] = b[_U(src + p * b_rs)]
            for j in range(cols, nr_blk):
                for p in range(kb):
                    dst[_U(base + p * nr_blk + j)] = 0


@njit(nogil=True, cache=True)
def macro_kernel(m_lo, m_hi, kb, nb, alpha, a, a_off, a_rs, a_cs, beta, c, c_off, ldc, mc, mr_blk, nr_blk,
                 a_pack, b_pack):
    """Loops 3 to 1 for rows ``m_lo:m_hi`` of one packed ``kb x nb`` panel of B: pack each ``mc x kb``
    block of A (``a_off`` is the element of A at row 0, column ``pc``) and sweep the micro-kernel over
    its tiles (``c_off`` is the element of C at row 0, column ``jc``). Threads that share ``b_pack``
    call this on disjoint row ranges."""
    for ic in range(m_lo, m_hi, mc):
        mb = min(mc, m_hi - ic)
        pack_a(a, a_off + ic * a_rs, a_rs, a_cs, mb, kb, mr_blk, a_pack)
        for jr in range(0, nb, nr_blk):
            cols = min(nr_blk, nb - jr)
            for ir in range(0, mb, mr_blk):
                rows = min(mr_blk, mb - ir)
                _microkernel(kb, a_pack, ir * kb, b_pack, jr * kb,
                             c, c_off + (ic + ir) + jr * ldc, ldc, rows, cols, alpha, beta)


@njit(nogil=True, cache=True)
def gemm_colmajor(m, n, k, alpha, a, a_off, a_rs, a_cs, b, b_off, b_rs, b_cs, beta, c, c_off, ldc,
                  mc, kc, nc, mr_blk, nr_blk, a_pack, b_pack):
    """``C = alpha * op(A) @ op(B) + beta * C`` for a column-major ``m x n`` C at ``c[c_off]`` with column
    stride ``ldc``; ``k >= 1``. ``a_pack`` holds ``mc*kc`` and ``b_pack`` ``kc*nc`` elements (rounded up to
    whole micro-panels), both aligned to the vector width."""
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            pack_b(b, b_off + pc * b_rs + jc * b_cs, b_rs, b_cs, kb, nb, nr_blk, b_pack)
            beta_eff = beta if pc == 0 else 1.0
            macro_kernel(0, m, kb, nb, alpha, a, a_off + pc * a_cs, a_rs, a_cs, beta_eff,
                         c, c_off + jc * ldc, ldc, mc, mr_blk, nr_blk, a_pack, b_pack)


NUMBA_VERSION = numba.__version__
