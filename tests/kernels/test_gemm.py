"""gpufleet.kernels.gemm against numpy, with tolerances from the standard error bound of a dot product.

For C = alpha * op(A) op(B) + beta * C computed in precision u (Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed., section 3.5):

    |C - C_exact| <= gamma_(k+3) * (|alpha| |op(A)| |op(B)| + |beta| |C0|),  gamma_n = n u / (1 - n u)

(k roundings in the dot product, one each for alpha, the final FMA with beta C and the rounding of alpha
to the working precision). The reference is computed in float64 from the same (already rounded) inputs;
for float64 results it carries the same kind of error, so the bound is doubled there.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from gpufleet.errors import GpufleetError  # noqa: E402
from gpufleet.kernels import GemmError, gemm  # noqa: E402
from gpufleet.kernels.gemm import _gemm  # noqa: E402
from gpufleet.kernels.hostinfo import Blocking  # noqa: E402

DTYPES = (np.float32, np.float64)
# Tiny blocks so small matrices cross every loop boundary: several NC, KC and MC blocks, edge tiles.
SMALL_BLOCKS = {"float32": Blocking(mc=64, kc=40, nc=18), "float64": Blocking(mc=48, kc=24, nc=16)}


def gamma(n: int, dtype) -> float:
    u = np.finfo(dtype).eps / 2
    return n * u / (1 - n * u)


def reference(a, b, c0, alpha, beta, trans_a, trans_b):
    op_a = (a.T if trans_a else a).astype(np.float64)
    op_b = (b.T if trans_b else b).astype(np.float64)
    exact = alpha * (op_a @ op_b)
    bound_terms = abs(alpha) * (np.abs(op_a) @ np.abs(op_b))
    if c0 is not None and beta != 0.0:
        exact = exact + beta * c0.astype(np.float64)
        bound_terms = bound_terms + abs(beta) * np.abs(c0.astype(np.float64))
    return exact, bound_terms


def assert_close(result, a, b, c0, alpha, beta, trans_a=False, trans_b=False):
    exact, terms = reference(a, b, c0, alpha, beta, trans_a, trans_b)
    k = (a.shape[0] if trans_a else a.shape[1])
    factor = 2.0 if result.dtype == np.float64 else 1.0
    tol = factor * gamma(k + 3, result.dtype) * terms
    err = np.abs(result.astype(np.float64) - exact)
    worst = np.unravel_index(np.argmax(err - tol), err.shape) if err.size else None
    assert np.all(err <= tol), f"error {err[worst]} > bound {tol[worst]} at {worst}"


def make(rng, shape, dtype, layout="C"):
    """An array of ``shape`` with the requested memory layout: C, F, strided (every other element in both
    directions of a bigger array) or reversed (negative strides)."""
    if layout == "C":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return np.asfortranarray(rng.standard_normal(shape).astype(dtype))
    if layout == "strided":
        big = rng.standard_normal((2 * shape[0] + 1, 3 * shape[1] + 2)).astype(dtype)
        return big[1::2, 2::3][: shape[0], : shape[1]]
    if layout == "reversed":
        return rng.standard_normal(shape).astype(dtype)[::-1, ::-1]
    raise ValueError(layout)


SHAPES = [(1, 1, 1), (1, 7, 1), (7, 1, 3), (2, 3, 5), (31, 37, 41), (97, 101, 103), (1000, 3, 5),
          (3, 1000, 17), (5, 7, 1000), (130, 65, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_shapes_against_numpy(dtype, m, n, k):
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype)
    result = gemm(a, b)
    assert result.shape == (m, n) and result.dtype == dtype
    assert_close(result, a, b, None, 1.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout_a,layout_b,layout_c", [
    ("C", "C", "C"), ("F", "F", "F"), ("C", "F", "F"), ("F", "C", "C"),
    ("strided", "strided", "strided"), ("reversed", "strided", "C"), ("C", "reversed", "reversed"),
    ("strided", "F", "F")])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_layouts_and_transposes_with_small_blocks(dtype, layout_a, layout_b, layout_c, trans_a, trans_b):
    rng = np.random.default_rng(7)
    m, n, k = 133, 71, 97  # primes-ish, several blocks each way with SMALL_BLOCKS, ragged edges
    a = make(rng, (k, m) if trans_a else (m, k), dtype, layout_a)
    b = make(rng, (n, k) if trans_b else (k, n), dtype, layout_b)
    c = make(rng, (m, n), dtype, layout_c)
    c0 = c.copy()
    result = _gemm(a, b, c, 0.75, -1.25, trans_a, trans_b, 1, SMALL_BLOCKS)
    assert result is c
    assert_close(c, a, b, c0, 0.75, -1.25, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (0.5, 2.0), (-1.3, 0.7), (2.0, -1.0)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_alpha_beta_threads(dtype, alpha, beta, threads):
    rng = np.random.default_rng(11)
    m, n, k = 150, 263, 129  # large enough that the call really splits between threads
    a, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype, "F")
    for layout in ("C", "F"):
        c = make(rng, (m, n), dtype, layout)
        c0 = c.copy()
        _gemm(a, b, c, alpha, beta, False, False, threads, SMALL_BLOCKS)
        assert_close(c, a, b, c0, alpha, beta)
        c = make(rng, (m, n), dtype, layout)
        c0 = c.copy()
        gemm(a, b, out=c, alpha=alpha, beta=beta, threads=threads)  # machine block sizes
        assert_close(c, a, b, c0, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(2000, 9, 64), (9, 2000, 64), (5, 20000, 64), (20000, 5, 64)])
def test_tall_and_wide_products_on_two_threads(dtype, m, n, k):
    """Both thread paths: a shared packed B with the rows split (C has many rows in column-major form)
    and the column split (C has fewer than 2 MR rows), for either orientation of a row-major C."""
    rng = np.random.default_rng(5)
    a, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype)
    for out_layout in ("C", "F"):
        c = make(rng, (m, n), dtype, out_layout)
        c0 = c.copy()
        gemm(a, b, out=c, alpha=1.5, beta=-0.5, threads=2)
        assert_close(c, a, b, c0, 1.5, -0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_ignores_nan_in_out_and_alpha_zero_ignores_inputs(dtype):
    rng = np.random.default_rng(3)
    a, b = make(rng, (20, 30), dtype), make(rng, (30, 10), dtype)
    out = np.full((20, 10), np.nan, dtype)
    gemm(a, b, out=out, beta=0.0)
    assert np.isfinite(out).all()
    assert_close(out, a, b, None, 1.0, 0.0)
    a_nan = np.full_like(a, np.nan)
    c = make(rng, (20, 10), dtype)
    expected = 3.0 * c
    gemm(a_nan, b, out=c, alpha=0.0, beta=3.0)  # BLAS: alpha == 0 does not read A or B
    np.testing.assert_array_equal(c, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_k_zero(dtype):
    c = np.ones((4, 5), dtype)
    gemm(np.ones((4, 0), dtype), np.ones((0, 5), dtype), out=c, beta=2.0)
    np.testing.assert_array_equal(c, 2.0)
    assert gemm(np.ones((0, 3), dtype), np.ones((3, 5), dtype)).shape == (0, 5)
    np.testing.assert_array_equal(gemm(np.ones((2, 0), dtype), np.ones((0, 3), dtype)), 0.0)


def test_out_aliasing_an_input_gives_the_product_of_the_old_values():
    rng = np.random.default_rng(9)
    a = make(rng, (40, 40), np.float64)
    b = make(rng, (40, 40), np.float64)
    a0 = a.copy()
    gemm(a, b, out=a)
    assert_close(a, a0, b, None, 1.0, 0.0)


def test_out_with_no_unit_stride_and_non_native_byte_order():
    rng = np.random.default_rng(4)
    a = make(rng, (33, 20), np.float32).astype(">f4")
    b = make(rng, (20, 17), np.float32)
    big = np.zeros((70, 60), np.float32)
    c = big[::2, ::3][:33, :17]
    gemm(a, b, out=c, beta=1.0)
    assert_close(c, a.astype(np.float32), b, np.zeros((33, 17), np.float32), 1.0, 1.0)
    assert np.count_nonzero(big) == np.count_nonzero(c)  # nothing written outside the view


@pytest.mark.parametrize("beta", [0.0, 1.5])
def test_byte_swapped_out_is_updated_in_place(beta):
    rng = np.random.default_rng(6)
    a, b = make(rng, (19, 23), np.float64), make(rng, (23, 29), np.float64)
    c0 = make(rng, (19, 29), np.float64)
    c = c0.astype(">f8")
    result = gemm(a, b, out=c, beta=beta)
    assert result is c and c.dtype == np.dtype(">f8")
    assert_close(c.astype(np.float64), a, b, c0, 1.0, beta)


def test_large_square_default_path():
    rng = np.random.default_rng(2)
    for dtype in DTYPES:
        a, b = make(rng, (300, 517), dtype), make(rng, (517, 411), dtype)
        assert_close(gemm(a, b, threads=2), a, b, None, 1.0, 0.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 70), n=st.integers(1, 70), k=st.integers(1, 90),
       dtype=st.sampled_from(DTYPES), trans_a=st.booleans(), trans_b=st.booleans(),
       layouts=st.tuples(*[st.sampled_from(["C", "F", "strided", "reversed"])] * 3),
       alpha=st.sampled_from([1.0, -0.5, 3.0]), beta=st.sampled_from([0.0, 1.0, -2.0]),
       threads=st.integers(1, 2), small=st.booleans())
def test_random_problems(m, n, k, dtype, trans_a, trans_b, layouts, alpha, beta, threads, small):
    rng = np.random.default_rng(m * 7919 + n * 31 + k)
    a = make(rng, (k, m) if trans_a else (m, k), dtype, layouts[0])
    b = make(rng, (n, k) if trans_b else (k, n), dtype, layouts[1])
    c = make(rng, (m, n), dtype, layouts[2])
    c0 = c.copy()
    _gemm(a, b, c, alpha, beta, trans_a, trans_b, threads, SMALL_BLOCKS if small else None)
    assert_close(c, a, b, c0, alpha, beta, trans_a, trans_b)


# ---------------------------------------------------------------------------------------- errors


def test_mismatched_inner_dimensions_name_the_shapes():
    with pytest.raises(GemmError, match=r"\(3, 4\).*\(5, 6\)"):
        gemm(np.ones((3, 4)), np.ones((5, 6)))
    with pytest.raises(ValueError, match=r"op\(A\) has shape \(4, 3\).*trans_a=True"):
        gemm(np.ones((3, 4)), np.ones((5, 6)), trans_a=True)  # GemmError is a ValueError too


def test_dtype_errors():
    with pytest.raises(GemmError, match="float32 and float64"):
        gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))
    with pytest.raises(GemmError, match="int64 is not supported"):
        gemm(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(GemmError, match="out has dtype float32"):
        gemm(np.ones((2, 2)), np.ones((2, 2)), out=np.ones((2, 2), np.float32))


def test_out_and_argument_errors():
    with pytest.raises(GemmError, match=r"out has shape \(3, 3\).*\(2, 4\)"):
        gemm(np.ones((2, 3)), np.ones((3, 4)), out=np.ones((3, 3)))
    with pytest.raises(GemmError, match="2-D"):
        gemm(np.ones(3), np.ones((3, 4)))
    with pytest.raises(GemmError, match="threads"):
        gemm(np.ones((2, 2)), np.ones((2, 2)), threads=0)
    readonly = np.ones((2, 2))
    readonly.flags.writeable = False
    with pytest.raises(GemmError, match="read-only"):
        gemm(np.ones((2, 2)), np.ones((2, 2)), out=readonly)
    assert issubclass(GemmError, GpufleetError)
