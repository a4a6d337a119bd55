"""Filter plugins: TaintToleration (reasons, PreferNoSchedule scores), NodeAffinity operators and
nodeSelector, NodeName, NodeUnschedulable, GpuFit (and which GPUs Reserve picks), GpuBinPacking."""

import pytest

from gpufleet.cluster import (ClusterState, Node, NodeSelectorRequirement as Req, NodeSelectorTerm as Term, Pod,
                              Taint, Toleration)
from gpufleet.scheduler import CycleState, Scheduler, builtin_profile
from gpufleet.scheduler.plugins.affinity import NodeAffinity
from gpufleet.scheduler.plugins.gpu_fit import GpuFit
from gpufleet.scheduler.plugins.node_basics import NodeName, NodeUnschedulable
from gpufleet.scheduler.plugins.taints import TaintToleration

from .helpers import filter_result, plugin_scores


# ---------------------------------------------------------------------------- TaintToleration
def taint_cluster():
    return ClusterState([
        Node("clean", 4000, 4000),
        Node("gpu", 4000, 4000, taints=[Taint("dedicated", "gpu", "NoSchedule")]),
        # Listed b before a: kube names the first untolerated taint of the node's own list.
        Node("two", 4000, 4000, taints=[Taint("b", "1", "NoSchedule"), Taint("a", "2", "NoExecute")]),
        Node("soft", 4000, 4000, taints=[Taint("spot", "", "PreferNoSchedule")]),
    ])


def test_taint_filter_reasons_name_the_first_untolerated_taint():
    c = taint_cluster()
    mask, reasons = filter_result(TaintToleration(), c, Pod("p"))
    assert mask == [True, False, False, True]  # PreferNoSchedule never filters
    assert reasons == {"node(s) had untolerated taint {dedicated: gpu}": [1],
                       "node(s) had untolerated taint {b: 1}": [2]}
    tolerant = Pod("q", tolerations=(Toleration("dedicated", "Equal", "gpu", "NoSchedule"),
                                     Toleration("b", "Exists")))
    mask, reasons = filter_result(TaintToleration(), c, tolerant)
    assert mask == [True, True, False, True]
    assert reasons == {"node(s) had untolerated taint {a: 2}": [2]}
    mask, _ = filter_result(TaintToleration(), c, Pod("all", tolerations=(Toleration("", "Exists"),)))
    assert mask == [True] * 4


def test_prefer_no_schedule_taints_are_scored_reversed():
    c = ClusterState([
        Node("none", 1, 1),
        Node("one", 1, 1, taints=[Taint("spot", "", "PreferNoSchedule")]),
        Node("three", 1, 1, taints=[Taint("spot", "", "PreferNoSchedule"), Taint("old", "", "PreferNoSchedule"),
                                    Taint("slow", "", "PreferNoSchedule"), Taint("x", "", "NoSchedule")]),
    ])
    # untolerated PreferNoSchedule counts [0, 1, 3], max 3: 100 - 100*c/3 -> [100, 100-33, 100-100]
    assert plugin_scores(TaintToleration(), c, Pod("p")) == [100, 67, 0]
    # tolerating "spot" (effect empty also matches PreferNoSchedule): counts [0, 0, 2] -> [100, 100, 0]
    assert plugin_scores(TaintToleration(), c, Pod("q", tolerations=(Toleration("spot", "Exists"),))) == [100, 100, 0]
    # a NoSchedule-only toleration does not count for scoring: counts stay [0, 1, 3]
    tol = (Toleration("spot", "Exists", effect="NoSchedule"),)
    assert plugin_scores(TaintToleration(), c, Pod("r", tolerations=tol)) == [100, 67, 0]
    # no node with such taints: all 100
    assert plugin_scores(TaintToleration(), ClusterState([Node("a", 1, 1), Node("b", 1, 1)]), Pod("s")) == [100, 100]


# ---------------------------------------------------------------------------- NodeAffinity
def affinity_cluster():
    return ClusterState([
        Node("n0", 1, 1, labels={"gpus": "2", "zone": "a", "ssd": "true"}),
        Node("n1", 1, 1, labels={"gpus": "8", "zone": "b"}),
        Node("n2", 1, 1, labels={"gpus": "x", "zone": "c"}),
        Node("n3", 1, 1, labels={}),
    ])


AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"


