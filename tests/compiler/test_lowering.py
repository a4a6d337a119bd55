"""Lowering and execution (Chapters 5 and 6, and the matmul builtin): the affine output's shape, loop
fusion and scalar replacement keep results unchanged, LLVM accepts our IR, and JIT results of example
programs equal numpy's (our printed output is parsed back into arrays)."""

import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.compiler.driver import compile_text
from gpufleet.compiler.jit import parse_and_verify


def run(text, opt=False, name="prog.toy", **options):
    result = compile_text(text, name, emit="jit", opt=opt, **options)
    assert result.exit_code == 0, result.diagnostics
    return result.output


def printed_arrays(output: str, shapes: list) -> list:
    """Split the JIT's printf output ("%f " per element) into arrays of the printed shapes."""
    numbers = [float(x) for x in output.split()]
    arrays, offset = [], 0
    for shape in shapes:
        count = int(np.prod(shape))
        arrays.append(np.array(numbers[offset:offset + count]).reshape(shape))
        offset += count
    assert offset == len(numbers), f"printed {len(numbers)} numbers, expected {offset}"
    return arrays


A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])

TUTORIAL = """
def multiply_transpose(a, b) {
  return transpose(a) * transpose(b);
}
def main() {
  var a = [[1, 2, 3], [4, 5, 6]];
  var b<2, 3> = [1, 2, 3, 4, 5, 6];
  var c = multiply_transpose(a, b);
  var d = multiply_transpose(b, a);
  var e = multiply_transpose(c, d);
  print(c);
  print(e);
}
"""


@pytest.mark.parametrize("opt", [False, True])
def test_tutorial_program_with_two_specialisations_equals_numpy(opt):
    c, e = printed_arrays(run(TUTORIAL, opt), [(3, 2), (2, 3)])
    expected_c = A.T * A.T
    np.testing.assert_array_equal(c, expected_c)
    np.testing.assert_array_equal(e, expected_c.T * expected_c.T)


def test_print_format_is_toycs_printf_lowering():
    """Each element "%f ", a newline after each row; a vector has no newline (LowerToLLVM.cpp)."""
    assert run("def main() { print([[1, 2], [3, 4]]); }") == "1.000000 2.000000 \n3.000000 4.000000 \n"
    assert run("def main() { print([1.5, 2]); print(7); }") == "1.500000 2.000000 7.000000 "


MATMUL = """
def mm_t(x, y) {
  return matmul(x, transpose(y));
}
def main() {
  var a = [[1, 2, 3], [4, 5, 6]];
  var b<4, 3> = [1, 0, 2, 3, 1, 1, 0, 0, 5, 2, 2, 2];
  var sq = [[1, 2], [3, 4]];
  var p = mm_t(a, b);
  var q = mm_t(sq, sq);
  var r = matmul(transpose(a), a) + matmul(transpose(a), a);
  print(p);
  print(q);
  print(r);
  print(matmul(q, q) * q);
}
"""


@pytest.mark.parametrize("opt", [False, True])
def test_matmul_and_a_generic_function_specialised_for_two_shapes_equal_numpy(opt):
    b = np.array([1, 0, 2, 3, 1, 1, 0, 0, 5, 2, 2, 2], dtype=float).reshape(4, 3)
    sq = np.array([[1.0, 2.0], [3.0, 4.0]])
    p, q, r, s = printed_arrays(run(MATMUL, opt), [(2, 4), (2, 2), (3, 3), (2, 2)])
    np.testing.assert_array_equal(p, A @ b.T)
    np.testing.assert_array_equal(q, sq @ sq.T)
    np.testing.assert_array_equal(r, 2 * (A.T @ A))
    np.testing.assert_array_equal(s, (q @ q) * q)


def test_matmul_shapes_are_inferred_and_checked():
    out = compile_text("def main() { var a = [[1, 2, 3]]; var b<3, 2> = [1, 2, 3, 4, 5, 6]; "
                       "print(matmul(a, b)); }", "m.toy", emit="mlir", opt=True)
    assert "toy.matmul %0, %1 : (tensor<1x3xf64>, tensor<3x2xf64>) -> tensor<1x2xf64>" in out.output
    bad = compile_text("def main() {\n  var a = [[1, 2, 3]];\n  print(matmul(a, a));\n}", "bad.toy",
                       emit="jit", opt=True)
    assert bad.exit_code == 1
    assert bad.diagnostics[0].startswith("bad.toy:3:9: error: 'toy.matmul' op inner dimensions differ: "
                                         "tensor<1x3xf64> x tensor<1x3xf64>")
    generic = compile_text("def f(x, y) { return matmul(x, y); }\ndef main() {\n  var a = [[1, 2, 3]];\n"
                           "  print(f(a, a));\n}", "g.toy", emit="jit", opt=True)
    assert generic.exit_code == 1
    assert ("g.toy:1:22: error: 'toy.matmul' op has operands of incompatible shapes: tensor<1x3xf64> and "
            "tensor<1x3xf64> (expected MxK and KxN)") in generic.diagnostics[0]


