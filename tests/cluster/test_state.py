"""ClusterState: assign and release keep the invariants, errors change nothing, nodes come and go."""

import numpy as np
import pytest

from gpufleet.cluster import AssignError, ClusterState, Node, Pod
from gpufleet.cluster.model import LEGACY_ZONE_LABEL, ZONE_LABEL
from gpufleet.cluster.state import zone_key


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def small_cluster() -> ClusterState:
    return ClusterState([
        Node.with_gpus("gpu-a", 8000, 32000, 4, "A100", extended={"example.com/fpga": 2}, max_pods=3),
        Node.with_gpus("gpu-b", 4000, 16000, 2, "V100"),
        Node("cpu-c", 16000, 64000),
    ])


def test_assign_takes_exactly_the_request_and_release_restores_every_array():
    c = small_cluster()
    before = c.snapshot()
    pod = Pod("train", cpu_milli=3000, memory_mib=10000, num_gpu=2, extended={"example.com/fpga": 1})
    placement = c.assign(pod, 0)
    assert placement.gpu_indices == (0, 1)
    assert c.cpu_free_milli[0] == 5000 and c.memory_free_mib[0] == 22000
    assert list(c.gpu_free_milli[0]) == [0, 0, 1000, 1000]
    assert c.scalar_free[0, c.scalar_column("example.com/fpga")] == 1
    assert c.pods_count[0] == 1
    c.check_invariants()
    c.release(pod.uid)
    assert same(c.snapshot(), before)
    c.check_invariants()


def test_pods_without_requests_count_kube_default_requests_for_scoring_only():
    c = small_cluster()
    pod = Pod("besteffort")
    c.assign(pod, 2)
    assert c.cpu_free_milli[2] == 16000  # nothing taken for real
    # kube's DefaultMilliCPURequest = 100 and DefaultMemoryRequest = 200 MiB (pkg/scheduler/util)
    assert c.nonzero_cpu_requested[2] == 100 and c.nonzero_memory_requested[2] == 200


@pytest.mark.parametrize("pod, node, gpus, reason", [
    (Pod("big", cpu_milli=9000), 0, None, "Insufficient cpu"),
    (Pod("mem", memory_mib=40000), 0, None, "Insufficient memory"),
    (Pod("gpus", num_gpu=3), 1, None, "Insufficient nvidia.com/gpu"),
    (Pod("idx", num_gpu=1), 1, (5,), "has no GPU 5"),
    (Pod("dup", num_gpu=2), 0, (1, 1), "Insufficient nvidia.com/gpu"),
    (Pod("few", num_gpu=2), 0, (1,), "Insufficient nvidia.com/gpu"),
    (Pod("nogpu"), 0, (0,), "asks for no GPU"),
    (Pod("fpga", extended={"example.com/fpga": 3}), 0, None, "Insufficient example.com/fpga"),
    (Pod("fpga-b", extended={"example.com/fpga": 1}), 1, None, "Insufficient example.com/fpga"),
    (Pod("far"), 7, None, "out of range"),
])
def test_a_failed_assign_raises_and_changes_nothing(pod, node, gpus, reason):
    c = small_cluster()
    c.assign(Pod("half", num_gpu=1, gpu_milli=500), 0)
    before, generation = c.snapshot(), c.generation
    with pytest.raises(AssignError, match=reason):
        c.assign(pod, node, gpus)
    assert same(c.snapshot(), before) and c.generation == generation
    assert pod.uid not in c.placements
    c.check_invariants()


def test_pod_slots_and_double_placement_and_unknown_release_are_errors():
    c = small_cluster()
    pods = [Pod(f"p{i}") for i in range(3)]
    for p in pods:
        c.assign(p, 0)
    before = c.snapshot()
    with pytest.raises(AssignError, match="Too many pods"):
        c.assign(Pod("fourth"), 0)
    with pytest.raises(AssignError, match="already placed"):
        c.assign(pods[0], 1)
    with pytest.raises(AssignError, match="not placed"):
        c.release("no-such-uid")
    assert same(c.snapshot(), before)


def test_a_gpu_is_never_above_1000_milli():
    c = ClusterState([Node.with_gpus("n", 1000, 1000, 1, "T4")])
    c.assign(Pod("a", num_gpu=1, gpu_milli=600), 0)
    with pytest.raises(AssignError, match="Insufficient nvidia.com/gpu"):
        c.assign(Pod("b", num_gpu=1, gpu_milli=401), 0)
    c.assign(Pod("c", num_gpu=1, gpu_milli=400), 0)
    assert c.gpu_free_milli[0, 0] == 0
    c.check_invariants()


def test_default_gpu_choice_is_best_fit_for_shares_and_lowest_index_for_whole_gpus():
    c = ClusterState([Node.with_gpus("n", 64000, 64000, 4, "A100")])
    c.assign(Pod("x", num_gpu=1, gpu_milli=700), 0, (1,))  # GPU 1: 300 free
    c.assign(Pod("y", num_gpu=1, gpu_milli=400), 0, (2,))  # GPU 2: 600 free
    # free milli per GPU: [1000, 300, 600, 1000]
    assert c.default_gpu_choice(Pod("s250", num_gpu=1, gpu_milli=250), 0) == (1,)  # fullest that fits
    assert c.default_gpu_choice(Pod("s500", num_gpu=1, gpu_milli=500), 0) == (2,)
    assert c.default_gpu_choice(Pod("s700", num_gpu=1, gpu_milli=700), 0) == (0,)  # tie 0/3: lower index
    assert c.default_gpu_choice(Pod("w1", num_gpu=1), 0) == (0,)
    assert c.default_gpu_choice(Pod("w2", num_gpu=2), 0) == (0, 3)
    assert c.default_gpu_choice(Pod("w3", num_gpu=3), 0) == ()  # only two whole GPUs free
    assert c.default_gpu_choice(Pod("2x500", num_gpu=2, gpu_milli=500), 0) == (0, 2)  # 600 then 1000
    assert c.default_gpu_choice(Pod("cpu"), 0) == ()


