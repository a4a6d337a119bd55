"""Property tests: random clusters and pod streams under every built-in policy, with deletions.

* no node or GPU is ever over-committed (ClusterState.check_invariants after every step);
* every placement is re-checked against a slow per-node reference of the filter rules written here,
  independent of the plugins; a pod reported unschedulable has no feasible node by that reference;
* releasing everything returns every array exactly to its initial value.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from gpufleet.cluster import ClusterState, Node, OwnerReference, Pod, Taint, Toleration
from gpufleet.scheduler import BUILTIN_POLICIES, Scheduler, builtin_profile

MODELS = ("A100", "V100", "T4")
TAINTS = (Taint("dedicated", "gpu", "NoSchedule"), Taint("maint", "x", "NoExecute"),
          Taint("spot", "", "PreferNoSchedule"))
TOLERATIONS = (Toleration("dedicated", "Equal", "gpu", "NoSchedule"), Toleration("maint", "Exists"),
               Toleration("spot", "Exists", effect="PreferNoSchedule"))


@st.composite
def nodes(draw):
    count = draw(st.integers(1, 6))
    out = []
    for i in range(count):
        gpus = draw(st.integers(0, 8))
        labels = {}
        tier = draw(st.sampled_from(["", "gold", "silver"]))
        if tier:
            labels["tier"] = tier
        zone = draw(st.sampled_from(["", "a", "b"]))
        if zone:
            labels["topology.kubernetes.io/zone"] = zone
        out.append(Node.with_gpus(
            f"n{i}", draw(st.integers(0, 32)) * 500, draw(st.integers(0, 64)) * 512, gpus,
            draw(st.sampled_from(MODELS)), labels=labels,
            taints=draw(st.lists(st.sampled_from(TAINTS), max_size=2, unique=True)),
            unschedulable=draw(st.booleans()) and draw(st.booleans()), max_pods=draw(st.integers(1, 12))))
    return out


@st.composite
def pods(draw):
    out = []
    for i in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["cpu", "whole", "share", "multi-share"]))
        num_gpu, milli = {"cpu": (0, 0), "whole": (draw(st.integers(1, 4)), 1000),
                          "share": (1, draw(st.integers(1, 999))),
                          "multi-share": (2, draw(st.sampled_from([250, 500, 750])))}[kind]
        selector = draw(st.sampled_from([{}, {}, {"tier": "gold"}, {"tier": "silver"}]))
        out.append(Pod(
            f"p{i}", cpu_milli=draw(st.integers(0, 8)) * 500, memory_mib=draw(st.integers(0, 16)) * 512,
            num_gpu=num_gpu, gpu_milli=milli, node_selector=selector,
            gpu_models=tuple(draw(st.lists(st.sampled_from(MODELS), max_size=2, unique=True))) if num_gpu else (),
            tolerations=tuple(draw(st.lists(st.sampled_from(TOLERATIONS), max_size=3, unique=True))),
            labels={"app": draw(st.sampled_from(["web", "db"]))}, owner=OwnerReference("ReplicaSet", "rs"),
            priority=draw(st.integers(0, 2))))
    return out


# ---------------------------------------------------------------------------- the reference
def tolerated(taint, tolerations) -> bool:
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if not t.key:
            if t.operator == "Exists":
                return True
            continue
        if t.key == taint.key and (t.operator == "Exists" or t.value == taint.value):
            return True
    return False


def feasible(node: Node, pod: Pod, ledger: list[tuple[Pod, tuple[int, ...]]]) -> bool:
    """Would ``pod`` pass every filter on ``node`` holding the pods of ``ledger``? (one node, plain Python)"""
    if node.unschedulable and not tolerated(Taint("node.kubernetes.io/unschedulable", "", "NoSchedule"),
                                            pod.tolerations):
        return False
    if pod.node_name and pod.node_name != node.name:
        return False
    if any(t.effect in ("NoSchedule", "NoExecute") and not tolerated(t, pod.tolerations) for t in node.taints):
        return False
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    if len(ledger) + 1 > node.max_pods:
        return False
    if pod.cpu_milli and sum(p.cpu_milli for p, _ in ledger) + pod.cpu_milli > node.cpu_milli:
        return False
    if pod.memory_mib and sum(p.memory_mib for p, _ in ledger) + pod.memory_mib > node.memory_mib:
        return False
    if pod.num_gpu:
        if pod.gpu_models and node.gpu_model not in pod.gpu_models:
            return False
        used = [0] * node.gpu_count
        for p, gpus in ledger:
            for g in gpus:
                used[g] += p.gpu_milli
        if sum(1 for u in used if 1000 - u >= pod.gpu_milli) < pod.num_gpu:
            return False
    return True


def check_outcome(outcome, cluster_nodes, ledgers):
    pod = outcome.pod
    if outcome.status == "scheduled":
        node = next(n for n in cluster_nodes if n.name == outcome.node_name)
        assert feasible(node, pod, ledgers[node.name]), f"{pod.name} placed on {node.name}, which fails a filter"
        assert len(pod.gpu_indices) == pod.num_gpu == len(set(pod.gpu_indices))
        assert all(0 <= g < node.gpu_count for g in pod.gpu_indices)
        ledgers[node.name].append((pod, pod.gpu_indices))
    else:
        assert outcome.status == "unschedulable", outcome.message
        assert not any(feasible(n, pod, ledgers[n.name]) for n in cluster_nodes), \
            f"{pod.name} reported unschedulable ({outcome.message}) but a node fits"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node_list=nodes(), pod_list=pods(), policy=st.sampled_from(BUILTIN_POLICIES),
       deletions=st.lists(st.integers(0, 10_000), max_size=12), seed=st.integers(0, 2**16))
def test_random_streams_never_overcommit_and_release_restores(node_list, pod_list, policy, deletions, seed):
    cluster = ClusterState(node_list)
    initial = cluster.snapshot()
    clock = [0.0]
    sched = Scheduler(cluster, [builtin_profile(policy)], seed=seed, clock=lambda: clock[0])
    ledgers = {n.name: [] for n in node_list}
    deletions = list(deletions)
    for i, pod in enumerate(pod_list):
        sched.add(pod)
        clock[0] += 20.0  # past any backoff: parked pods moved by a deletion are retried
        while (outcome := sched.schedule_one()) is not None:
            check_outcome(outcome, node_list, ledgers)
            cluster.check_invariants()
        if deletions and i % 2:
            placed = [p for entries in ledgers.values() for p, _ in entries]
            if placed:
                victim = placed[deletions.pop() % len(placed)]
                sched.pod_deleted(victim)
                for name in ledgers:
                    ledgers[name] = [(p, g) for p, g in ledgers[name] if p is not victim]
                cluster.check_invariants()
    # the ledger and the cluster agree on who is where
    assert {p.uid: name for name, entries in ledgers.items() for p, _ in entries} == \
        {uid: pl.node_name for uid, pl in cluster.placements.items()}
    for uid in list(cluster.placements):
        cluster.release(uid)
    after = cluster.snapshot()
    assert all(np.array_equal(initial[k], after[k]) for k in initial)
    cluster.check_invariants()
