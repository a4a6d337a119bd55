"""Gang scheduling (Coscheduling) and gang-aware priority preemption: outcomes a user relies on."""

from __future__ import annotations

from gpufleet.cluster import ClusterState, Node, Pod, PodGroup
from gpufleet.scheduler import Scheduler, builtin_profile
from gpufleet.scheduler.plugins.gang import with_gang

from .helpers import Clock


def gpu_nodes(count: int, gpus: int) -> list[Node]:
    return [Node.with_gpus(f"n{i}", 64000, 256 * 1024, gpus, "A100") for i in range(count)]


def make(nodes, preemption=True, clock=None):
    clock = clock or Clock()
    sched = Scheduler(ClusterState(nodes), [with_gang(builtin_profile("binpack"), preemption)], clock=clock)
    bound: list[Pod] = []
    sched.on_bound.append(lambda pod, node: bound.append(pod))
    return sched, clock, bound


def gang(sched, name, size, gpus=1, priority=0, min_member=None, timeout=60.0):
    sched.add_pod_group(PodGroup(name, min_member or size, schedule_timeout_seconds=timeout))
    pods = [Pod(f"{name}-{i}", cpu_milli=1000, memory_mib=1024, num_gpu=gpus, priority=priority, pod_group=name)
            for i in range(size)]
    for p in pods:
        sched.add(p)
    return pods


def bound_names(bound):
    return sorted(p.name for p in bound)


def test_gang_binds_all_members_together():
    sched, _, bound = make(gpu_nodes(2, 4))
    pods = gang(sched, "job", 4, gpus=2)
    outcomes = sched.run_until_idle()
    assert [o.status for o in outcomes[:3]] == ["waiting"] * 3  # held at Permit until the 4th has a place
    assert bound_names(bound) == sorted(p.name for p in pods)
    assert not sched.handle.waiting_pods


def test_gang_waits_for_missing_siblings_without_holding_resources():
    sched, _, bound = make(gpu_nodes(1, 8))
    sched.add_pod_group(PodGroup("job", 3))
    first = [Pod(f"job-{i}", num_gpu=1, pod_group="job") for i in range(2)]
    for p in first:
        sched.add(p)
    outcomes = sched.run_until_idle()
    assert all(o.status == "unschedulable" for o in outcomes)
    assert "cannot find enough sibling pods" in outcomes[0].message
    assert sched.cluster.gpu_allocated_milli == 0  # nothing reserved for an incomplete gang
    last = Pod("job-2", num_gpu=1, pod_group="job")
    sched.add(last)
    sched.cluster_changed("PodAdd")
    sched.run_until_idle()
    assert bound_names(bound) == ["job-0", "job-1", "job-2"]


def test_gang_that_cannot_fit_is_rejected_before_taking_anything():
    sched, _, bound = make(gpu_nodes(2, 2), preemption=False)
    gang(sched, "big", 5)  # 5 GPUs on a 4-GPU cluster
    outcomes = sched.run_until_idle()
    assert not bound
    assert sched.cluster.gpu_allocated_milli == 0
    assert "cannot hold" in outcomes[0].message


def test_two_gangs_do_not_deadlock_on_a_cluster_that_fits_one():
    # 6 GPUs, two gangs of 4: interleaved arrival would leave both half placed (the coscheduling deadlock).
    sched, clock, bound = make(gpu_nodes(3, 2), preemption=False)
    sched.add_pod_group(PodGroup("a", 4))
    sched.add_pod_group(PodGroup("b", 4))
    a = [Pod(f"a-{i}", num_gpu=1, pod_group="a") for i in range(4)]
    b = [Pod(f"b-{i}", num_gpu=1, pod_group="b") for i in range(4)]
    for pa, pb in zip(a, b):
        sched.add(pa)
        sched.add(pb)
    sched.run_until_idle()
    assert bound_names(bound) == sorted(p.name for p in a)  # a whole gang, not 3 + 3
    assert not sched.handle.waiting_pods
    assert sched.cluster.gpu_allocated_milli == 4000
    for p in a:  # gang a finishes; gang b gets the GPUs
        sched.pod_deleted(p)
    clock.now += 30
    sched.run_until_idle()
    assert bound_names(bound) == sorted(p.name for p in a + b)


