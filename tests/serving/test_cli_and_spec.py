import json
import textwrap

import pytest

from gpufleet.cli import main
from gpufleet.cluster.errors import SpecError
from gpufleet.serving.spec import load_service

from gpufleet.shared_data import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "serving" / "models.yaml"


def test_example_spec_plans_and_simulates(tmp_path, capsys):
    assert main(["serve", "plan", str(EXAMPLE), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["feasible"] and plan["gpus_used"] >= 1
    assert {m["model"] for g in plan["gpus"] for p in g for m in p["models"]} == {"classifier", "digits", "images"}
    assert main(["serve", "sim", str(EXAMPLE), "--rates", "classifier=500,digits=200,images=50",
                 "--duration", "2", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"]["requests"] > 0 and (tmp_path / "sim.png").stat().st_size > 0


def test_uniform_arrivals_at_the_planned_rates_meet_every_slo(tmp_path, capsys):
    # Evenly spaced requests at each partition's planned rate are the plan's own assumption: no violation.
    assert main(["serve", "sim", str(EXAMPLE), "--process", "uniform", "--duration", "2", "--out", str(tmp_path),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    assert result["requests"] > 0 and result["violation_ratio"] == 0.0


def test_trace_driven_sim(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("model,arrival_ms\n" + "".join(f"classifier,{i * 2}\n" for i in range(100)))
    assert main(["serve", "sim", str(EXAMPLE), "--trace", str(trace), "--duration", "1", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["models"]["classifier"]["requests"] == 100


def test_bad_spec_is_one_line_with_file_line_and_field(tmp_path, capsys):
    bad = tmp_path / "m.yaml"
    bad.write_text(textwrap.dedent("""\
        apiVersion: gpufleet.io/v1alpha1
        kind: InferenceService
        metadata: {name: x}
        spec:
          planner: fastest
          models: [{name: a, sloMs: 10}]
        """))
    with pytest.raises(SpecError, match=r"m.yaml:5: spec.planner: expected one of gpulet\+int"):
        load_service(bad)
    assert main(["serve", "plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "spec.planner" in err
    bad.write_text(bad.read_text().replace("fastest", "sbp").replace("sloMs: 10", "sloMs: -1"))
    with pytest.raises(SpecError, match=r"spec.models\[0\].sloMs: must be > 0"):
        load_service(bad)


def test_bad_rates_exit_2(capsys):
    assert main(["serve", "sim", str(EXAMPLE), "--rates", "classifier=fast"]) == 2
    assert "expected MODEL=RPS" in capsys.readouterr().err
