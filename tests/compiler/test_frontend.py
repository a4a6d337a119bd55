"""Front end (MLIR Toy tutorial, Chapter 1 and the Chapter 7 struct syntax): lexer locations, parser,
diagnostics with file:line:col and a caret, and toyc's AST dump."""

import pytest

from gpufleet.compiler.ast import dump
from gpufleet.compiler.diagnostics import CompileError
from gpufleet.compiler.lexer import tokenize
from gpufleet.compiler.parser import parse_toy


def parse_dump(text: str) -> str:
    module, _ = parse_toy(text, "t.toy")
    return dump(module)


def test_tokens_carry_one_based_line_and_column_and_skip_comments():
    tokens = tokenize("# comment\n  var a<2, 3> = [1.5];", "t.toy")
    assert [(t.kind, t.location.line, t.location.col) for t in tokens[:4]] == [
        ("var", 2, 3), ("identifier", 2, 7), ("<", 2, 8), ("number", 2, 9)]
    assert tokens[-1].kind == "eof"
    assert [t.value for t in tokens if t.kind == "number"] == [2.0, 3.0, 1.5]


def test_ast_dump_of_binary_ops_precedence_and_locations():
    text = "def main() {\n  var x = 1 + 2 * 3;\n  print(x);\n}\n"
    assert parse_dump(text) == (
        "  Module:\n"
        "    Function \n"
        "      Proto 'main' @t.toy:1:1\n"
        "      Params: []\n"
        "      Block {\n"
        "        VarDecl x<> @t.toy:2:3\n"
        "          BinOp: + @t.toy:2:15\n"
        "            1.000000e+00 @t.toy:2:11\n"
        "            BinOp: * @t.toy:2:19\n"
        "              2.000000e+00 @t.toy:2:15\n"
        "              3.000000e+00 @t.toy:2:19\n"
        "        Print [ @t.toy:3:3\n"
        "          var: x @t.toy:3:9\n"
        "        ]\n"
        "      } // Block\n")


def test_return_without_value_dumps_void():
    assert "Return\n          (void)\n" in parse_dump("def f() { return; }")


def test_literal_dims_are_spelled_out_at_every_level():
    assert "Literal: <2, 1>[ <1>[ 1.000000e+00], <1>[ 2.000000e+00]] @t.toy:1:22" in parse_dump(
        "def main() { var a = [[1], [2]]; }")


@pytest.mark.parametrize("text, line, col, fragment", [
    ("def main() { var a = [1, 2; }", 1, 27, "expected '] or ,' in literal expression"),
    ("def main() {\n  print(a)\n}", 3, 1, "expected ';' after expression"),
    ("def main() { var a = [[1], 2]; }", 1, 22, "uniform well-nested dimensions"),
    ("def main() { print(a, b); }", 1, 14, "<single arg>"),
    ("var a = 1;", 1, 1, "expected 'def' in prototype"),
    ("def f(a,) {}", 1, 9, "expected 'identifier'"),
    ("def main() { var a = 1..2; }", 1, 22, "invalid number literal '1..2'"),
    ("def main() { var a = $; }", 1, 22, "expected 'expression'"),
])
def test_parse_errors_are_diagnostics_with_location_and_caret(text, line, col, fragment):
    with pytest.raises(CompileError) as info:
        parse_toy(text, "bad.toy")
    err = info.value
    assert (err.location.line, err.location.col) == (line, col)
    rendered = err.render()
    head, source_line, caret = rendered.split("\n")
    assert head.startswith(f"bad.toy:{line}:{col}: error: ") and fragment in head
    assert source_line == text.split("\n")[line - 1]
    assert caret == " " * (col - 1) + "^"


def test_empty_module_is_an_error_only_before_chapter_7():
    module, warnings = parse_toy("# nothing\n", "e.toy", allow_empty_module=False)
    assert module.records == [] and "Parse error" in warnings[0].render()
    module, warnings = parse_toy("# nothing\n", "e.toy", allow_empty_module=True)
    assert warnings == [] and dump(module) == "  Module:\n"


def test_struct_declarations_and_struct_typed_parameters_parse():
    text = ("struct Pair { var a; var b; }\n"
            "def first(Pair p) { return p.a; }\n"
            "def main() { Pair p = {[1, 2], 3}; print(first(p)); }\n")
    out = parse_dump(text)
    assert "Struct: Pair @t.toy:1:1" in out
    assert "Params: [p]" in out
    assert "BinOp: . @t.toy:2:30" in out
    assert "VarDecl p<Pair> @t.toy:3:14" in out


def test_deeply_nested_input_is_a_diagnostic_not_a_recursion_error():
    text = "def main() { var a = " + "(" * 5000 + "1" + ")" * 5000 + "; }"
    with pytest.raises(CompileError, match="nested deeper"):
        parse_toy(text, "deep.toy")
