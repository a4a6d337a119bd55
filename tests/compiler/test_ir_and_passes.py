"""Toy IR (Chapter 2), its printer/parser/verifier, and the passes (Chapters 3, 4, 7)."""

import pytest

from gpufleet.compiler.driver import compile_text
from gpufleet.compiler.ir import verify
from gpufleet.compiler.mlir_parser import parse_mlir
from gpufleet.compiler.printer import print_module

PROGRAM = """
def multiply_transpose(a, b) { return transpose(a) * transpose(b); }
def main() {
  var a<2, 3> = [[1, 2, 3], [4, 5, 6]];
  var b<2, 3> = [1, 2, 3, 4, 5, 6];
  var c = multiply_transpose(a, b);
  var d = multiply_transpose(b, a);
  print(d + c);
}
"""


def toyc(text, name="t.toy", **options):
    result = compile_text(text, name, **options)
    assert result.exit_code == 0, result.diagnostics
    return result.output


def test_printed_ir_parses_back_to_the_same_text():
    printed = toyc(PROGRAM, chapter=7)
    module = parse_mlir(printed, "round.mlir")
    verify(module)
    assert print_module(module) == printed


def test_generic_form_is_accepted():
    text = '''
"toy.func"() ({
^bb0(%x: tensor<2x2xf64>):
  %0 = "toy.transpose"(%x) : (tensor<2x2xf64>) -> tensor<2x2xf64>
  %1 = "toy.struct_constant"() {value = [dense<1.0> : tensor<2xf64>]} : () -> !toy.struct<tensor<*xf64>>
  %2 = "toy.struct_access"(%1) {index = 0 : i64} : (!toy.struct<tensor<*xf64>>) -> tensor<*xf64>
  "toy.print"(%2) : (tensor<*xf64>) -> ()
  "toy.return"(%0) : (tensor<2x2xf64>) -> ()
}) {function_type = (tensor<2x2xf64>) -> tensor<2x2xf64>, sym_name = "f", sym_visibility = "private"} : () -> ()
'''
    out = toyc(text, "g.mlir")
    assert "toy.func private @f(%arg0: tensor<2x2xf64>) -> tensor<2x2xf64> {" in out
    assert "%0 = toy.transpose(%arg0 : tensor<2x2xf64>) to tensor<2x2xf64>" in out
    assert "toy.struct_access %1[0] : !toy.struct<tensor<*xf64>> -> tensor<*xf64>" in out


@pytest.mark.parametrize("body, message", [
    ('%0 = "toy.print"() : () -> tensor<2x3xf64>', "'toy.print' op expects 1 operands"),
    ("%0 = toy.constant dense<1.0> : tensor<2xf64>", "block must end with a 'toy.return' terminator"),
    ("%0 = toy.constant dense<1.0> : tensor<2xf64>\n  %1 = toy.transpose(%0 : tensor<2xf64>) to tensor<3xf64>\n"
     "  toy.return", "expected result shape to be a transpose of the input"),
    ("%0 = toy.generic_call @nope() : () -> tensor<*xf64>\n  toy.return", "does not reference a valid function"),
    ("toy.print %9 : tensor<2xf64>\n  toy.return", "use of undeclared SSA value name '%9'"),
    ("%0 = toy.constant dense<[1.0, 2.0]> : tensor<3xf64>\n  toy.return", "does not match its type"),
    ('%0 = "toy.frobnicate"() : () -> tensor<f64>\n  toy.return', "unknown operation 'toy.frobnicate'"),
])
def test_invalid_ir_is_rejected_with_a_located_message(body, message):
    text = "toy.func @main() {\n  " + body + "\n}\n"
    result = compile_text(text, "bad.mlir")
    assert result.exit_code == 1
    assert result.output == ""
    assert len(result.diagnostics) == 1 and message in result.diagnostics[0]
    assert result.diagnostics[0].startswith("bad.mlir:") and "^" in result.diagnostics[0]


def test_chapter_3_canonicalizer_folds_reshapes_and_transposes_but_keeps_calls():
    out = toyc("def tt(x) { return transpose(transpose(x)); }\n"
               "def main() { var a<2,1> = [1, 2]; var b<2,1> = a; print(tt(b)); }", chapter=3, opt=True)
    assert "toy.func @tt(%arg0: tensor<*xf64>) -> tensor<*xf64> {\n    toy.return %arg0" in out
    assert "toy.reshape" not in out
    assert "%0 = toy.constant dense<[[1.000000e+00], [2.000000e+00]]> : tensor<2x1xf64>" in out
    assert "toy.generic_call @tt(%0)" in out


def test_chapter_4_pipeline_inlines_infers_shapes_and_merges_common_subexpressions():
    out = toyc(PROGRAM, chapter=4, opt=True)
    assert "multiply_transpose" not in out and "tensor<*xf64>" not in out
    assert out.count("toy.transpose") == 1 and out.count("toy.constant") == 1
    assert "toy.mul %1, %1 : tensor<3x2xf64>" in out
    assert "toy.add %2, %2 : tensor<3x2xf64>" in out


def test_splat_scalar_reshape_folds_to_a_splat_constant():
    out = toyc("def main() { var a<2, 2> = 5.5; print(a); }", opt=True)
    assert "%0 = toy.constant dense<5.500000e+00> : tensor<2x2xf64>" in out


def test_shape_inference_reports_incompatible_operands():
    result = compile_text("def f(a, b) { return a * b; }\n"
                          "def main() { var a = [[1, 2, 3]]; var b = [[1], [2], [3]]; print(f(a, b)); }",
                          "s.toy", opt=True)
    assert result.exit_code == 1
    assert "incompatible shapes: tensor<1x3xf64> and tensor<3x1xf64>" in result.diagnostics[0]


def test_recursive_functions_are_not_inlined_and_shape_inference_fails_cleanly():
    result = compile_text("def f(a) { return f(a); }\ndef main() { print(f([1])); }", "r.toy", opt=True)
    assert result.exit_code == 1
    assert "Shape inference failed" in result.diagnostics[0]


def test_irgen_errors_name_the_location():
    result = compile_text("def main() {\n  print(b);\n}\n", "u.toy")
    assert result.exit_code == 1
    assert result.diagnostics[0].startswith("u.toy:2:9: error: unknown variable 'b'")
    result = compile_text("def main() { print(g(1)); }", "u.toy")
    assert "no defined function found for 'g'" in result.diagnostics[0]


def test_struct_members_fold_through_struct_access():
    text = ("struct S { var a; var b; }\n"
            "def second(S s) { return s.b; }\n"
            "def main() { S s = {[1, 2], [3, 4]}; print(second(s)); }")
    plain = toyc(text)
    assert "toy.struct_access %arg0[1] : !toy.struct<tensor<*xf64>, tensor<*xf64>> -> tensor<*xf64>" in plain
    out = toyc(text, opt=True)
    assert "toy.struct" not in out
    assert "%0 = toy.constant dense<[3.000000e+00, 4.000000e+00]> : tensor<2xf64>" in out
