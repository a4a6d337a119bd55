"""Property: whatever arrives, leaves and fails, no gang is ever bound with fewer than minMember pods."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.cluster import ClusterState, Node, Pod, PodGroup
from gpufleet.scheduler import Scheduler, builtin_profile
from gpufleet.scheduler.plugins.gang import with_gang

from .helpers import Clock

gang_op = st.tuples(st.just("gang"), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4),
                    st.integers(0, 2), st.sampled_from([5.0, 60.0]))
pod_op = st.tuples(st.just("pod"), st.integers(1, 4), st.integers(0, 2))
ops = st.lists(st.one_of(gang_op, pod_op, st.tuples(st.just("finish"), st.integers(0, 50)),
                         st.tuples(st.just("tick"), st.sampled_from([0.5, 2.0, 7.0, 61.0]))),
               min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(st.integers(1, 8), min_size=1, max_size=4), ops=ops, preemption=st.booleans())
def test_no_partial_gang_is_ever_bound(nodes, ops, preemption):
    clock = Clock()
    cluster = ClusterState([Node.with_gpus(f"n{i}", 64000, 1 << 20, g, "A100") for i, g in enumerate(nodes)])
    sched = Scheduler(cluster, [with_gang(builtin_profile("binpack"), preemption)], clock=clock)
    running: dict[str, Pod] = {}
    groups: dict[str, tuple[PodGroup, list[Pod]]] = {}
    sched.on_bound.append(lambda pod, node: running.__setitem__(pod.uid, pod))

    def evicted(pod, message):
        key = pod.pod_group
        if key in groups:  # the backend stops the whole job, as the simulator and kube do
            for p in groups.pop(key)[1]:
                running.pop(p.uid, None)
                sched.pod_deleted(p)
        else:
            running.pop(pod.uid, None)
    sched.on_evicted.append(evicted)

    def check():
        cluster.check_invariants()
        for name, (group, pods) in groups.items():
            n_bound = sum(1 for p in pods if p.uid in running)
            assert n_bound == 0 or n_bound >= group.min_member, (name, n_bound, group.min_member)
            n_waiting = sum(1 for p in pods if p.uid in sched.handle.waiting_pods)
            if n_waiting:
                assert n_bound < group.min_member  # only incomplete gangs wait
        for uid in running:
            assert uid in cluster.placements and uid not in sched.handle.waiting_pods

    for i, op in enumerate(ops):
        if op[0] == "gang":
            _, size, min_member, gpus, priority, timeout = op
            group = PodGroup(f"g{i}", min(min_member, size), schedule_timeout_seconds=timeout)
            pods = [Pod(f"g{i}-{k}", cpu_milli=100, num_gpu=gpus, priority=priority, pod_group=group.name)
                    for k in range(size)]
            groups[group.name] = (group, pods)
            sched.add_pod_group(group)
            for p in pods:
                sched.add(p)
        elif op[0] == "pod":
            sched.add(Pod(f"p{i}", cpu_milli=100, num_gpu=op[1], priority=op[2]))
        elif op[0] == "finish" and groups:
            name = sorted(groups)[op[1] % len(groups)]
            for p in groups.pop(name)[1]:
                running.pop(p.uid, None)
                sched.pod_deleted(p)
        elif op[0] == "tick":
            clock.now += op[1]
        while sched.schedule_one() is not None:
            check()
        check()
