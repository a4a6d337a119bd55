"""NodeResourcesFit (LeastAllocated, MostAllocated, RequestedToCapacityRatio) and
NodeResourcesBalancedAllocation scores against hand-computed kube-scheduler values.

Cases follow kubernetes/kubernetes pkg/scheduler/framework/plugins/noderesources/*_test.go. Our memory
unit is MiB where kube's tests use bytes; the numbers are kept and read as MiB, which leaves every ratio
unchanged. Arithmetic is Go's: integer division truncates.
"""

import numpy as np
import pytest

from gpufleet.cluster import ClusterState, Node, Pod
from gpufleet.scheduler.plugins.balanced import NodeResourcesBalancedAllocation
from gpufleet.scheduler.plugins.fit import NodeResourcesFit, broken_linear

from .helpers import plugin_scores


def fit(strategy="LeastAllocated", resources=None, shape=None):
    args = {"scoringStrategy": {"type": strategy}}
    if resources:
        args["scoringStrategy"]["resources"] = [{"name": n, "weight": w} for n, w in resources]
    if shape:
        args["scoringStrategy"]["requestedToCapacityRatio"] = {
            "shape": [{"utilization": u, "score": s} for u, s in shape]}
    return NodeResourcesFit(args)


def cluster(*nodes, placed=()):
    c = ClusterState([Node(name, cpu, mem, extended=dict(ext)) for name, cpu, mem, *ext in nodes])
    for node, pod in placed:
        c.assign(pod, c.node_index[node])
    return c


POD_3000_5000 = dict(cpu_milli=3000, memory_mib=5000)


# ---------------------------------------------------------------------------- LeastAllocated
def test_least_allocated_differently_sized_nodes():
    # node1 4000m/10000Mi: cpu (4000-3000)*100/4000 = 25, mem (10000-5000)*100/10000 = 50 -> (25+50)/2 = 37
    # node2 6000m/10000Mi: cpu (6000-3000)*100/6000 = 50, mem 50 -> 50
    c = cluster(("node1", 4000, 10000), ("node2", 6000, 10000))
    assert plugin_scores(fit(), c, Pod("p", **POD_3000_5000)) == [37, 50]


def test_least_allocated_with_pods_already_on_the_nodes():
    # Both nodes 10000m/20000Mi. node1 holds a pod of 3000m and no memory request (counted as kube's
    # default 200Mi for scoring); node2 a pod of 3000m/5000Mi. Incoming pod 3000m/5000Mi.
    # node1: cpu (10000-6000)*100/10000 = 40; mem (20000-(200+5000))*100/20000 = 1480000/20000 = 74
    #        -> (40+74)/2 = 57
    # node2: cpu 40; mem (20000-10000)*100/20000 = 50 -> (40+50)/2 = 45
    c = cluster(("node1", 10000, 20000), ("node2", 10000, 20000),
                placed=[("node1", Pod("a", cpu_milli=3000)), ("node2", Pod("b", **POD_3000_5000))])
    assert plugin_scores(fit(), c, Pod("p", **POD_3000_5000)) == [57, 45]


def test_least_allocated_request_above_capacity_scores_zero_for_that_resource():
    # node 4000m/10000Mi holding 3000m/5000Mi; pod 3000m and no memory (200Mi by default):
    # cpu 6000 > 4000 -> 0; mem (10000-5200)*100/10000 = 48 -> (0+48)/2 = 24
    c = cluster(("node1", 4000, 10000), placed=[("node1", Pod("a", **POD_3000_5000))])
    assert plugin_scores(fit(), c, Pod("p", cpu_milli=3000)) == [24]


def test_least_allocated_weights():
    # memory weight 2, cpu weight 1: node1 (25*1 + 50*2)/3 = 125/3 = 41; node2 (50*1 + 50*2)/3 = 50
    c = cluster(("node1", 4000, 10000), ("node2", 6000, 10000))
    assert plugin_scores(fit(resources=[("memory", 2), ("cpu", 1)]), c, Pod("p", **POD_3000_5000)) == [41, 50]


def test_least_allocated_extended_resources_only_count_when_the_pod_asks_for_them():
    # resources cpu, memory, example.com/foo (weight 1 each); node1 foo=4, node2 foo=10; 6000m/10000Mi each.
    # pod without foo: foo skipped -> cpu 50, mem 50 -> 50 on both.
    # pod with foo 2: node1 foo (4-2)*100/4 = 50 -> (50+50+50)/3 = 50; node2 (10-2)*100/10 = 80 -> 180/3 = 60
    c = cluster(("node1", 6000, 10000, ("example.com/foo", 4)), ("node2", 6000, 10000, ("example.com/foo", 10)))
    plugin = fit(resources=[("cpu", 1), ("memory", 1), ("example.com/foo", 1)])
    assert plugin_scores(plugin, c, Pod("p", **POD_3000_5000)) == [50, 50]
    assert plugin_scores(plugin, c, Pod("q", **POD_3000_5000, extended={"example.com/foo": 2})) == [50, 60]


