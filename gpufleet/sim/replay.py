"""Replay mode: pods arrive at their creation_time and leave after their run time; pending pods retry.

Rules: each pod enters the Scheduler's queue at ``creation_time`` (virtual seconds). The scheduler runs
on the event loop's clock, so its queue behaves as kube-scheduler's does in virtual time: a pod that
fits nowhere is parked in unschedulablePods (or backoffQ), a pod deletion calls ``Scheduler.pod_deleted``
which frees its resources and moves parked pods back, backoffs expire and parked pods are flushed after
podMaxInUnschedulablePodsDuration. A scheduling pass (pop and schedule until activeQ is empty) runs after
all arrivals and departures of one instant.

A bound pod runs for ``deletion_time - creation_time`` seconds from its bind time (so without waiting it
leaves exactly at deletion_time; a pod that waited leaves later, its work is not cut short). Pods without
a deletion_time never leave. Queueing delay = bind time - creation time. Pods still pending when no arrival
or departure is left are reported as never scheduled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..cluster import ClusterState, Node, Pod
from ..scheduler import ProfileConfig, Scheduler
from ..scheduler.plugins.mig_placement import mig_slice_report
from .events import EventLoop
from .metrics import allocation_ratio, delay_percentiles
from .traces import fresh_copy

# Same-instant order: departures free resources before arrivals join, then one scheduling pass.
DEPARTURE, ARRIVAL, SCHEDULING_PASS = 0, 1, 2
UNSCHEDULABLE_FLUSH_DELAY = 1.0  # seconds


@dataclass
class ReplayResult:
    policy: str
    seed: int
    pods_arrived: int
    pods_scheduled: int
    pods_never_scheduled: int
    queueing_delay: dict[str, float | None]  # p50/p90/p99 seconds over bound pods
    mean_queueing_delay: float | None
    mean_allocation_ratio: float  # %, time-weighted from the first arrival to the last change
    peak_allocation_ratio: float
    allocation_times: list[float]  # virtual seconds ...
    allocation_series: list[float]  # ... and the allocation ratio (%) from then on
    unschedulable_reasons: dict[str, int] = field(default_factory=dict)  # failed attempts, per reason
    scheduling_attempts: int = 0
    seconds: float = 0.0
    # MIG slices (scheduler.plugins.mig_placement.mig_slice_report) when the most were stranded; empty
    # for a cluster without MIG nodes.
    mig_slices: dict[str, int] = field(default_factory=dict)


class Replay:
    """One replay run: the event loop, the cluster, the scheduler and what is measured."""

    def __init__(self, nodes: Sequence[Node], pods: Sequence[Pod], profiles: list[ProfileConfig], seed: int,
                 progress: Callable[[int], None] | None = None):
        self.loop = EventLoop()
        self.cluster = ClusterState(nodes)
        self.scheduler = Scheduler(self.cluster, profiles, seed=seed, clock=self.loop.clock)
        self.scheduler.on_bound.append(self._bound)
        self.pods = [fresh_copy(p) for p in pods]
        self.progress = progress
        self.bind_time: dict[str, float] = {}
        self.reasons: dict[str, int] = {}
        self.world_events = 0  # arrivals and departures still in the loop
        self.last_world_time = 0.0
        self.pass_times: set[float] = set()
        self.series_times: list[float] = []
        self.series_allocation: list[float] = []
        self.has_mig = any(k.startswith("gpufleet.io/mig.") for n in nodes for k in n.labels)
        self.mig_slices: dict[str, int] = {}
        for pod in self.pods:
            self._add_world_event(pod.creation_time, lambda pod=pod: self._arrive(pod), ARRIVAL)

    def _add_world_event(self, when: float, action: Callable[[], None], priority: int) -> None:
        self.world_events += 1

        def run() -> None:
            self.world_events -= 1
            self.last_world_time = self.loop.now
            action()
        self.loop.at(when, run, priority)

    def _request_pass(self, when: float) -> None:
        if when not in self.pass_times:
            self.pass_times.add(when)
            self.loop.at(when, lambda: self._scheduling_pass(when), SCHEDULING_PASS)

    def _arrive(self, pod: Pod) -> None:
        self.scheduler.add(pod)
        self._request_pass(self.loop.now)

    def _depart(self, pod: Pod) -> None:
        self.scheduler.pod_deleted(pod)
        self._record_allocation()
        self._request_pass(self.loop.now)
        if self.progress:
            self.progress(1)

    def _bound(self, pod: Pod, node_name: str) -> None:
        now = self.loop.now
        self.bind_time[pod.uid] = now
        if pod.deletion_time is not None:
            run_time = pod.deletion_time - pod.creation_time
            self._add_world_event(now + run_time, lambda: self._depart(pod), DEPARTURE)
        elif self.progress:
            self.progress(1)

    def _scheduling_pass(self, when: float) -> None:
        self.pass_times.discard(when)
        while (outcome := self.scheduler.schedule_one()) is not None:
            if outcome.status == "unschedulable" and outcome.diagnosis is not None:
                for reason in outcome.diagnosis.reason_counts:
                    self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self._record_allocation()
        # Wake up for the next backoff expiry or unschedulable flush (a second after the pod has been
        # parked longer than podMaxInUnschedulablePodsDuration), while arrivals or departures remain.
        queue = self.scheduler.queue
        wake = [t for t in [queue.next_backoff_expiry()] if t is not None]
        if queue.unschedulable:
            wake.append(min(qp.unschedulable_since for qp in queue.unschedulable.values())
                        + queue.max_unschedulable + UNSCHEDULABLE_FLUSH_DELAY)
        if wake and self.world_events and min(wake) > self.loop.now:
            self._request_pass(min(wake))

    def _record_allocation(self) -> None:
        if self.has_mig:
            report = mig_slice_report(self.cluster)
            if not self.mig_slices or report["stranded_slices"] > self.mig_slices["stranded_slices"]:
                self.mig_slices = report
        ratio = 100 * allocation_ratio(self.cluster)
        if self.series_allocation and self.series_times[-1] == self.loop.now:
            self.series_allocation[-1] = ratio
        elif not self.series_allocation or self.series_allocation[-1] != ratio:
            self.series_times.append(self.loop.now)
            self.series_allocation.append(ratio)

    def run(self, policy: str = "", seed: int = 0) -> ReplayResult:
        started = time.perf_counter()
        self.loop.run()
        delays = [self.bind_time[p.uid] - p.creation_time for p in self.pods if p.uid in self.bind_time]
        never = len(self.pods) - len(delays)
        if self.progress and never:
            self.progress(never)
        end = max(self.last_world_time, self.series_times[-1] if self.series_times else 0.0)
        times = np.array(self.series_times + [end])
        values = np.array(self.series_allocation)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        mean_allocation = float((values * np.diff(times)).sum() / span) if span > 0 else \
            (float(values[-1]) if len(values) else 0.0)
        return ReplayResult(policy, seed, len(self.pods), len(delays), never, delay_percentiles(delays),
                            float(np.mean(delays)) if delays else None, mean_allocation,
                            float(values.max()) if len(values) else 0.0, self.series_times,
                            self.series_allocation, self.reasons, self.scheduler.stats.attempts,
                            time.perf_counter() - started, self.mig_slices)


def run_replay(nodes: Sequence[Node], pods: Sequence[Pod], profiles: list[ProfileConfig], seed: int,
               policy: str = "", progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Replay ``pods`` on a fresh cluster of ``nodes``; ``progress`` gets 1 per pod that is done."""
    return Replay(nodes, pods, profiles, seed, progress).run(policy, seed)
