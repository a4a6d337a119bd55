"""The scheduling cycle: kube's unschedulable message, percentageOfNodesToScore, weighted scores,
Permit (wait / allow / reject / timeout), Reserve failure and bind failure."""

import numpy as np
import pytest

from gpufleet.cluster import ClusterState, Node, Pod, Taint
from gpufleet.scheduler import REGISTRY, Plugin, ProfileConfig, Scheduler, Status, builtin_profile
from gpufleet.scheduler.framework import num_feasible_nodes_to_find
from .helpers import Clock


@pytest.fixture
def test_plugins():
    """Register plugin classes for one test and remove them afterwards."""
    added = []

    def add(cls):
        REGISTRY[cls.name] = cls
        added.append(cls.name)
        return cls
    yield add
    for name in added:
        REGISTRY.pop(name, None)


# ---------------------------------------------------------------------------- diagnostics
def test_unschedulable_message_in_kube_form():
    cluster = ClusterState([Node("n1", 4000, 8000, labels={"disk": "ssd"}), Node("n2", 8000, 8000),
                            Node("n3", 8000, 8000)])
    sched = Scheduler(cluster, [builtin_profile("default")], clock=lambda: 0.0)
    sched.add(Pod("p", cpu_milli=5000, node_selector={"disk": "ssd"}))
    outcome = sched.schedule_one()
    assert outcome.status == "unschedulable"
    assert outcome.message == \
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."


def test_unschedulable_reasons_are_sorted_as_strings_and_a_node_may_count_twice():
    # kube FitError.Error: "COUNT REASON" strings sorted with sort.Strings, so "10 ..." sorts before "2 ...";
    # NodeResourcesFit reports every insufficient resource of a node.
    nodes = [Node(f"small-{i}", 8000, 1000) for i in range(10)] + [Node(f"tiny-{i}", 1000, 1000) for i in range(2)]
    nodes.append(Node("tainted", 64000, 64000, taints=[Taint("dedicated", "db", "NoSchedule")]))
    sched = Scheduler(ClusterState(nodes), [builtin_profile("default")], clock=lambda: 0.0)
    sched.add(Pod("p", cpu_milli=4000, memory_mib=4000))
    assert sched.schedule_one().message == (
        "0/13 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 12 Insufficient memory, "
        "2 Insufficient cpu.")


# ---------------------------------------------------------------------------- percentageOfNodesToScore
@pytest.mark.parametrize("percentage, nodes, expected", [
    (None, 10, 10), (None, 99, 99),  # fewer than 100 nodes: all
    (None, 1000, 420),  # adaptive: 50 - 1000/125 = 42 %
    (0, 1000, 420),
    (40, 1000, 400),
    (None, 6000, 300),  # 50 - 6000/125 = 2 % -> at least 5 % = 300
    (20, 6000, 1200),
    (10, 500, 100),  # 50 nodes -> at least 100
    (None, 100, 100),  # 49 % of 100 = 49 -> at least 100
    (100, 5000, 5000),
])
def test_num_feasible_nodes_to_find(percentage, nodes, expected):
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_only_num_feasible_nodes_are_scored_starting_where_the_last_search_stopped(test_plugins):
    scored: list[list[int]] = []

    @test_plugins
    class Recorder(Plugin):
        name = "TestRecordScoredNodes"

        def score(self, state, pod, cluster, nodes):
            scored.append([int(n) for n in nodes])
            return np.zeros(len(nodes), dtype=np.int64)

    # 300 nodes; every third (0, 3, 6, ...) is unschedulable. percentage 10 -> max(30, 100) = 100 nodes.
    nodes = [Node(f"n{i:03d}", 4000, 4000, unschedulable=i % 3 == 0) for i in range(300)]
    cfg = ProfileConfig(percentage_of_nodes_to_score=10)
    cfg.plugins["score"] = [("TestRecordScoredNodes", 1)]
    cfg.plugins["preScore"] = []
    sched = Scheduler(ClusterState(nodes), [cfg], clock=lambda: 0.0)
    fw = sched.frameworks["default-scheduler"]
    for name in ("a", "b"):
        sched.add(Pod(name, cpu_milli=1))
    first = sched.schedule_one()
    # feasible nodes are 1, 2, 4, 5, ...: the 100th is 3*49 + 2 = 149, so 150 nodes were evaluated
    assert first.feasible_nodes == 100 and first.evaluated_nodes == 150
    assert scored[0] == [i for i in range(150) if i % 3]
    assert fw.next_start_node_index == 150
    second = sched.schedule_one()
    # the second search starts at node 150 and stops at the 100th feasible node, 299
    assert scored[1] == [i for i in range(150, 300) if i % 3]
    assert second.evaluated_nodes == 150 and fw.next_start_node_index == 0


