"""End to end through the real kubernetes client and the wire server: bind, restart, leader election,
dropped watches, 409 on bind, metrics, and the RBAC role against the calls actually made."""

from __future__ import annotations

import urllib.request
from collections import Counter

from gpufleet.cluster import GPU_INDEX_ANNOTATION
from gpufleet.kube.manifests import cluster_role_rules

from .conftest import (SCHEDULER_NAME, assert_capacity_respected, bound_count, make_scheduler, node_obj,
                       pod_obj, wait_for)


def _workload(server, n_pods: int, prefix: str = "job") -> None:
    for i in range(n_pods):
        kind = i % 5
        if kind == 0:
            pod = pod_obj(f"{prefix}-{i}", cpu="2", memory="8Gi", gpus=1)
        elif kind == 1:
            pod = pod_obj(f"{prefix}-{i}", cpu="1", memory="4Gi", gpus=1, gpu_milli=500)
        elif kind == 2:
            pod = pod_obj(f"{prefix}-{i}", cpu="1", memory="2Gi", gpus=1, gpu_milli=250)
        elif kind == 3:
            pod = pod_obj(f"{prefix}-{i}", cpu="4", memory="16Gi", gpus=2)
        else:
            pod = pod_obj(f"{prefix}-{i}", cpu="500m", memory="1Gi")
        server.store.create("pods", pod, "default")


def _bindings_per_pod(server) -> Counter:
    return Counter((b["namespace"], b["name"]) for b in server.bindings)


def _used_calls(server) -> set[tuple[str, str, str]]:
    out = set()
    for r in server.requests:
        if r.user_agent.startswith("gpufleet-scheduler/"):
            resource = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
            out.add((r.group, resource, r.verb))
    return out


