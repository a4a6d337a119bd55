"""`gpufleet toyc` and `python -m gpufleet.compiler`: toyc-style options, exit statuses, diagnostics."""

import subprocess
import sys

from gpufleet.cli import main as gpufleet_main


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_single_dash_long_options_like_toyc(tmp_path, capsys):
    path = write(tmp_path, "a.toy", "def main() { var a<2,1> = [1, 2]; var b<2,1> = a; print(b); }")
    assert gpufleet_main(["toyc", path, "-emit=mlir", "-opt", "--chapter", "3"]) == 0
    out = capsys.readouterr().out
    assert "toy.constant dense<[[1.000000e+00], [2.000000e+00]]> : tensor<2x1xf64>" in out
    assert "toy.reshape" not in out
    assert gpufleet_main(["toyc", path, "--emit", "ast"]) == 0
    assert "Module:" in capsys.readouterr().out


def test_x_mlir_reads_ir_whatever_the_suffix(tmp_path, capsys):
    path = write(tmp_path, "ir.txt", "toy.func @main() {\n  toy.return\n}\n")
    assert gpufleet_main(["toyc", path, "-x", "mlir", "-emit=mlir"]) == 0
    assert "toy.func @main() {" in capsys.readouterr().out


def test_compile_errors_print_a_diagnostic_and_exit_1(tmp_path, capsys):
    path = write(tmp_path, "bad.toy", "def main() {\n  var = 3;\n}\n")
    assert gpufleet_main(["toyc", path]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"{path}:2:7: error: Parse error: expected 'identifier' after 'var' "
                                f"declaration but has '='", "  var = 3;", "      ^"]


def test_usage_errors_are_one_line_with_exit_2(tmp_path, capsys):
    assert gpufleet_main(["toyc", str(tmp_path / "missing.toy")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such file")
    path = write(tmp_path, "ok.toy", "def main() { print([1]); }")
    assert gpufleet_main(["toyc", path, "-emit=jit", "--chapter", "5"]) == 2
    assert "-emit=jit needs chapter 6 or later" in capsys.readouterr().err


def test_jit_prints_like_toyc(tmp_path, capsys):
    path = write(tmp_path, "ok.toy", "def main() { print(matmul([[1, 2], [3, 4]], [[1, 0], [0, 1]])); }")
    assert gpufleet_main(["toyc", path, "-emit=jit", "-opt"]) == 0
    assert capsys.readouterr().out == "1.000000 2.000000 \n3.000000 4.000000 \n"
    proc = subprocess.run([sys.executable, "-m", "gpufleet.compiler", path, "-emit=jit"],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "1.000000 2.000000 \n3.000000 4.000000 \n")


def test_module_entry_point_runs_without_traceback(tmp_path):
    path = write(tmp_path, "m.mlir", '%0 = "toy.print"() : () -> tensor<2x3xf64>\n')
    proc = subprocess.run([sys.executable, "-m", "gpufleet.compiler", path, "-emit=mlir", "-chapter", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "m.mlir:1:1: error: expected 'toy.func'" in proc.stderr
