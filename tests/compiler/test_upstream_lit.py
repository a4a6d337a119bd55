"""Run the MLIR Toy tutorial's own lit tests (unmodified, ../shared/toy-tests) against our toyc with
the PyPI `lit` and `filecheck` packages, through tests/compiler/lit/lit.cfg.py (toyc-chN ->
`python -m gpufleet.compiler --chapter N`).

The expected outcome of every upstream test is listed here: all 56 pass (none is reported UNSUPPORTED
any more: tests/compiler/lit/toy_format.py's NOT_BUILT is empty).
"""

import re
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

pytest.importorskip("lit")
pytest.importorskip("filecheck")

LIT_DIR = REPO_ROOT / "tests" / "compiler" / "lit"

EXPECTED_PASS = sorted(
    [f"Ch1/{t}" for t in ("ast.toy", "empty.toy")]
    + [f"Ch2/{t}" for t in ("ast.toy", "codegen.toy", "empty.toy", "invalid.mlir", "scalar.toy")]
    + [f"Ch3/{t}" for t in ("ast.toy", "codegen.toy", "empty.toy", "invalid.mlir", "scalar.toy",
                            "transpose_transpose.toy", "trivial_reshape.toy")]
    + [f"Ch{n}/{t}" for n in (4, 5, 6) for t in ("ast.toy", "codegen.toy", "empty.toy", "invalid.mlir",
                                                 "scalar.toy", "shape_inference.mlir",
                                                 "transpose_transpose.toy", "trivial_reshape.toy")]
    + [f"Ch7/{t}" for t in ("ast.toy", "codegen.toy", "empty.toy", "invalid.mlir", "scalar.toy",
                            "shape_inference.mlir", "struct-ast.toy", "struct-codegen.toy",
                            "struct-opt.mlir", "transpose_transpose.toy", "trivial_reshape.toy")]
    + [f"Ch{n}/affine-lowering.mlir" for n in (5, 6, 7)]
    + [f"Ch{n}/{t}" for n in (6, 7) for t in ("jit.toy", "llvm-lowering.mlir")]
)
EXPECTED_UNSUPPORTED: list[str] = []  # every stage is built: all 56 upstream tests run


def run_lit(toy_tests, exec_root, *extra):
    lit = shutil.which("lit", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("lit")
    command = [lit] if lit else [sys.executable, "-c", "import sys; from lit.main import main; sys.exit(main())"]
    command += ["-v", "-j2", f"--param=toy_tests={toy_tests}", f"--param=exec_root={exec_root}",
                *extra, str(LIT_DIR)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    results: dict[str, list[str]] = {}
    for status, name in re.findall(r"^([A-Z]+): toy-upstream :: (\S+)", proc.stdout, re.M):
        results.setdefault(status, []).append(name)
    return proc, {k: sorted(v) for k, v in results.items()}


def test_upstream_toy_lit_tests(toy_tests, tmp_path):
    proc, results = run_lit(toy_tests, tmp_path)
    report = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert results.get("FAIL", []) == [], report
    assert results.get("PASS") == EXPECTED_PASS, report
    assert results.get("UNSUPPORTED", []) == EXPECTED_UNSUPPORTED, report
    assert len(EXPECTED_PASS) == 56
    assert proc.returncode == 0, report


def test_lit_harness_reports_a_wrong_check_as_failure(toy_tests, tmp_path):
    """The harness is not vacuous: an upstream test with one CHECK line changed must FAIL."""
    suite = tmp_path / "suite" / "Ch2"
    suite.mkdir(parents=True)
    text = (toy_tests / "Ch2" / "scalar.toy").read_text()
    (suite / "scalar.toy").write_text(text.replace("dense<5.500000e+00>", "dense<6.500000e+00>"))
    proc, results = run_lit(tmp_path / "suite", tmp_path / "exec")
    assert results.get("FAIL") == ["Ch2/scalar.toy"], proc.stdout[-3000:]
    assert proc.returncode != 0
