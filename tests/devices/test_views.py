"""The devices view where users meet it: ``gpufleet schedule`` and the stranded MIG slices of ``gpufleet sim``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from gpufleet.cli import main
from gpufleet.cluster import load_cluster, load_workload
from gpufleet.devices import scheduler_nodes
from gpufleet.scheduler import builtin_profile
from gpufleet.scheduler.cli import schedule_file
from gpufleet.sim.fill import run_fill
from gpufleet.sim.metrics import typical_pods

VGPU_AND_CONTAINER = """\
apiVersion: gpufleet.io/v1alpha1
kind: Cluster
metadata: {name: vgpu-and-container}
spec:
  gpuOperator: {sandboxWorkloads: {enabled: true, defaultWorkload: container}}
  nodePools:
    - {name: t4, count: 1, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: T4}
    - {name: a10-vgpu, count: 1, cpu: 32, memory: 128Gi, gpus: 1, gpuModel: A10,
       labels: {nvidia.com/gpu.workload.config: vm-vgpu}}
"""


def pod_doc(name: str, resource: str, count: int = 1) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          containers:
            - name: main
              resources: {{requests: {{cpu: "1", memory: 1Gi, {resource}: {count}}}}}
        """)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_schedule_cli_places_a_vgpu_pod_on_the_vm_vgpu_node(tmp_path, capsys):
    cluster = write(tmp_path, "cluster.yaml", VGPU_AND_CONTAINER)
    pods = write(tmp_path, "pods.yaml", "---\n".join([
        pod_doc("vm", "nvidia.com/NVIDIA_A10-12Q"), pod_doc("cuda", "nvidia.com/gpu")]))
    assert main(["schedule", str(cluster), str(pods), "--json"]) == 0
    rows = {r["pod"].split("/")[-1]: r for r in json.loads(capsys.readouterr().out)["pods"]}
    # The seed's default for A10 is two A10-12Q per GPU: the vm-vgpu node advertises
    # nvidia.com/NVIDIA_A10-12Q; the container T4 node advertises nvidia.com/gpu only.
    assert (rows["vm"]["status"], rows["vm"]["node"]) == ("scheduled", "a10-vgpu-0000")
    assert (rows["cuda"]["status"], rows["cuda"]["node"]) == ("scheduled", "t4-0000")
    # The scheduler room alone (no loader) sees the spec's plain nodes, which advertise no vGPU resource.
    plain = {r["pod"].split("/")[-1]: r for r in schedule_file(str(cluster), str(pods))["pods"]}
    assert plain["vm"]["status"] != "scheduled"


STATIC_MIG = """\
apiVersion: gpufleet.io/v1alpha1
kind: Cluster
metadata: {name: static-mig}
spec:
  gpuOperator: {mig: {strategy: mixed}}
  nodePools:
    - {name: t4, count: 1, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: T4}
    - {name: a100, count: 1, cpu: 64, memory: 256Gi, gpus: 2, gpuModel: A100-40GB,
       labels: {nvidia.com/mig.config: all-1g.10gb}}
"""


def test_fill_reports_stranded_mig_slices(tmp_path):
    # mig-parted all-1g.10gb on A100-40GB: 4 x 1g.10gb per GPU (each 2 of 8 memory slices, MIG user guide),
    # so 3 of 7 compute slices per GPU lie outside every instance: 6 stranded on the two-GPU node.
    nodes = scheduler_nodes(load_cluster(write(tmp_path, "c.yaml", STATIC_MIG)))
    pods = load_workload(write(tmp_path, "p.yaml", "---\n".join(
        [pod_doc(f"g{i}", "nvidia.com/gpu") for i in range(3)]
        + [pod_doc(f"m{i}", "nvidia.com/mig-1g.10gb") for i in range(2)]))).pods
    result = run_fill(nodes, pods, [builtin_profile("default")], seed=0, typical=typical_pods(pods))
    assert result.mig_slices["stranded_slices"] == 6 and result.mig_slices["unusable_slices"] == 6
    assert result.final_mig_slices["stranded_slices"] == 6
    no_mig = scheduler_nodes(load_cluster(write(tmp_path, "t.yaml", STATIC_MIG.split("    - {name: a100")[0])))
    plain = run_fill(no_mig, pods[:3], [builtin_profile("default")], seed=0, typical=typical_pods(pods[:3]))
    assert plain.mig_slices == {} and plain.final_mig_slices == {}


def test_sim_tables_show_stranded_mig_slices_only_for_mig_clusters(tmp_path, capsys):
    cluster = write(tmp_path, "c.yaml", STATIC_MIG)
    pods = write(tmp_path, "p.yaml", "---\n".join([pod_doc(f"g{i}", "nvidia.com/gpu") for i in range(2)]
                                                  + [pod_doc("m0", "nvidia.com/mig-1g.10gb")]))
    for mode in ("fill", "replay"):
        out_dir = tmp_path / mode
        assert main(["sim", "--cluster", str(cluster), "--workload", str(pods), "--mode", mode,
                     "--policy", "binpack", "--out", str(out_dir), "--quiet"]) == 0
        out = capsys.readouterr().out.split("plot:")[0]  # the tables, not the file paths
        assert "stranded" in out and "6.0" in out, mode  # the column header may wrap
        assert json.loads((out_dir / "results.json").read_text())["peak_stranded_mig_slices"] == {"binpack": 6.0}
    plain = write(tmp_path, "t.yaml", STATIC_MIG.split("    - {name: a100")[0])
    assert main(["sim", "--cluster", str(plain), "--workload", str(pods), "--policy", "binpack",
                 "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    assert "stranded" not in capsys.readouterr().out.split("plot:")[0]
