"""`gpufleet schedule` end to end on the example specs and on bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpufleet.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CLUSTER, PODS, PROFILE = (str(EXAMPLES / f) for f in ("cluster.yaml", "pods.yaml", "profile.yaml"))
TOO_BIG = ("0/8 nodes are available: 2 node(s) had untolerated taint {dedicated: inference}, "
           "6 Insufficient nvidia.com/gpu.")


def run_json(capsys, *args):
    assert main(["schedule", CLUSTER, PODS, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args", [(), ("--policy", "binpack"), ("--policy", "spread"), ("--config", PROFILE),
                                  ("--policy", "random", "--seed", "3")])
def test_schedule_json_places_the_example_pods(capsys, args):
    result = run_json(capsys, *args)
    by_name = {r["pod"]: r for r in result["pods"]}
    # queue order: bert-train has priority 100, the others follow in file order
    assert [r["pod"] for r in result["pods"]] == ["default/bert-train", "default/notebook", "default/etl",
                                                  "default/resnet-serve", "default/too-big"]
    train = by_name["default/bert-train"]
    assert train["status"] == "scheduled" and train["node"].startswith("a100-") and len(train["gpus"]) == 2
    notebook = by_name["default/notebook"]
    assert notebook["status"] == "scheduled" and len(notebook["gpus"]) == 1
    assert not notebook["node"].startswith(("t4-", "cpu-"))  # T4s are tainted, cpu nodes have no GPU
    assert by_name["default/etl"]["node"].startswith("cpu-") and by_name["default/etl"]["gpus"] == []
    assert by_name["default/resnet-serve"]["node"].startswith("t4-")
    too_big = by_name["default/too-big"]
    assert too_big["status"] == "unschedulable" and too_big["node"] is None and too_big["message"] == TOO_BIG
    # 2 A100s + 1 T4 + a 250-milli share out of 2*8 + 2*4 + 2*4 = 32 GPUs
    assert result["summary"] == {"pods": 5, "scheduled": 4, "gpu_allocated_milli": 3250, "gpu_total_milli": 32000}


def test_binpack_puts_the_share_next_to_the_trainer(capsys):
    by_name = {r["pod"]: r for r in run_json(capsys, "--policy", "binpack")["pods"]}
    assert by_name["default/notebook"]["node"] == by_name["default/bert-train"]["node"]


def test_schedule_table(capsys):
    assert main(["schedule", CLUSTER, PODS, "--policy", "binpack"]) == 0
    out = capsys.readouterr().out
    assert "default/bert-train" in out and "a100-" in out
    assert TOO_BIG in out
    assert "4/5 pods placed; GPUs 10.2% allocated (3.25 of 32)" in out


@pytest.mark.parametrize("args, message", [
    (["schedule", "missing.yaml", PODS], "missing.yaml: cannot read file"),
    (["schedule", CLUSTER, PODS, "--policy", "greedy"], "unknown policy 'greedy'"),
    (["schedule", PODS, PODS], "kind: expected kind Cluster or Node, got 'Pod'"),
    (["schedule", CLUSTER, CLUSTER], "kind: expected kind Pod or PodGroup or Workload, got 'Cluster'"),
    (["schedule", CLUSTER, PODS, "--config", CLUSTER], "kind: expected kind KubeSchedulerConfiguration"),
])
def test_bad_input_exits_2_with_one_line(capsys, args, message):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpufleet: error: ") and message in lines[0]


def test_installed_script_reports_bad_input_without_traceback(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus:\n  allocatable: {cpu: -2, memory: 1Gi}\n")
    script = Path(sys.executable).parent / "gpufleet"
    proc = subprocess.run([str(script), "schedule", str(bad), PODS], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80"}, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"gpufleet: error: {bad}:5: status.allocatable.cpu: must not be negative "
                                   "(expected a CPU quantity such as 4 or 500m), got -2")


GANGS = """
apiVersion: scheduling.x-k8s.io/v1alpha1
kind: PodGroup
metadata: {name: pair}
spec: {minMember: 2}
---
apiVersion: scheduling.x-k8s.io/v1alpha1
kind: PodGroup
metadata: {name: huge}
spec: {minMember: 3}
---
apiVersion: gpufleet.io/v1alpha1
kind: Workload
metadata: {name: gangs}
spec:
  pods:
  - {name: pair, replicas: 2, cpu: 1, memory: 1Gi, gpus: 1, labels: {scheduling.x-k8s.io/pod-group: pair}}
  - {name: huge, replicas: 3, cpu: 1, memory: 1Gi, gpus: 8, labels: {scheduling.x-k8s.io/pod-group: huge}}
"""


def test_schedule_with_gangs_binds_whole_groups_or_nothing(tmp_path, capsys):
    pods = tmp_path / "gangs.yaml"
    pods.write_text(GANGS)
    assert main(["schedule", CLUSTER, str(pods), "--policy", "default+gang", "--json"]) == 0
    rows = {r["pod"]: r for r in json.loads(capsys.readouterr().out)["pods"]}
    # the pair fits: both members bound, each on a GPU
    assert all(rows[f"default/pair-{i}"]["status"] == "scheduled" and rows[f"default/pair-{i}"]["node"]
               for i in range(2))
    # three 8-GPU pods: the example cluster has only two 8-GPU nodes, so no member of the group is bound
    assert all(rows[f"default/huge-{i}"]["status"] != "scheduled" and rows[f"default/huge-{i}"]["node"] is None
               for i in range(3))
    # without gang scheduling some but not all of the three are bound: a partial gang holding 8-GPU nodes
    assert main(["schedule", CLUSTER, str(pods), "--policy", "default", "--json"]) == 0
    rows = {r["pod"]: r for r in json.loads(capsys.readouterr().out)["pods"]}
    assert 1 <= sum(rows[f"default/huge-{i}"]["status"] == "scheduled" for i in range(3)) < 3
