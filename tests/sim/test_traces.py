"""Readers: every openb variant parses; bad CSV rows name file, line and column; YAML specs load."""

from __future__ import annotations

import pytest

from gpufleet.cluster import SpecError
from gpufleet.sim.traces import read_nodes, read_openb_pods, read_pods


def test_every_openb_variant_parses(openb):
    nodes = read_nodes(openb / "openb_node_list_gpu_node.csv")
    assert len(nodes) == 1213 and sum(n.gpu_count for n in nodes) == 6212
    assert len(read_nodes(openb / "openb_node_list_all_node.csv")) == 1523
    variants = sorted(openb.glob("openb_pod_list_*.csv"))
    assert len(variants) >= 20
    for path in variants:
        pods = read_pods(path)
        assert pods, path
        assert all(0 <= p.gpu_milli <= 1000 and p.num_gpu >= 0 for p in pods), path
    spec = read_pods(openb / "openb_pod_list_gpuspec33.csv")
    assert any(len(p.gpu_models) > 1 for p in spec)  # "A|B" becomes two allowed models
    multigpu = read_pods(openb / "openb_pod_list_multigpu50.csv")  # five columns only
    assert all(p.creation_time == 0.0 and p.deletion_time is None for p in multigpu)


HEADER = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
GOOD = "p0,1000,2048,1,500,V100M16|T4,LS,Running,0,100,0\n"


@pytest.mark.parametrize("row, message", [
    ("p1,abc,2048,1,500,,LS,Running,0,100,0\n", "pods.csv:3: cpu_milli: expected an integer, got 'abc'"),
    ("p1,1000,2048,1,1500,,LS,Running,0,100,0\n", "pods.csv:3: gpu_milli: expected an integer 0..1000, got 1500"),
    ("p1,1000,2048,-1,500,,LS,Running,0,100,0\n", "pods.csv:3: num_gpu: expected an integer >= 0, got -1"),
    ("p1,1000,2048,1,500,,LS,Running,x,100,0\n", "pods.csv:3: creation_time: expected a number of seconds"),
    ("p1,1000,2048,1,500,,LS,Running,50,10,0\n", "pods.csv:3: deletion_time: deletion_time 10 is before"),
    ("p1,1000,2048\n", "pods.csv:3: expected 11 fields, got 3"),
])
def test_bad_pod_row_names_file_line_and_column(tmp_path, row, message):
    path = tmp_path / "pods.csv"
    path.write_text(HEADER + GOOD + row)
    with pytest.raises(SpecError) as err:
        read_openb_pods(path)
    assert str(err.value).startswith(str(tmp_path / message))


def test_bad_node_csv(tmp_path):
    path = tmp_path / "nodes.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,T4\nn1,64000,lots,2,T4\n")
    with pytest.raises(SpecError, match=r"nodes.csv:3: memory_mib: expected an integer, got 'lots'"):
        read_nodes(path)
    path.write_text("sn,cpu_milli,gpu,model\nn0,64000,2,T4\n")
    with pytest.raises(SpecError, match=r"nodes.csv:1: missing column\(s\) memory_mib"):
        read_nodes(path)
    with pytest.raises(SpecError, match="cannot read file"):
        read_nodes(tmp_path / "absent.csv")


def test_good_rows_become_nodes_and_pods(tmp_path):
    pods_csv = tmp_path / "pods.csv"
    pods_csv.write_text(HEADER + GOOD)
    (pod,) = read_pods(pods_csv)
    assert (pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli) == (1000, 2048, 1, 500)
    assert pod.gpu_models == ("V100M16", "T4") and (pod.creation_time, pod.deletion_time) == (0.0, 100.0)
    nodes_csv = tmp_path / "nodes.csv"
    nodes_csv.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,96000,393216,8,G2\nc0,32000,262144,0,\n")
    g2, cpu_only = read_nodes(nodes_csv)
    assert (g2.gpu_count, g2.gpu_model, cpu_only.gpu_count) == (8, "G2", 0)


def test_yaml_cluster_and_workload(tmp_path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("apiVersion: gpufleet.io/v1alpha1\nkind: Cluster\nmetadata: {name: tiny}\nspec:\n"
                       "  nodePools:\n  - {name: v100, count: 2, cpu: 32, memory: 128Gi, gpus: 4, gpuModel: V100}\n")
    workload = tmp_path / "workload.yaml"
    workload.write_text("apiVersion: gpufleet.io/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                        "  pods:\n  - {name: train, replicas: 3, cpu: 4, memory: 8Gi, gpus: 2, duration: 60}\n")
    nodes, pods = read_nodes(cluster), read_pods(workload)
    assert [n.gpu_count for n in nodes] == [4, 4]
    assert [(p.num_gpu, p.deletion_time) for p in pods] == [(2, 60.0)] * 3