def test_permit_timeout_unreserves_every_member():
    sched, clock, bound = make(gpu_nodes(1, 4), preemption=False)
    sched.add_pod_group(PodGroup("job", 2, schedule_timeout_seconds=10))
    p0 = Pod("job-0", num_gpu=1, pod_group="job")
    p1 = Pod("job-1", num_gpu=5, pod_group="job")  # can never fit
    sched.add(p0)
    sched.add(p1)
    sched.run_until_idle()
    assert not bound
    assert sched.cluster.gpu_allocated_milli == 0
    assert not sched.handle.waiting_pods


def test_waiting_gang_is_released_for_a_blocked_pod():
    sched, clock, bound = make(gpu_nodes(1, 4), preemption=False)
    sched.add_pod_group(PodGroup("job", 2, schedule_timeout_seconds=600))
    sched.add(Pod("job-0", num_gpu=2, pod_group="job"))
    sched.add(Pod("job-1", num_gpu=2, pod_group="job"))
    assert sched.schedule_one().status == "waiting"  # job-0 holds 2 of the 4 GPUs, waiting for job-1
    sched.add(Pod("other", num_gpu=3, priority=10))  # popped before job-1, blocked by job-0's GPUs
    outcome = sched.schedule_one()
    assert outcome.pod.name == "other" and outcome.status == "unschedulable"
    assert not sched.handle.waiting_pods and sched.cluster.gpu_allocated_milli == 0  # the gang let go
    sched.run_until_idle()
    assert bound_names(bound) == ["other"]  # retried at once, ahead of the gang


def test_preemption_evicts_a_whole_gang_or_nothing():
    sched, clock, bound = make(gpu_nodes(2, 2))
    evicted: list[Pod] = []
    sched.on_evicted.append(lambda pod, msg: evicted.append(pod))
    low = gang(sched, "low", 2, gpus=1, priority=0)  # one GPU on each of... 2 GPUs of 4
    sched.run_until_idle()
    single = Pod("single-low", num_gpu=2, priority=0)
    sched.add(single)
    sched.run_until_idle()
    assert sched.cluster.gpu_allocated_milli == 4000
    high = Pod("high", num_gpu=2, priority=100)
    sched.add(high)
    clock.now += 1
    sched.run_until_idle()
    clock.now += 1
    sched.run_until_idle()
    assert high.uid in sched.cluster.placements
    names = sorted(p.name for p in evicted)
    # Either the single pod or the whole gang went, never one member of the gang.
    assert names in (["single-low"], sorted(p.name for p in low))
    for p in low:
        gone = p in evicted
        assert gone == all(q in evicted for q in low)


def test_preemption_never_evicts_equal_or_higher_priority():
    sched, clock, bound = make(gpu_nodes(1, 2))
    sched.add(Pod("a", num_gpu=2, priority=5))
    sched.run_until_idle()
    evicted = []
    sched.on_evicted.append(lambda pod, msg: evicted.append(pod))
    sched.add(Pod("b", num_gpu=1, priority=5))
    sched.run_until_idle()
    assert not evicted


def test_high_priority_gang_preempts_enough_for_all_members():
    sched, clock, bound = make(gpu_nodes(2, 2))
    evicted = []
    sched.on_evicted.append(lambda pod, msg: evicted.append(pod))
    for i in range(4):
        sched.add(Pod(f"filler-{i}", num_gpu=1, priority=0))
    sched.run_until_idle()
    hi = gang(sched, "hi", 3, gpus=1, priority=50)
    for _ in range(5):
        clock.now += 2
        sched.run_until_idle()
    assert all(p.uid in sched.cluster.placements for p in hi)
    assert len(evicted) == 3  # exactly what the gang needs, not every filler
    sched.cluster.check_invariants()


def test_permit_timeout_rejects_the_waiting_member_and_frees_its_gpu():
    sched, clock, bound = make(gpu_nodes(1, 4), preemption=False)
    pods = gang(sched, "job", 2, timeout=10)
    first = sched.schedule_one()
    assert first.status == "waiting" and sched.cluster.gpu_allocated_milli == 1000
    clock.now += 11  # the sibling never got its turn: the Permit wait times out
    sched.expire_waiting()
    assert sched.cluster.gpu_allocated_milli == 0 and not bound
    clock.now += 20
    sched.cluster_changed()
    sched.run_until_idle()
    assert bound_names(bound) == sorted(p.name for p in pods)
