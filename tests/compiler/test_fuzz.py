"""Property tests: random token streams (Toy and MLIR) never crash the compiler with a Python
exception; every rejection is a diagnostic `file:line:col: error: ...`."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.compiler.driver import compile_text

TOY_TOKENS = ["def", "var", "return", "struct", "main", "f", "a", "b", "print", "transpose", "matmul", "S",
              "(", ")", "{", "}", "[", "]", "<", ">", ",", ";", "=", "+", "-", "*", ".", "1", "2.5", "0",
              "#c\n", "\n", "@", "x"]
MLIR_TOKENS = ["toy.func", "@main", "@f", "(", ")", "{", "}", "%0", "%1", "%arg0", "=", ":", ",", "->",
               "toy.constant", "toy.transpose", "toy.mul", "toy.print", "toy.return", "toy.reshape",
               "toy.generic_call", "toy.struct_access", "toy.matmul", "dense<1.0>", "dense<[1.0, 2.0]>", "tensor<2xf64>",
               "tensor<*xf64>", "tensor<f64>", "!toy.struct<tensor<*xf64>>", "to", "[0]", '"toy.print"',
               "private", "module", "\n", "[", "]"]
DIAGNOSTIC = re.compile(r"^\S+:\d+:\d+: error: ")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text, name, **options):
    result = compile_text(text, name, **options)  # must not raise
    if result.exit_code:
        assert len(result.diagnostics) == 1
        assert DIAGNOSTIC.match(result.diagnostics[0]), result.diagnostics[0]
    return result


@SETTINGS
@given(st.lists(st.sampled_from(TOY_TOKENS), max_size=40), st.sampled_from(["ast", "mlir", "mlir-affine"]),
       st.booleans())
def test_random_toy_token_streams_give_diagnostics_not_tracebacks(tokens, emit, opt):
    check(" ".join(tokens), "fuzz.toy", emit=emit, opt=opt and emit != "ast")


@SETTINGS
@given(st.lists(st.sampled_from(MLIR_TOKENS), max_size=40), st.booleans())
def test_random_mlir_token_streams_give_diagnostics_not_tracebacks(tokens, opt):
    check(" ".join(tokens), "fuzz.mlir", opt=opt)
    check(" ".join(tokens), "fuzz.mlir", emit="mlir-affine", opt=opt)


@st.composite
def programs(draw):
    """Well-formed Toy programs built from a few shapes and operations."""
    shapes = [(2, 3), (3, 2), (2, 2)]
    lines, names = [], []
    for i in range(draw(st.integers(1, 5))):
        shape = draw(st.sampled_from(shapes))
        count = shape[0] * shape[1]
        values = ", ".join(str(draw(st.integers(0, 9))) for _ in range(count))
        lines.append(f"  var v{i}<{shape[0]}, {shape[1]}> = [{values}];")
        names.append(f"v{i}")
    expr = draw(st.sampled_from(names))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["t", "m", "a", "g", "mm"]))
        other = draw(st.sampled_from(names))
        expr = {"t": f"transpose({expr})", "m": f"{expr} * {other}", "a": f"{expr} + {other}",
                "g": f"helper({expr}, {other})", "mm": f"matmul({expr}, {other})"}[kind]
    lines.append(f"  print({expr});")
    return "def helper(a, b) { return transpose(a) * b; }\ndef main() {\n" + "\n".join(lines) + "\n}\n"


@SETTINGS
@given(programs(), st.booleans(), st.integers(3, 7), st.sampled_from(["mlir", "mlir-affine"]))
def test_random_well_formed_programs_compile_or_give_a_located_diagnostic(text, opt, chapter, emit):
    if emit == "mlir-affine" and chapter < 5:
        emit = "mlir"
    result = check(text, "prog.toy", opt=opt, chapter=chapter, emit=emit)
    if result.exit_code == 0:
        assert result.output.startswith("module {")
        if opt and chapter >= 4:
            assert "generic_call" not in result.output and "tensor<*xf64>" not in result.output