def test_every_node_is_scored_below_100_nodes(test_plugins):
    scored = []

    @test_plugins
    class Recorder(Plugin):
        name = "TestRecordScoredNodes2"

        def score(self, state, pod, cluster, nodes):
            scored.append(len(nodes))
            return np.zeros(len(nodes), dtype=np.int64)
    cfg = ProfileConfig(percentage_of_nodes_to_score=5)
    cfg.plugins["score"] = [("TestRecordScoredNodes2", 1)]
    sched = Scheduler(ClusterState([Node(f"n{i}", 1000, 1000) for i in range(99)]), [cfg], clock=lambda: 0.0)
    sched.add(Pod("p"))
    assert sched.schedule_one().feasible_nodes == 99 and scored == [99]


# ---------------------------------------------------------------------------- weights
@pytest.mark.parametrize("fit_weight, winner", [(1, "busy-clean"), (3, "empty-spot")])
def test_weighted_score_combination(fit_weight, winner):
    # empty-spot 8000m/16000Mi, PreferNoSchedule taint, empty; busy-clean 8000m/16000Mi holding 4000m/8000Mi.
    # Pod 1000m/2000Mi. LeastAllocated: empty-spot cpu 7000*100/8000 = 87, mem 14000*100/16000 = 87 -> 87;
    #   busy-clean cpu 3000*100/8000 = 37, mem 6000*100/16000 = 37 -> 37.
    # TaintToleration: counts [1, 0] -> [0, 100].
    # weights taint 1, fit 1: 0 + 87 = 87 vs 100 + 37 = 137 -> busy-clean
    # weights taint 1, fit 3: 261 vs 100 + 111 = 211 -> empty-spot
    cluster = ClusterState([Node("empty-spot", 8000, 16000, taints=[Taint("spot", "", "PreferNoSchedule")]),
                            Node("busy-clean", 8000, 16000)])
    cluster.assign(Pod("busy", cpu_milli=4000, memory_mib=8000), 1)
    cfg = ProfileConfig()
    cfg.plugins["score"] = [("TaintToleration", 1), ("NodeResourcesFit", fit_weight)]
    cfg.plugins["preScore"] = []
    sched = Scheduler(cluster, [cfg], clock=lambda: 0.0)
    sched.add(Pod("p", cpu_milli=1000, memory_mib=2000))
    assert sched.schedule_one().node_name == winner


# ---------------------------------------------------------------------------- permit, reserve, bind
def permit_scheduler(test_plugins, clock, binder=None):
    @test_plugins
    class WaitHere(Plugin):
        name = "TestWaitAtPermit"

        def permit(self, state, pod, cluster, node_index):
            if pod.labels.get("gate") == "deny":
                return Status.unschedulable("denied by test")
            return (Status.wait(), 30.0) if pod.labels.get("gate") == "wait" else None
    cfg = ProfileConfig()
    cfg.plugins["permit"] = [("TestWaitAtPermit", 1)]
    cluster = ClusterState([Node.with_gpus("n", 8000, 8000, 2, "A100")])
    return Scheduler(cluster, [cfg], clock=clock, binder=binder), cluster


def test_permit_wait_then_allow_binds(test_plugins):
    clock = Clock()
    sched, cluster = permit_scheduler(test_plugins, clock)
    pod = Pod("p", cpu_milli=1000, num_gpu=1, labels={"gate": "wait"})
    sched.add(pod)
    outcome = sched.schedule_one()
    assert outcome.status == "waiting" and pod.node_name is None
    assert pod.uid in cluster.placements and cluster.cpu_free_milli[0] == 7000  # held while waiting
    bound = sched.allow(pod.uid, "TestWaitAtPermit")
    assert bound.status == "scheduled" and pod.node_name == "n" and pod.gpu_indices == (0,)
    assert len(sched.queue) == 0