def test_fit_scoring_counts_default_requests_for_pods_that_ask_nothing():
    # kube GetNonzeroRequests: 100m CPU and 200 MiB for a pod without requests, in scoring only.
    # node1 4000m/10000Mi empty: cpu (4000-100)*100/4000 = 97, mem (10000-200)*100/10000 = 98 -> 97
    # node2 4000m/10000Mi with one best-effort pod: cpu (4000-200)*100/4000 = 95, mem (10000-400)*100/10000 = 96
    #   -> (95+96)/2 = 95
    c = cluster(("node1", 4000, 10000), ("node2", 4000, 10000), placed=[("node2", Pod("be"))])
    assert plugin_scores(fit(), c, Pod("p")) == [97, 95]
    # MostAllocated on the same: node1 cpu 100*100/4000 = 2, mem 200*100/10000 = 2 -> 2;
    # node2 cpu 200*100/4000 = 5, mem 400*100/10000 = 4 -> 4
    assert plugin_scores(fit("MostAllocated"), c, Pod("p")) == [2, 4]


# ---------------------------------------------------------------------------- MostAllocated
def test_most_allocated():
    # node1 4000m/10000Mi: cpu 3000*100/4000 = 75, mem 5000*100/10000 = 50 -> 62
    # node2 6000m/10000Mi: cpu 50, mem 50 -> 50
    c = cluster(("node1", 4000, 10000), ("node2", 6000, 10000))
    assert plugin_scores(fit("MostAllocated"), c, Pod("p", **POD_3000_5000)) == [62, 50]


def test_most_allocated_caps_requested_at_capacity_and_weights():
    # node 4000m/10000Mi holding 3000m/2000Mi; pod 3000m/5000Mi:
    # cpu min(6000, 4000)*100/4000 = 100; mem 7000*100/10000 = 70 -> (100+70)/2 = 85
    # with cpu weight 3, memory 1: (300+70)/4 = 92
    c = cluster(("node1", 4000, 10000), placed=[("node1", Pod("a", cpu_milli=3000, memory_mib=2000))])
    assert plugin_scores(fit("MostAllocated"), c, Pod("p", **POD_3000_5000)) == [85]
    assert plugin_scores(fit("MostAllocated", [("cpu", 3), ("memory", 1)]), c, Pod("p", **POD_3000_5000)) == [92]


# ---------------------------------------------------------------------------- RequestedToCapacityRatio
def test_broken_linear_function_matches_kube_test_points():
    # helper.BuildBrokenLinearFunction cases from requested_to_capacity_ratio_test.go
    p = np.array([-10, 0, 9, 10, 15, 19, 20, 89, 90, 99, 100, 110])
    assert list(broken_linear([(10, 1), (90, 9)], p)) == [1, 1, 1, 1, 1, 1, 2, 8, 9, 9, 9, 9]
    p = np.array([-10, 0, 20, 30, 40, 70, 100, 110])
    assert list(broken_linear([(0, 2), (40, 10), (100, 0)], p)) == [2, 2, 6, 8, 10, 5, 0, 0]


def test_requested_to_capacity_ratio_least_requested_shape():
    # shape (0 -> 10), (100 -> 0), scores scaled x10: f(u) = 100 - u
    # node1 4000m/10000Mi: cpu u = 3000*100/4000 = 75 -> 25; mem u = 50 -> 50; round((25+50)/2) = round(37.5) = 38
    # node2 6000m/10000Mi: 50, 50 -> 50
    c = cluster(("node1", 4000, 10000), ("node2", 6000, 10000))
    plugin = fit("RequestedToCapacityRatio", shape=[(0, 10), (100, 0)])
    assert plugin_scores(plugin, c, Pod("p", **POD_3000_5000)) == [38, 50]


def test_requested_to_capacity_ratio_leaves_zero_scores_out_of_the_weight_sum():
    # shape (0 -> 0), (100 -> 10): f(u) = u
    # node1 4000m/10000Mi: cpu 75, mem 50 -> round(62.5) = 63 (math.Round rounds half away from zero)
    # node2 4000m/1000000Mi: cpu 75, mem u = 5000*100/1000000 = 0 -> score 0, left out -> 75/1 = 75
    c = cluster(("node1", 4000, 10000), ("node2", 4000, 1000000))
    plugin = fit("RequestedToCapacityRatio", shape=[(0, 0), (100, 10)])
    assert plugin_scores(plugin, c, Pod("p", **POD_3000_5000)) == [63, 75]