def test_add_node_keeps_placements_and_a_duplicate_name_changes_nothing():
    c = small_cluster()
    pod = Pod("p", cpu_milli=1000, num_gpu=1, gpu_milli=300)
    c.assign(pod, 1)
    c.add_node(Node.with_gpus("gpu-d", 4000, 16000, 8, "H100"))
    assert c.num_nodes == 4 and c.max_gpus == 8
    assert c.placements[pod.uid].node_name == "gpu-b"
    assert c.gpu_free_milli[1, 0] == 700 and c.cpu_free_milli[1] == 3000
    assert not c.gpu_exists[1, 2:].any() and c.gpu_free_milli[1, 2:].sum() == 0
    c.check_invariants()
    before, nodes = c.snapshot(), [n.name for n in c.nodes]
    with pytest.raises(AssignError, match="duplicate node name 'gpu-a'"):
        c.add_node(Node("gpu-a", 1, 1))
    assert same(c.snapshot(), before) and [n.name for n in c.nodes] == nodes
    assert pod.uid in c.placements
    c.check_invariants()


def test_remove_node_returns_its_pods_and_keeps_the_others():
    c = small_cluster()
    gone, kept = Pod("gone", cpu_milli=500, labels={"app": "x"}), Pod("kept", cpu_milli=700, labels={"app": "x"})
    c.assign(gone, 0)
    c.assign(kept, 2)
    evicted = c.remove_node("gpu-a")
    assert evicted == [gone]
    assert [n.name for n in c.nodes] == ["gpu-b", "cpu-c"]
    assert gone.uid not in c.placements and c.placements[kept.uid].node_name == "cpu-c"
    assert c.cpu_free_milli[c.node_index["cpu-c"]] == 15300
    assert list(c.matching_pod_counts("default", {"app": "x"})) == [0, 1]
    c.check_invariants()
    with pytest.raises(AssignError, match="no node named"):
        c.remove_node("gpu-a")


def test_update_node_keeps_placements_and_refuses_a_spec_they_no_longer_fit():
    c = small_cluster()
    pod = Pod("p", cpu_milli=2000, num_gpu=1)
    c.assign(pod, 0, (3,))
    c.update_node(Node.with_gpus("gpu-a", 8000, 32000, 4, "A100", labels={"tier": "gold"},
                                 extended={"example.com/fpga": 2}, max_pods=3))
    codes, vocab = c.label_codes("tier")
    assert codes[0] == vocab["gold"]
    assert c.gpu_free_milli[0, 3] == 0 and c.cpu_free_milli[0] == 6000
    c.check_invariants()
    before = c.snapshot()
    with pytest.raises(AssignError, match="no longer fit.*no GPU 3"):
        c.update_node(Node.with_gpus("gpu-a", 8000, 32000, 2, "A100"))
    with pytest.raises(AssignError, match="no longer fit.*Insufficient cpu"):
        c.update_node(Node.with_gpus("gpu-a", 1000, 32000, 4, "A100"))
    assert same(c.snapshot(), before) and c.gpu_count[0] == 4
    c.release(pod.uid)
    c.update_node(Node.with_gpus("gpu-a", 1000, 32000, 2, "A100"))
    assert c.gpu_count[0] == 2
    c.check_invariants()


def test_matching_pod_counts_by_namespace_and_selector():
    c = small_cluster()
    c.assign(Pod("w1", labels={"app": "web", "tier": "fe"}), 0)
    c.assign(Pod("w2", labels={"app": "web"}), 0)
    c.assign(Pod("w3", labels={"app": "web", "tier": "fe"}), 2)
    c.assign(Pod("w4", labels={"app": "web", "tier": "fe"}, namespace="other"), 1)
    c.assign(Pod("db", labels={"app": "db"}), 1)
    assert list(c.matching_pod_counts("default", {"app": "web"})) == [2, 0, 1]
    assert list(c.matching_pod_counts("default", {"app": "web", "tier": "fe"})) == [1, 0, 1]
    assert list(c.matching_pod_counts("other", {"app": "web"})) == [0, 1, 0]
    assert list(c.matching_pod_counts("default", {})) == [0, 0, 0]


def test_zone_key_prefers_the_legacy_label_like_kube():
    # k8s.io/component-helpers/node/topology GetZoneKey: failure-domain.beta... first, then topology...
    assert zone_key({ZONE_LABEL: "b", LEGACY_ZONE_LABEL: "a"}) == ":\x00:a"
    assert zone_key({ZONE_LABEL: "b"}) == ":\x00:b"
    assert zone_key({"topology.kubernetes.io/region": "r1"}) == "r1:\x00:"
    assert zone_key({}) == ""
