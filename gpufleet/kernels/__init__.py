"""Kernels: a GotoBLAS/BLIS-structured GEMM JIT-compiled from Python (numba + LLVM IR micro-kernel).

``gemm(a, b, out=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, threads=None)`` computes
``alpha * op(A) @ op(B) + beta * C`` for float32/float64 numpy arrays. Importing this package is cheap;
numba is imported (and the kernel compiled or loaded from the on-disk cache) on the first call.
See docs/kernels.md.
"""

from .gemm import GemmError, default_threads, gemm

__all__ = ["GemmError", "default_threads", "gemm"]
