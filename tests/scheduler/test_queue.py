"""The scheduling queue (kube PriorityQueue): priority order, backoff 1, 2, 4, 8, 10, 10 s, parking,
moves on cluster events, the 5-minute flush, and failures during a move request going to backoff."""

import pytest

from gpufleet.cluster import Pod
from gpufleet.scheduler import SchedulingQueue
from .helpers import Clock


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(clock):
    return SchedulingQueue(clock=clock)


def drain(queue):
    out = []
    while (qp := queue.pop()) is not None:
        out.append(qp.pod.name)
        queue.done(qp)
    return out


def test_priority_then_arrival_order(queue, clock):
    for t, (name, prio) in enumerate([("low-1", 0), ("high", 100), ("low-2", 0), ("mid", 10), ("high-2", 100)]):
        clock.now = float(t)
        queue.add(Pod(name, priority=prio))
    assert drain(queue) == ["high", "high-2", "mid", "low-1", "low-2"]


def test_backoff_durations(queue):
    assert [queue.backoff_duration(a) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def fail(queue, clock, move_during_cycle=False):
    qp = queue.pop()
    if move_during_cycle:
        queue.move_all_to_active_or_backoff("NodeAdded")
    queue.add_unschedulable(qp, {"NodeResourcesFit"}, "0/1 nodes are available: 1 Insufficient cpu.")
    return qp


def test_a_failed_pod_is_parked_until_a_cluster_event(queue, clock):
    queue.add(Pod("p"))
    qp = fail(queue, clock)
    assert queue.pending() == {"active": 0, "backoff": 0, "unschedulable": 1}
    clock.now = 100.0
    assert queue.pop() is None  # parked pods are not retried on their own (before the flush)
    assert queue.move_all_to_active_or_backoff("NodeAdded") == 1  # backoff (1 s) long over: straight to active
    assert queue.pending()["active"] == 1
    assert queue.pop() is qp and qp.attempts == 2


def test_a_moved_pod_still_backing_off_waits_in_backoff(queue, clock):
    queue.add(Pod("p"))
    fail(queue, clock)  # attempt 1 at t=0: backoff until t=1
    clock.now = 0.5
    queue.move_all_to_active_or_backoff("PodDeleted")
    assert queue.pending() == {"active": 0, "backoff": 1, "unschedulable": 0}
    assert queue.pop() is None
    clock.now = 1.0
    assert queue.pop().pod.name == "p"


def test_pod_failing_while_a_move_request_happened_goes_to_backoff(queue, clock):
    queue.add(Pod("p"))
    queue.add(Pod("q"))
    qp = fail(queue, clock, move_during_cycle=True)
    assert queue.pending() == {"active": 1, "backoff": 1, "unschedulable": 0}
    assert queue.next_backoff_expiry() == 1.0
    # the next cycle (no move request during it) parks its pod
    fail(queue, clock)
    assert queue.pending() == {"active": 0, "backoff": 1, "unschedulable": 1}
    clock.now = 1.0
    assert queue.pop() is qp


def test_backoff_grows_with_attempts(queue, clock):
    queue.add(Pod("p"))
    expiries = []
    for _ in range(6):
        qp = fail(queue, clock, move_during_cycle=True)
        expiries.append(qp.backoff_expiry - clock.now)
        clock.now = qp.backoff_expiry
    assert expiries == [1, 2, 4, 8, 10, 10]


def test_parked_pods_are_flushed_after_five_minutes(queue, clock):
    queue.add(Pod("p"))
    fail(queue, clock)
    clock.now = 300.0
    assert queue.pop() is None  # kube flushes pods parked strictly longer than 5 minutes
    clock.now = 300.5
    assert queue.pop().pod.name == "p"


def test_deleted_pods_leave_the_queue(queue, clock):
    p, q = Pod("p"), Pod("q")
    queue.add(p)
    queue.add(q)
    queue.delete(p)
    assert drain(queue) == ["q"]
    queue.add(p)
    queue.delete(p)
    queue.add(p)  # deleted and added again: popped once, as the new entry
    first = queue.pop()
    assert first.pod is p and first.attempts == 1
    assert queue.pop() is None
