"""The scheduling queue: active, backoff and unschedulable sub-queues.

Rules from kube-scheduler's PriorityQueue (pkg/scheduler/internal/queue/scheduling_queue.go):

* activeQ is a heap ordered by the profile's QueueSort plugin (PrioritySort: higher priority first, then
  earlier enqueue time);
* a pod that failed goes to unschedulablePods, or to backoffQ if a cluster event arrived while it was being
  scheduled (its failure may already be stale);
* backoff: ``initial * 2^(attempts-1)`` seconds capped at ``max`` (podInitialBackoffSeconds = 1,
  podMaxBackoffSeconds = 10);
* a cluster event (a pod deleted, a node added or changed) moves unschedulable pods back: to backoffQ while
  their backoff runs, otherwise to activeQ;
* a pod left in unschedulablePods longer than podMaxInUnschedulablePodsDuration (5 minutes) is flushed
  back the same way.

Time comes from a clock function so the simulator can drive it on virtual time.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..cluster import Pod

DEFAULT_INITIAL_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_BACKOFF_SECONDS = 10.0
DEFAULT_MAX_UNSCHEDULABLE_SECONDS = 300.0


@dataclass
class QueuedPod:
    pod: Pod
    timestamp: float  # when it (re-)entered the queue; PrioritySort orders by it
    initial_attempt_timestamp: float
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    last_failure: str = ""
    backoff_expiry: float = 0.0
    unschedulable_since: float = 0.0
    cycle: int = 0  # the scheduling cycle that last popped it


class _HeapItem:
    __slots__ = ("qp", "seq", "less")

    def __init__(self, qp: QueuedPod, seq: int, less: Callable[[QueuedPod, QueuedPod], bool]):
        self.qp, self.seq, self.less = qp, seq, less

    def __lt__(self, other: "_HeapItem") -> bool:
        if self.less(self.qp, other.qp):
            return True
        if self.less(other.qp, self.qp):
            return False
        return self.seq < other.seq


def priority_less(a: QueuedPod, b: QueuedPod) -> bool:
    """PrioritySort: higher .spec.priority first, then the earlier timestamp."""
    if a.pod.priority != b.pod.priority:
        return a.pod.priority > b.pod.priority
    return a.timestamp < b.timestamp


class SchedulingQueue:
    def __init__(self, less: Callable[[QueuedPod, QueuedPod], bool] = priority_less,
                 clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = DEFAULT_INITIAL_BACKOFF_SECONDS,
                 max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
                 max_unschedulable: float = DEFAULT_MAX_UNSCHEDULABLE_SECONDS):
        self.less = less
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._active: list[_HeapItem] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self.unschedulable: dict[str, QueuedPod] = {}
        self._known: dict[str, QueuedPod] = {}  # every queued pod by uid, in whichever sub-queue
        self._where: dict[str, str] = {}  # uid -> "active" | "backoff" | "unschedulable" | "inflight"
        self._seq = itertools.count()
        self._move_request_cycle = -1
        self.scheduling_cycle = 0

    # ------------------------------------------------------------------ adding
    def add(self, pod: Pod) -> None:
        """A new pending pod enters activeQ."""
        if pod.uid in self._where:
            return
        now = self.clock()
        qp = QueuedPod(pod, now, now)
        self._known[pod.uid] = qp
        self._push_active(qp)

    def _push_active(self, qp: QueuedPod) -> None:
        heapq.heappush(self._active, _HeapItem(qp, next(self._seq), self.less))
        self._where[qp.pod.uid] = "active"

    def _push_backoff(self, qp: QueuedPod) -> None:
        heapq.heappush(self._backoff, (qp.backoff_expiry, next(self._seq), qp))
        self._where[qp.pod.uid] = "backoff"

    def backoff_duration(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self.initial_backoff * 2 ** (attempts - 1), self.max_backoff)

    # ------------------------------------------------------------------ popping
    def pop(self) -> QueuedPod | None:
        """The next pod to schedule (after flushing expired backoffs), or None when activeQ is empty."""
        self.flush()
        while self._active:
            item = heapq.heappop(self._active)
            qp = item.qp
            if self._where.get(qp.pod.uid) != "active" or self._known.get(qp.pod.uid) is not qp:
                continue  # deleted while queued (or deleted and added again: a stale entry)
            qp.attempts += 1
            self._where[qp.pod.uid] = "inflight"
            self.scheduling_cycle += 1
            qp.cycle = self.scheduling_cycle
            return qp
        return None

    def done(self, qp: QueuedPod) -> None:
        """The pod was scheduled (or given up on): forget it."""
        self._where.pop(qp.pod.uid, None)
        self._known.pop(qp.pod.uid, None)

    def reclaim(self, qp: QueuedPod) -> None:
        """Take back a pod handed out earlier (parked at Permit) as in flight again."""
        self._known[qp.pod.uid] = qp
        self._where[qp.pod.uid] = "inflight"

    def add_unschedulable(self, qp: QueuedPod, plugins: set[str] | None = None, message: str = "") -> None:
        """A pod that failed its cycle: to backoffQ if a move request came during its cycle, else parked."""
        if self._where.get(qp.pod.uid) != "inflight":
            return  # deleted meanwhile
        now = self.clock()
        qp.unschedulable_plugins = set(plugins or ())
        qp.last_failure = message
        qp.timestamp = now
        qp.backoff_expiry = now + self.backoff_duration(qp.attempts)
        if self._move_request_cycle >= qp.cycle:
            self._push_backoff(qp)
        else:
            qp.unschedulable_since = now
            self.unschedulable[qp.pod.uid] = qp
            self._where[qp.pod.uid] = "unschedulable"

    def requeue(self, qp: QueuedPod) -> None:
        """Put an in-flight pod straight back (an error, not a fit failure) behind its backoff."""
        if self._where.get(qp.pod.uid) != "inflight":
            return
        qp.backoff_expiry = self.clock() + self.backoff_duration(qp.attempts)
        self._push_backoff(qp)

    # ------------------------------------------------------------------ events
    def delete(self, pod: Pod) -> None:
        self._where.pop(pod.uid, None)
        self._known.pop(pod.uid, None)
        self.unschedulable.pop(pod.uid, None)

    def move_all_to_active_or_backoff(self, event: str = "ClusterChanged", exclude: str | None = None) -> int:
        """A cluster event may make parked pods schedulable: move them out of unschedulablePods.

        ``exclude`` is a pod uid left parked (kube skips the pod whose rejection caused the event).
        """
        self._move_request_cycle = self.scheduling_cycle
        moved = 0
        now = self.clock()
        for uid, qp in list(self.unschedulable.items()):
            if uid == exclude:
                continue
            del self.unschedulable[uid]
            moved += 1
            if qp.backoff_expiry > now:
                self._push_backoff(qp)
            else:
                self._push_active(qp)
        return moved

    def activate(self, uids: list[str]) -> int:
        """Move these pods from backoffQ or unschedulablePods to activeQ now (kube's PodsToActivate)."""
        moved = 0
        for uid in uids:
            where = self._where.get(uid)
            if where not in ("backoff", "unschedulable"):
                continue
            qp = self._known[uid]
            self.unschedulable.pop(uid, None)
            self._push_active(qp)  # a stale backoff heap entry is skipped when it surfaces
            moved += 1
        return moved

    def flush(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qp = heapq.heappop(self._backoff)
            if self._where.get(qp.pod.uid) == "backoff" and self._known.get(qp.pod.uid) is qp:
                self._push_active(qp)
        # kube flushUnschedulablePodsLeftover: strictly longer than podMaxInUnschedulablePodsDuration.
        for uid, qp in list(self.unschedulable.items()):
            if now - qp.unschedulable_since > self.max_unschedulable:
                del self.unschedulable[uid]
                if qp.backoff_expiry > now:
                    self._push_backoff(qp)
                else:
                    self._push_active(qp)

    # ------------------------------------------------------------------ inspection
    def next_backoff_expiry(self) -> float | None:
        live = [e for e, _, qp in self._backoff if self._where.get(qp.pod.uid) == "backoff"]
        return min(live) if live else None

    def pending(self) -> dict[str, int]:
        counts = {"active": 0, "backoff": 0, "unschedulable": 0}
        for where in self._where.values():
            if where in counts:
                counts[where] += 1
        return counts

    def __len__(self) -> int:
        return sum(1 for w in self._where.values() if w != "inflight")

    def pods(self) -> Iterator[QueuedPod]:
        for uid, where in self._where.items():
            if where != "inflight":
                yield self._known[uid]