def test_requested_to_capacity_ratio_single_extended_resource():
    # kube TestResourceBinPackingSingleExtended: resource intel.com/foo only, shape (0->0), (100->1) scaled x10.
    # node1 foo=8, node2 foo=4 (node2 holds a pod with foo 2); pod asks foo 2:
    # node1 u = 2*100/8 = 25 -> 0 + (10-0)*(25-0)/100 = 2; node2 u = (2+2)*100/4 = 100 -> 10
    c = cluster(("node1", 4000, 10000, ("intel.com/foo", 8)), ("node2", 4000, 10000, ("intel.com/foo", 4)),
                placed=[("node2", Pod("a", extended={"intel.com/foo": 2}))])
    plugin = fit("RequestedToCapacityRatio", resources=[("intel.com/foo", 1)], shape=[(0, 0), (100, 1)])
    assert plugin_scores(plugin, c, Pod("p", extended={"intel.com/foo": 2})) == [2, 10]
    assert plugin_scores(plugin, c, Pod("q")) == [0, 0]  # does not ask for foo: nothing to score


# ---------------------------------------------------------------------------- BalancedAllocation
def balanced(resources=None):
    return NodeResourcesBalancedAllocation(
        {"resources": [{"name": n, "weight": 1} for n in resources]} if resources else None)


def test_balanced_allocation_two_resources():
    # node1 4000m/10000Mi: fractions cpu 3000/4000 = 0.75, mem 0.5; std = |0.75-0.5|/2 = 0.125
    #   -> int((1-0.125)*100) = 87
    # node2 6000m/10000Mi: 0.5, 0.5 -> std 0 -> 100
    c = cluster(("node1", 4000, 10000), ("node2", 6000, 10000))
    assert plugin_scores(balanced(), c, Pod("p", **POD_3000_5000)) == [87, 100]


def test_balanced_allocation_counts_real_requests_of_placed_pods():
    # node 10000m/20000Mi holding 3000m and no memory (real requests: no 200Mi default here);
    # pod 3000m/5000Mi: cpu 6000/10000 = 0.6, mem 5000/20000 = 0.25, std = 0.175 -> int(82.5) = 82
    c = cluster(("node1", 10000, 20000), placed=[("node1", Pod("a", cpu_milli=3000))])
    assert plugin_scores(balanced(), c, Pod("p", **POD_3000_5000)) == [82]


def test_balanced_allocation_three_resources_uses_the_population_std():
    # node 4000m/10000Mi, foo 4; pod 3000m/5000Mi foo 2: fractions 0.75, 0.5, 0.5; mean 0.58333
    # var = (0.16667^2 + 2 * 0.08333^2)/3 = 0.013889; std = 0.11785 -> int(88.21) = 88
    c = cluster(("node1", 4000, 10000, ("example.com/foo", 4)))
    plugin = balanced(["cpu", "memory", "example.com/foo"])
    assert plugin_scores(plugin, c, Pod("p", **POD_3000_5000, extended={"example.com/foo": 2})) == [88]
    # the pod does not ask for foo: foo is skipped and the two-resource rule applies -> 87
    assert plugin_scores(plugin, c, Pod("q", **POD_3000_5000)) == [87]


def test_balanced_allocation_skips_best_effort_pods():
    # kubernetes#129138: a pod without cpu or memory requests is not scored by BalancedAllocation
    c = cluster(("node1", 4000, 10000))
    assert plugin_scores(balanced(), c, Pod("be")) is None


@pytest.mark.parametrize("args, message", [
    ({"scoringStrategy": {"type": "Foo"}}, "scoringStrategy.type: expected one of LeastAllocated, "
                                           "MostAllocated, RequestedToCapacityRatio, got 'Foo'"),
    ({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 0}]}},
     r"scoringStrategy.resources\[0\].weight: expected an integer in 1..100, got 0"),
    ({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 101}]}},
     r"scoringStrategy.resources\[0\].weight: expected an integer in 1..100, got 101"),
    ({"scoringStrategy": {"type": "RequestedToCapacityRatio"}},
     "requestedToCapacityRatio.shape: expected at least one point"),
    ({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {
        "shape": [{"utilization": 50, "score": 1}, {"utilization": 40, "score": 2}]}}},
     "expected increasing values"),
])
def test_bad_fit_args_name_the_field(args, message):
    with pytest.raises(ValueError, match=message):
        NodeResourcesFit(args)
