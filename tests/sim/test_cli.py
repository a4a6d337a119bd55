"""``gpufleet sim`` and ``gpufleet demo`` end to end, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpufleet.cli import main

CLUSTER = """apiVersion: gpufleet.io/v1alpha1
kind: Cluster
metadata: {name: tiny}
spec:
  nodePools:
  - {name: t4, count: 2, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: T4}
  - {name: v100, count: 1, cpu: 64, memory: 256Gi, gpus: 4, gpuModel: V100}
"""
WORKLOAD = """apiVersion: gpufleet.io/v1alpha1
kind: Workload
metadata: {name: tiny}
spec:
  pods:
  - {name: whole, replicas: 4, cpu: 4, memory: 16Gi, gpus: 1, interval: 10, duration: 100}
  - {name: share, replicas: 4, cpu: 2, memory: 8Gi, gpuMilli: 500, arrival: 5, interval: 10, duration: 50}
  - {name: pair, replicas: 2, cpu: 8, memory: 32Gi, gpus: 2, arrival: 20, duration: 200}
  - {name: cpu, replicas: 2, cpu: 1, memory: 1Gi}
"""


@pytest.fixture
def specs(tmp_path):
    (tmp_path / "cluster.yaml").write_text(CLUSTER)
    (tmp_path / "workload.yaml").write_text(WORKLOAD)
    return tmp_path


def sim(specs, *extra: str) -> int:
    return main(["sim", "--cluster", str(specs / "cluster.yaml"), "--workload", str(specs / "workload.yaml"),
                 "--out", str(specs / "out"), "--quiet", *extra])


def test_sim_fill_writes_table_plot_and_json(specs, capsys):
    assert sim(specs, "--policy", "spread,binpack", "--seeds", "1..2") == 0
    out = capsys.readouterr().out
    assert "100%" in out and "130%" in out and "binpack" in out and "allocation.png" in out
    assert (specs / "out" / "allocation.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((specs / "out" / "results.json").read_text())
    assert doc["experiment"]["mode"] == "fill" and doc["experiment"]["seeds"] == [1, 2]
    assert len(doc["runs"]) == 4 and len(doc["runs"][0]["allocation_ratio"]) == 131
    for policy in ("spread", "binpack"):
        at = doc["summary"][policy]["allocation_at"]
        assert 0 < at["100"] <= at["130"] <= 100
    assert (specs / "out" / "allocation_curve.csv").read_text().startswith("policy,seed,0,1,2")


def test_sim_replay_reports_queueing_delay(specs, capsys):
    assert sim(specs, "--mode", "replay", "--policy", "binpack") == 0
    assert "delay p99" in capsys.readouterr().out
    doc = json.loads((specs / "out" / "results.json").read_text())
    summary = doc["summary"]["binpack"]
    assert summary["pods_arrived"] == 12 and summary["pods_scheduled"] == 12
    assert set(summary["queueing_delay"]) == {"p50", "p90", "p99"}


def test_sim_with_a_scheduler_config(specs, capsys):
    (specs / "sched.yaml").write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n"
        "- schedulerName: default-scheduler\n  plugins:\n    score:\n      enabled: [{name: GpuBinPacking, weight: 5}]\n")
    assert sim(specs, "--config", str(specs / "sched.yaml")) == 0
    assert json.loads((specs / "out" / "results.json").read_text())["experiment"]["policies"] == ["sched"]


def test_demo_runs_without_files(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--nodes", "20", "--seeds", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert all(p in out for p in ("random", "spread", "binpack", "allocation.png"))
    doc = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert doc["experiment"]["nodes"] == 20 and set(doc["summary"]) == {"random", "spread", "binpack"}


@pytest.mark.parametrize("change, message", [
    ({"--policy": "tetris"}, "unknown policy 'tetris'"),
    ({"--seeds": "a..b"}, "--seeds: expected"),
    ({"--workload": "pods.csv"}, "pods.csv:2: cpu_milli: expected an integer, got 'lots'"),
    ({"--cluster": "absent.yaml"}, "absent.yaml: cannot read file"),
])
def test_bad_input_is_one_line_and_exit_2(specs, capsys, change, message):
    (specs / "pods.csv").write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,lots,10,1,1000\n")
    options = {"--cluster": "cluster.yaml", "--workload": "workload.yaml", **change}
    argv = ["sim", "--out", str(specs / "out"), "--quiet"]
    for option, value in options.items():
        argv += [option, str(specs / value) if option in ("--cluster", "--workload") else value]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_input_from_the_command_line_has_no_traceback(specs):
    (specs / "pods.csv").write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1,10,x,1000\n")
    proc = subprocess.run([sys.executable, "-m", "gpufleet.cli", "sim", "--cluster", str(specs / "cluster.yaml"),
                           "--workload", str(specs / "pods.csv"), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"gpufleet: error: {specs / 'pods.csv'}:2: num_gpu: expected an integer, got 'x'"