def test_500_pods_onto_100_nodes_each_bound_once(server, kubeconfig):
    for i in range(100):
        server.store.create("nodes", node_obj(f"gpu-{i:03d}", zone=f"zone-{i % 3}"))
    _workload(server, 500)
    server.store.create("pods", pod_obj("too-big", gpus=16), "default")  # no node has 16 GPUs
    server.store.create("pods", pod_obj("someone-elses", scheduler="default-scheduler"), "default")
    sched = make_scheduler(kubeconfig).start()
    try:
        assert wait_for(lambda: bound_count(server) == 500, 60)
        assert wait_for(lambda: sched.events.posted >= 501, 20)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{sched.metrics_server.port}/metrics").read().decode()
        health = urllib.request.urlopen(f"http://127.0.0.1:{sched.metrics_server.port}/healthz").read()
    finally:
        sched.stop()
    assert set(_bindings_per_pod(server).values()) == {1} and len(server.bindings) == 500
    pods = {p["metadata"]["name"]: p for p in server.pods()}
    assert not pods["too-big"]["spec"].get("nodeName")
    assert not pods["someone-elses"]["spec"].get("nodeName")
    assert_capacity_respected(server)
    # every shared-GPU pod was annotated with its GPU before it was bound
    for p in pods.values():
        milli = p["spec"]["containers"][0]["resources"]["requests"].get("gpufleet.io/gpu-milli")
        if milli and p["spec"].get("nodeName"):
            assert GPU_INDEX_ANNOTATION in p["metadata"]["annotations"]
    events = server.store.list("events.events.k8s.io")[0]
    reasons = Counter((e["reason"], e["regarding"]["name"]) for e in events)
    assert reasons[("Scheduled", "job-0")] == 1
    failed = [e for e in events if e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "too-big"]
    assert failed and failed[-1]["note"].startswith("0/100 nodes are available: ")
    assert "Insufficient nvidia.com/gpu." in failed[-1]["note"] and failed[-1]["type"] == "Warning"
    assert 'gpufleet_schedule_attempts_total{profile="gpufleet-scheduler",result="scheduled"} 500.0' in metrics
    assert "gpufleet_scheduling_attempt_duration_seconds_bucket" in metrics
    assert 'gpufleet_pending_pods{queue="unschedulable"}' in metrics
    assert health == b"ok"
    # least privilege: the role grants exactly what the code used
    granted = {(g, r, v) for rule in cluster_role_rules() for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    used = _used_calls(server)
    assert used <= granted, used - granted
    assert granted - used <= {("coordination.k8s.io", "leases", "update")}  # first replica only creates


def test_restart_midway_rebuilds_state_and_never_double_binds(server, kubeconfig):
    import time
    for i in range(30):
        server.store.create("nodes", node_obj(f"gpu-{i:02d}", gpus=8))
    _workload(server, 200)
    binds = []

    def slow_after_40(ns, name, binding):
        # A slow API server: after 40 binds each takes 0.5 s, so the crash below lands mid-way however
        # loaded the machine is (at most the 4 in-flight binds complete after the 40th).
        binds.append(name)
        if len(binds) > 40:
            time.sleep(0.5)

    server.bind_hook = slow_after_40
    first = make_scheduler(kubeconfig, identity="first").start()
    try:
        assert wait_for(lambda: bound_count(server) >= 40, 30)
    finally:
        first.stop(release_lease=False)  # a crash: the lease is left to expire
    server.bind_hook = None
    done_by_first = bound_count(server)
    assert done_by_first < 200
    second = make_scheduler(kubeconfig, identity="second").start()
    try:
        assert wait_for(lambda: second.synced and second.is_leader, 20)
        # it rebuilt the first one's placements from the API, GPU indices included
        assert wait_for(lambda: bound_count(server) == 200, 40)
        assert wait_for(lambda: len(second.cluster.placements) == 200, 10)
        second.cluster.check_invariants()
        shared = [p for p in server.pods() if GPU_INDEX_ANNOTATION in p["metadata"].get("annotations", {})]
        for p in shared:
            placement = second.cluster.placements[p["metadata"]["uid"]]
            assert placement.gpu_indices == (int(p["metadata"]["annotations"][GPU_INDEX_ANNOTATION]),)
    finally:
        second.stop()
    assert set(_bindings_per_pod(server).values()) == {1}
    assert not [r for r in server.requests if r.subresource == "binding" and r.code != 201]
    assert_capacity_respected(server)


def test_two_replicas_one_schedules_then_the_other_takes_over(server, kubeconfig):
    for i in range(10):
        server.store.create("nodes", node_obj(f"gpu-{i}", gpus=8))
    a = make_scheduler(kubeconfig, identity="replica-a").start()
    b = make_scheduler(kubeconfig, identity="replica-b").start()
    try:
        assert wait_for(lambda: a.is_leader or b.is_leader, 10)
        leader, standby = (a, b) if a.is_leader else (b, a)
        _workload(server, 60, prefix="first")
        assert wait_for(lambda: bound_count(server) == 60, 30)
        assert not standby.is_leader
        agents = {x["user_agent"] for x in server.bindings}
        assert agents == {f"gpufleet-scheduler/{leader.identity}"}
        leader.stop()
        assert wait_for(lambda: standby.is_leader, 10)
        _workload(server, 40, prefix="second")
        assert wait_for(lambda: bound_count(server) == 100, 30)
    finally:
        a.stop()
        b.stop()
    second = [x for x in server.bindings if x["name"].startswith("second")]
    assert {x["user_agent"] for x in second} == {f"gpufleet-scheduler/{standby.identity}"}
    assert set(_bindings_per_pod(server).values()) == {1}
    assert_capacity_respected(server)


def test_dropped_watch_relists_and_loses_nothing(server, kubeconfig):
    for i in range(10):
        server.store.create("nodes", node_obj(f"gpu-{i}", gpus=8))
    sched = make_scheduler(kubeconfig).start()
    try:
        assert wait_for(lambda: sched.synced, 10)
        _workload(server, 40, prefix="before")
        assert wait_for(lambda: bound_count(server) == 40, 20)
        # the watches drop; the next pod list/watch calls fail with 500 (backoff) while pods come and go;
        # then the history is compacted, so the re-watch from the old resourceVersion gets 410 Gone
        server.inject("GET", r"^/api/v1/pods$", 500, count=3)
        server.drop_watches()
        _workload(server, 40, prefix="during")
        server.store.delete("pods", "default", "before-4")  # a delete the scheduler must not miss
        server.store.create("nodes", node_obj("gpu-late", gpus=8))
        server.compact()
        assert wait_for(lambda: bound_count(server) == 79, 30)
        pods_reflector = next(r for r in sched.reflectors if r.kind == "pods")
        assert wait_for(lambda: pods_reflector.lists >= 2, 10)
        assert wait_for(lambda: "gpu-late" in sched.cluster.node_index, 10)
        assert wait_for(lambda: len(sched.cluster.placements) == 79, 10)
    finally:
        sched.stop()
    assert pods_reflector.errors >= 1
    assert set(_bindings_per_pod(server).values()) == {1}
    assert_capacity_respected(server)


def test_bind_409_for_a_pod_bound_elsewhere_is_dropped_and_counted_where_it_is(server, kubeconfig):
    server.store.create("nodes", node_obj("gpu-0", gpus=8))
    server.store.create("nodes", node_obj("gpu-1", gpus=8))
    raced = []

    def other_scheduler_wins(ns, name, binding):
        if name == "contested" and not raced:
            raced.append(binding["target"]["name"])
            other = "gpu-1" if binding["target"]["name"] == "gpu-0" else "gpu-0"
            server.store.mutate("pods", ns, name, lambda p: {**p, "spec": {**p["spec"], "nodeName": other}})

    server.bind_hook = other_scheduler_wins
    sched = make_scheduler(kubeconfig).start()
    try:
        server.store.create("pods", pod_obj("contested", cpu="4", gpus=2), "default")
        assert wait_for(lambda: bool(raced), 10)
        pod = next(p for p in server.pods() if p["metadata"]["name"] == "contested")
        uid, where = pod["metadata"]["uid"], pod["spec"]["nodeName"]
        assert where != raced[0]
        assert wait_for(lambda: uid in sched.cluster.placements and
                        sched.cluster.placements[uid].node_name == where, 10)
        # dropped: not in the queue, never bound again
        assert wait_for(lambda: sum(sched.scheduler.queue.pending().values()) == 0, 5)
        sched.cluster.check_invariants()
        n = sched.cluster.node_index[raced[0]]
        assert sched.cluster.cpu_free_milli[n] == sched.cluster.cpu_capacity_milli[n]  # nothing left assumed
    finally:
        sched.stop()
    conflicts = [r for r in server.requests if r.subresource == "binding" and r.code == 409]
    assert len(conflicts) == 1 and sched.binder.conflicts == 1
    assert not server.bindings  # the other scheduler's write is not a binding through the API


def test_bind_409_for_a_still_unbound_pod_is_retried(server, kubeconfig):
    server.store.create("nodes", node_obj("gpu-0", gpus=8))
    server.inject("POST", r"/pods/retry-me/binding$", 409, count=1)
    sched = make_scheduler(kubeconfig).start()
    try:
        server.store.create("pods", pod_obj("retry-me", gpus=1), "default")
        assert wait_for(lambda: bound_count(server) == 1, 15)  # after one backoff (1 s)
    finally:
        sched.stop()
    calls = [r.code for r in server.requests if r.subresource == "binding"]
    assert calls == [409, 201]
    events = server.store.list("events.events.k8s.io")[0]
    assert any(e["reason"] == "FailedScheduling" and "binding rejected" in e["note"] for e in events)


def test_pod_groups_reach_the_gang_plugin_and_the_gang_binds_whole(server, kubeconfig):
    from gpufleet.kube.cli import client_factory
    from gpufleet.kube.runner import KubeOptions, KubeScheduler
    from gpufleet.scheduler import builtin_profile
    from gpufleet.scheduler.plugins.gang import with_gang

    server.store.create("nodes", node_obj("gpu-0", gpus=8))
    profile = with_gang(builtin_profile("binpack"), False)
    profile.scheduler_name = SCHEDULER_NAME
    options = KubeOptions(identity="gang", leader_elect=False, metrics_port=None, watch_timeout_s=5,
                          informer_backoff_s=0.05)
    sched = KubeScheduler(client_factory(kubeconfig), [profile], options).start()
    try:
        for i in range(3):
            pod = pod_obj(f"worker-{i}", gpus=2)
            pod["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": "train"}
            server.store.create("pods", pod, "default")
        assert wait_for(lambda: sched.synced, 10)
        assert bound_count(server) == 0  # no PodGroup yet: no member binds alone
        server.store.create("podgroups", {"metadata": {"name": "train"},
                                          "spec": {"minMember": 3, "scheduleTimeoutSeconds": 30}}, "default")
        assert wait_for(lambda: bound_count(server) == 3, 20)
    finally:
        sched.stop()
    assert set(_bindings_per_pod(server).values()) == {1}
    used = _used_calls(server)
    assert ("scheduling.x-k8s.io", "podgroups", "watch") in used
    from gpufleet.kube.manifests import cluster_role_rules
    granted = {(g, r, v) for rule in cluster_role_rules(with_pod_groups=True) for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    assert used <= granted


def test_preemption_deletes_the_victim_through_the_api(server, kubeconfig):
    """A profile with PriorityPreemption: a high-priority pod that fits nowhere gets a node by evicting a
    lower-priority pod, and the victim is deleted on the API server (not only forgotten in the cache)."""
    from gpufleet.kube.cli import client_factory
    from gpufleet.kube.runner import KubeOptions, KubeScheduler
    from gpufleet.scheduler import builtin_profile

    server.store.create("nodes", node_obj("only", gpus=2))
    profile = builtin_profile("binpack+gang")
    profile.scheduler_name = SCHEDULER_NAME
    options = KubeOptions(identity="preempt", leader_elect=False, metrics_port=None, watch_timeout_s=5,
                          informer_backoff_s=0.05)
    sched = KubeScheduler(client_factory(kubeconfig), [profile], options).start()
    try:
        for i in range(2):
            server.store.create("pods", pod_obj(f"low-{i}", gpus=1), namespace="default")
        assert wait_for(lambda: bound_count(server) == 2, 20)
        high = pod_obj("high", gpus=1)
        high["spec"]["priority"] = 1000
        server.store.create("pods", high, namespace="default")
        assert wait_for(lambda: any(p["metadata"]["name"] == "high" and p["spec"].get("nodeName")
                                    for p in server.pods()), 20)
        names = {p["metadata"]["name"] for p in server.pods()}
        assert "high" in names and len(names & {"low-0", "low-1"}) == 1  # exactly one victim deleted
    finally:
        sched.stop()
    assert_capacity_respected(server)
    deletes = {c for c in _used_calls(server) if c[2] == "delete"}
    granted = {(g, r, v) for rule in cluster_role_rules(with_pod_delete=True) for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    assert deletes and deletes <= granted