def test_permit_reject_gives_resources_back_and_parks_the_pod(test_plugins):
    clock = Clock()
    sched, cluster = permit_scheduler(test_plugins, clock)
    before = cluster.snapshot()
    pod = Pod("p", cpu_milli=1000, num_gpu=1, labels={"gate": "wait"})
    sched.add(pod)
    sched.schedule_one()
    outcome = sched.reject(pod.uid, "gang incomplete")
    assert outcome.status == "unschedulable" and "gang incomplete" in outcome.message
    assert all(np.array_equal(before[k], v) for k, v in cluster.snapshot().items())
    # kube parks the rejected pod itself (the move its freed resources trigger skips it)
    assert pod.uid in sched.queue.unschedulable
    assert [qp.pod.name for qp in sched.queue.pods()] == ["p"]


def test_permit_timeout_rejects(test_plugins):
    clock = Clock()
    sched, cluster = permit_scheduler(test_plugins, clock)
    pod = Pod("p", cpu_milli=1000, labels={"gate": "wait"})
    sched.add(pod)
    sched.schedule_one()
    clock.now = 29.0
    assert sched.expire_waiting() == [] and pod.uid in cluster.placements
    clock.now = 30.0
    (outcome,) = sched.expire_waiting()
    assert outcome.status == "unschedulable" and "timeout" in outcome.message
    assert pod.uid not in cluster.placements and cluster.cpu_free_milli[0] == 8000


def test_permit_denial_unreserves(test_plugins):
    sched, cluster = permit_scheduler(test_plugins, Clock())
    sched.add(Pod("p", cpu_milli=1000, labels={"gate": "deny"}))
    outcome = sched.schedule_one()
    assert outcome.status == "unschedulable" and outcome.message == "TestWaitAtPermit: denied by test"
    assert not cluster.placements and cluster.cpu_free_milli[0] == 8000


def test_reserve_failure_unreserves_every_reserve_plugin(test_plugins):
    calls = []

    @test_plugins
    class Fails(Plugin):
        name = "TestReserveFails"

        def reserve(self, state, pod, cluster, node_index):
            calls.append("reserve")
            return Status.unschedulable("no room in the test")

        def unreserve(self, state, pod, cluster, node_index):
            calls.append("unreserve")
    cfg = ProfileConfig()
    cfg.plugins["reserve"] = [("GpuFit", 1), ("TestReserveFails", 1)]
    cluster = ClusterState([Node.with_gpus("n", 8000, 8000, 2, "A100")])
    before = cluster.snapshot()
    sched = Scheduler(cluster, [cfg], clock=lambda: 0.0)
    pod = Pod("p", cpu_milli=1000, num_gpu=1)
    sched.add(pod)
    outcome = sched.schedule_one()
    assert outcome.status == "unschedulable" and outcome.message == "TestReserveFails: no room in the test"
    assert calls == ["reserve", "unreserve"]
    assert not cluster.placements and all(np.array_equal(before[k], v) for k, v in cluster.snapshot().items())


def test_bind_failure_gives_resources_back_and_backs_off():
    def binder(pod, node):
        raise RuntimeError("API server unavailable")
    cluster = ClusterState([Node.with_gpus("n", 8000, 8000, 2, "A100")])
    before = cluster.snapshot()
    sched = Scheduler(cluster, [builtin_profile("default")], clock=lambda: 0.0, binder=binder)
    pod = Pod("p", cpu_milli=1000, num_gpu=2)
    sched.add(pod)
    outcome = sched.schedule_one()
    assert outcome.status == "error" and "API server unavailable" in outcome.message
    assert not cluster.placements and all(np.array_equal(before[k], v) for k, v in cluster.snapshot().items())
    assert pod.node_name is None
    assert sched.queue.pending() == {"active": 0, "backoff": 1, "unschedulable": 0}