@pytest.mark.parametrize("req, passing", [
    (Req("zone", "In", ("a", "b")), [0, 1]),
    (Req("zone", "NotIn", ("a", "b")), [2, 3]),  # NotIn matches nodes without the label
    (Req("ssd", "Exists"), [0]),
    (Req("ssd", "DoesNotExist"), [1, 2, 3]),
    (Req("gpus", "Gt", ("4",)), [1]),  # "x" is not an integer and n3 has no label: both fail
    (Req("gpus", "Lt", ("4",)), [0]),
    (Req("gpus", "Gt", ("8",)), []),
    (Req("zone", "In", ("z",)), []),
])
def test_node_affinity_operators(req, passing):
    c = affinity_cluster()
    mask, reasons = filter_result(NodeAffinity(), c, Pod("p", required_node_affinity=(Term((req,)),)))
    assert [i for i, ok in enumerate(mask) if ok] == passing
    failing = [i for i in range(4) if i not in passing]
    assert reasons == ({AFFINITY_REASON: failing} if failing else {})


def test_node_affinity_terms_are_ored_and_expressions_anded_and_selector_applies_too():
    c = affinity_cluster()
    terms = (Term((Req("zone", "In", ("a", "b")), Req("gpus", "Gt", ("4",)))),  # n1
             Term((Req("zone", "In", ("c",)),)))  # n2
    mask, _ = filter_result(NodeAffinity(), c, Pod("p", required_node_affinity=terms))
    assert mask == [False, True, True, False]
    mask, _ = filter_result(NodeAffinity(), c, Pod("q", required_node_affinity=terms, node_selector={"zone": "c"}))
    assert mask == [False, False, True, False]
    mask, _ = filter_result(NodeAffinity(), c, Pod("r", node_selector={"zone": "a", "ssd": "true"}))
    assert mask == [True, False, False, False]
    mask, _ = filter_result(NodeAffinity(), c, Pod("s", node_selector={"zone": "nowhere"}))
    assert mask == [False] * 4
    mask, _ = filter_result(NodeAffinity(), c, Pod("t", required_node_affinity=(Term(()),)))
    assert mask == [False] * 4  # an empty term matches no node


# ---------------------------------------------------------------------------- NodeName, NodeUnschedulable
def test_node_name_and_unschedulable():
    c = ClusterState([Node("n0", 1, 1), Node("n1", 1, 1, unschedulable=True), Node("n2", 1, 1)])
    mask, reasons = filter_result(NodeName(), c, Pod("p", node_name="n2"))
    assert mask == [False, False, True]
    assert reasons == {"node(s) didn't match the requested node name": [0, 1]}
    assert filter_result(NodeName(), c, Pod("q", node_name="ghost"))[0] == [False] * 3
    mask, reasons = filter_result(NodeUnschedulable(), c, Pod("p"))
    assert mask == [True, False, True] and reasons == {"node(s) were unschedulable": [1]}
    tol = (Toleration("node.kubernetes.io/unschedulable", "Exists", effect="NoSchedule"),)
    assert filter_result(NodeUnschedulable(), c, Pod("q", tolerations=tol))[0] == [True] * 3


# ---------------------------------------------------------------------------- GpuFit
def gpu_cluster():
    c = ClusterState([
        Node.with_gpus("a100", 64000, 64000, 2, "A100"),
        Node.with_gpus("v100", 64000, 64000, 4, "V100"),
        Node("cpu", 64000, 64000),
    ])
    c.assign(Pod("half", num_gpu=1, gpu_milli=500), 0, (0,))  # a100 GPUs free: [500, 1000]
    c.assign(Pod("most", num_gpu=1, gpu_milli=800), 1, (2,))  # v100 GPUs free: [1000, 1000, 200, 1000]
    return c


@pytest.mark.parametrize("pod, mask, reasons", [
    (Pod("w1", num_gpu=1), [True, True, False], {"Insufficient nvidia.com/gpu": [2]}),
    (Pod("w2", num_gpu=2), [False, True, False], {"Insufficient nvidia.com/gpu": [0, 2]}),
    (Pod("w4", num_gpu=4), [False, False, False], {"Insufficient nvidia.com/gpu": [0, 1, 2]}),
    (Pod("s", num_gpu=1, gpu_milli=500), [True, True, False], {"Insufficient nvidia.com/gpu": [2]}),
    (Pod("s2", num_gpu=2, gpu_milli=500), [True, True, False], {"Insufficient nvidia.com/gpu": [2]}),
    (Pod("m", num_gpu=1, gpu_models=("V100",)), [False, True, False],
     {"node(s) didn't have an allowed GPU model": [0, 2], "Insufficient nvidia.com/gpu": [2]}),
    (Pod("cpu-only", cpu_milli=1), [True, True, True], {}),
])
def test_gpu_fit_filter(pod, mask, reasons):
    assert filter_result(GpuFit(), gpu_cluster(), pod) == (mask, reasons)