def test_reshape_of_a_computed_value_and_large_constants_equal_numpy():
    values = np.arange(300, dtype=float).reshape(20, 15) / 4  # > SMALL_CONSTANT: a memref.global
    literal = "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in values) + "]"
    program = (f"def main() {{\n  var a = {literal};\n  var s<15, 15> = 2;\n  var t<15, 20> = a + a;\n"
               f"  print(t);\n  print(matmul(t, a) + s);\n}}\n")
    for opt in (False, True):
        t, m = printed_arrays(run(program, opt), [(15, 20), (15, 15)])
        np.testing.assert_array_equal(t, (values + values).reshape(15, 20))
        np.testing.assert_allclose(m[:, :], (values + values).reshape(15, 20) @ values + 2, rtol=1e-12)
    text = compile_text(program, "g.toy", emit="mlir-affine").output
    assert re.search(r'memref.global "private" constant @__constant_20x15xf64\w* : memref<20x15xf64>', text)
    assert "floordiv" in text and "mod" in text


def affine(text, opt, name="prog.toy", **options):
    result = compile_text(text, name, emit="mlir-affine", opt=opt, **options)
    assert result.exit_code == 0, result.diagnostics
    return result.output


def test_opt_fuses_an_elementwise_chain_into_one_nest_and_drops_the_temporaries():
    program = "def main() { var a = [[1, 2], [3, 4]]; var b = transpose(a) * a + a; print(b * b); }"
    plain, fused = affine(program, False), affine(program, True)
    assert plain.count("memref.alloc") == 5 and plain.count("affine.for") == 8
    assert fused.count("memref.alloc") == 2 and fused.count("affine.for") == 2
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    for opt in (False, True):
        (result,) = printed_arrays(run(program, opt), [(2, 2)])
        np.testing.assert_array_equal(result, (a.T * a + a) ** 2)


def test_fusion_leaves_a_transposed_read_of_the_producer_alone():
    program = "def main() { var a = [[1, 2], [3, 4]]; var b = a + a; print(transpose(b) * b); }"
    text = affine(program, True)
    # transpose(b) fuses into the mul; the add nest does not, since the transpose reads b[j, i]
    assert text.count("affine.for") == 4 and text.count("memref.alloc") == 3
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    (result,) = printed_arrays(run(program, True), [(2, 2)])
    np.testing.assert_array_equal(result, (a + a).T * (a + a))


def test_llvm_ir_is_accepted_by_llvm():
    for emit, opt in (("mlir-llvm", False), ("llvm", False), ("llvm", True)):
        result = compile_text(MATMUL, "m.toy", emit=emit, opt=opt)
        assert result.exit_code == 0, result.diagnostics
        module = llvm.parse_assembly(result.output)
        module.verify()
        assert module.get_function("main") is not None
        assert re.search(r'@"?printf"?\(', result.output)


def test_lowering_errors_are_located_diagnostics():
    recursive = "def f(a) {\n  return f(a);\n}\ndef main() {\n  print(f([1]));\n}\n"
    result = compile_text(recursive, "r.toy", emit="mlir-affine")
    assert result.exit_code == 1
    assert re.match(r"r\.toy:\d+:\d+: error: ", result.diagnostics[0])
    args = compile_text("toy.func @main(%arg0: tensor<2xf64>) {\n  toy.return\n}\n", "a.mlir", emit="jit")
    assert args.exit_code == 1
    assert "a.mlir:1:1: error: expected 'main' to have 0 inputs and 0 results" in args.diagnostics[0]


@st.composite
def programs(draw):
    """Random programs over square and rectangular tensors: +, *, transpose, matmul, a generic helper."""
    n = draw(st.sampled_from([2, 3]))
    env = {}
    lines = []
    for i in range(draw(st.integers(1, 3))):
        values = np.array(draw(st.lists(st.integers(0, 6), min_size=n * n, max_size=n * n)),
                          dtype=float).reshape(n, n)
        lines.append(f"  var v{i}<{n}, {n}> = [{', '.join(str(int(v)) for v in values.flat)}];")
        env[f"v{i}"] = values
    names = sorted(env)
    expr, value = names[0], env[names[0]]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["t", "m", "a", "mm", "g"]))
        other = draw(st.sampled_from(names))
        if kind == "t":
            expr, value = f"transpose({expr})", value.T
        elif kind == "m":
            expr, value = f"{expr} * {other}", value * env[other]
        elif kind == "a":
            expr, value = f"({expr} + {other})", value + env[other]
        elif kind == "mm":
            expr, value = f"matmul({other}, {expr})", env[other] @ value
        else:
            expr, value = f"helper({expr}, {other})", value.T * env[other]
    lines.append(f"  print({expr});")
    text = "def helper(a, b) { return transpose(a) * b; }\ndef main() {\n" + "\n".join(lines) + "\n}\n"
    return text, value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_programs_run_like_numpy_with_and_without_opt(case):
    text, expected = case
    for opt in (False, True):
        (result,) = printed_arrays(run(text, opt), [expected.shape])
        np.testing.assert_array_equal(result, expected)


def test_parse_and_verify_is_what_the_driver_uses():
    from gpufleet.compiler.lower_to_affine import lower_to_affine
    from gpufleet.compiler.lower_to_llvm import lower_to_llvm
    from gpufleet.compiler.mlir_parser import parse_mlir
    from gpufleet.compiler.passes import optimize

    module = parse_mlir("toy.func @main() {\n  %0 = toy.constant dense<1.0> : tensor<2x2xf64>\n"
                        "  toy.print %0 : tensor<2x2xf64>\n  toy.return\n}\n", "s.mlir")
    optimize(module, 7)
    parsed = parse_and_verify(lower_to_llvm(lower_to_affine(module)))
    assert "define void @main()" in str(parsed)
