"""FGD fragmentation against hand-computed values, typical pods, and queueing-delay percentiles."""

from __future__ import annotations

import pytest

from gpufleet.cluster import ClusterState, Node, Pod
from gpufleet.sim.metrics import (PodShape, TypicalPod, cluster_fragmentation, delay_percentiles,
                                  node_fragmentation, typical_pods)

from .conftest import gpu_node, gpu_pod


def three_nodes() -> ClusterState:
    """n0: T4 GPUs with 300 and 1000 milli free; n1: V100s with 500, 0, 0, 0 free; n2: no GPU."""
    cluster = ClusterState([gpu_node("n0", 2, "T4", cpu_milli=16000), gpu_node("n1", 4, "V100", cpu_milli=32000),
                            Node("n2", 8000, 32768)])
    cluster.assign(gpu_pod("a", gpu_milli=700), 0, (0,))
    cluster.assign(gpu_pod("b", gpu_milli=500), 1, (0,))
    cluster.assign(gpu_pod("c", num_gpu=3), 1, (1, 2, 3))
    return cluster


def workload() -> list[Pod]:
    # 5 whole-GPU pods, 3 pods sharing 400 milli, 2 CPU-only pods: all three shapes cover >= 95%.
    return [gpu_pod(f"w{i}") for i in range(5)] + [gpu_pod(f"s{i}", gpu_milli=400) for i in range(3)] + \
        [gpu_pod(f"c{i}", num_gpu=0) for i in range(2)]


def test_typical_pods_are_frequent_shapes_renormalised():
    typical = typical_pods(workload())
    assert [(t.shape.num_gpu, t.shape.gpu_milli) for t in typical] == [(1, 1000), (1, 400), (0, 0)]
    assert [t.frequency for t in typical] == pytest.approx([0.5, 0.3, 0.2])
    # 19 of one shape and 1 of another: the first covers 95% alone, so the rare one is dropped.
    rare = typical_pods([gpu_pod(f"w{i}") for i in range(19)] + [gpu_pod("x", num_gpu=2)])
    assert [(t.shape.num_gpu, t.frequency) for t in rare] == [(1, 1.0)]


def test_fragmentation_matches_hand_computation():
    cluster = three_nodes()
    # n0 (free 300, 1000): whole-GPU pod fits -> the 300 GPU is fragment; 400-milli pod fits -> 300 again;
    # CPU-only -> all 1300.  F = .5*300 + .3*300 + .2*1300 = 500.
    # n1 (free 500, 0, 0, 0): whole-GPU pod cannot fit -> all 500; 400-milli fits -> 0; CPU-only -> 500.
    # F = .5*500 + 0 + .2*500 = 350.  n2 has no GPU: 0.
    assert node_fragmentation(cluster, typical_pods(workload())).tolist() == pytest.approx([500, 350, 0])
    fragment, ratio = cluster_fragmentation(cluster, typical_pods(workload()))
    assert fragment == pytest.approx(850) and ratio == pytest.approx(850 / 1800)


def test_fragmentation_counts_all_free_milli_where_cpu_or_model_rules_a_pod_out():
    cluster = three_nodes()
    cluster.assign(Pod("cpu-hog", cpu_milli=14500), 0)  # n0 keeps 500 millicores
    needs_cpu = [TypicalPod(PodShape(1000, 1, 400), 1.0)]
    assert node_fragmentation(cluster, needs_cpu).tolist() == pytest.approx([1300, 0, 0])
    v100_only = [TypicalPod(PodShape(100, 1, 400, ("V100",)), 1.0)]
    assert node_fragmentation(cluster, v100_only).tolist() == pytest.approx([1300, 0, 0])
    t4_only = [TypicalPod(PodShape(100, 1, 200, ("T4",)), 1.0)]
    assert node_fragmentation(cluster, t4_only).tolist() == pytest.approx([0, 500, 0])


def test_idle_cluster_and_delay_percentiles():
    empty = ClusterState([gpu_node("n0", 2)])
    assert cluster_fragmentation(empty, [TypicalPod(PodShape(0, 1, 1000), 1.0)]) == (0.0, 0.0)
    assert delay_percentiles([0, 10, 20, 30, 40]) == {"p50": 20.0, "p90": 36.0, "p99": pytest.approx(39.6)}
    assert delay_percentiles([]) == {"p50": None, "p90": None, "p99": None}