@pytest.mark.parametrize("pod, node, gpus", [
    (Pod("w1", num_gpu=1), 0, (1,)),  # the only whole free GPU
    (Pod("s", num_gpu=1, gpu_milli=200), 1, (2,)),  # best fit: GPU 2 has exactly 200 left
    (Pod("s", num_gpu=1, gpu_milli=300), 1, (0,)),  # 200 is too little: lowest whole GPU
    (Pod("s", num_gpu=1, gpu_milli=500), 0, (0,)),  # the half-used GPU before the whole one
    (Pod("w2", num_gpu=2), 1, (0, 1)),
])
def test_gpu_fit_reserve_picks_the_gpus(pod, node, gpus):
    state = CycleState()
    assert GpuFit().reserve(state, pod, gpu_cluster(), node) is None
    assert state["gpu_indices"] == gpus


def test_gpu_fit_reserve_prefers_a_choice_left_by_a_scorer():
    state = CycleState()
    state["gpu_choice"] = {1: (3,)}
    GpuFit().reserve(state, Pod("s", num_gpu=1, gpu_milli=200), gpu_cluster(), 1)
    assert state["gpu_indices"] == (3,)


# ---------------------------------------------------------------------------- GpuBinPacking (seed 002)
def seed_002(policy: str):
    """Two nodes with 2 GPUs each; two 1-GPU pods, then one 2-GPU pod."""
    cluster = ClusterState([Node.with_gpus(f"node-{i}", 32000, 128000, 2, "V100") for i in range(2)])
    sched = Scheduler(cluster, [builtin_profile(policy)], seed=7, clock=lambda: 0.0)
    pods = [Pod("one-a", cpu_milli=1000, memory_mib=1000, num_gpu=1),
            Pod("one-b", cpu_milli=1000, memory_mib=1000, num_gpu=1),
            Pod("two", cpu_milli=1000, memory_mib=1000, num_gpu=2)]
    outcomes = []
    for pod in pods:  # one at a time, in this order
        sched.add(pod)
        outcomes.append(sched.schedule_one())
    return cluster, outcomes


def test_binpack_fills_one_node_so_a_two_gpu_pod_still_fits():
    cluster, (a, b, two) = seed_002("binpack")
    # second pod: GpuBinPacking gives the half-full node (1000+1000)*100/2000 = 100 against 50
    assert a.node_name == b.node_name
    assert sorted(a.gpu_indices + b.gpu_indices) == [0, 1]
    assert two.status == "scheduled" and two.node_name != a.node_name and two.gpu_indices == (0, 1)
    cluster.check_invariants()


def test_spread_leaves_a_free_gpu_on_each_node_and_the_two_gpu_pod_fails():
    cluster, (a, b, two) = seed_002("spread")
    # second pod: LeastAllocated over cpu, memory, GPUs prefers the empty node
    assert a.node_name != b.node_name
    assert two.status == "unschedulable"
    assert two.message == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."


def test_binpack_sends_cpu_only_pods_where_gpus_are_used_up():
    """A CPU-only pod should not take the CPU that a node's free GPUs need."""
    from gpufleet.scheduler.plugins.packing import GpuBinPacking
    cluster = ClusterState([Node.with_gpus("busy", 32000, 128000, 2, "V100"),
                            Node.with_gpus("idle", 32000, 128000, 2, "V100"),
                            Node.with_gpus("cpu-only", 32000, 128000)])
    cluster.assign(Pod("trainer", cpu_milli=1000, num_gpu=2), 0)
    # busy: 2000*100//2000 = 100; idle: 0*100//2000 = 0; a node without GPUs: 100
    assert plugin_scores(GpuBinPacking(), cluster, Pod("etl", cpu_milli=8000)) == [100, 0, 100]
    # a GPU pod still packs: busy cannot fit it (filtered elsewhere), idle (1000*100//2000) = 50, none: 0
    assert plugin_scores(GpuBinPacking(), cluster, Pod("g", num_gpu=1))[1:] == [50, 0]
