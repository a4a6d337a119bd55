"""The scheduler: a queue, one framework per profile, and the scheduling cycle shared by every backend.

One cycle (kube-scheduler pkg/scheduler/schedule_one.go): pop a pod; pick the profile by its
schedulerName; filter and score; on failure run PostFilter, record FailedScheduling and park the pod; on
success Reserve (device choice), assume into the ClusterState, Permit (possibly wait), then PreBind, Bind
and PostBind. Backends (the simulator, the Kubernetes client) feed pods and cluster events in and supply
the bind call; they never see plugins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..cluster import ClusterState, Pod, PodGroup, SpecError
from .config import ProfileConfig, build_profile
from .framework import Code, CycleState, Diagnosis, FitError, Framework, Handle, Status
from .queue import QueuedPod, SchedulingQueue


@dataclass
class Outcome:
    """What happened to one popped pod."""

    pod: Pod
    status: str  # "scheduled" | "unschedulable" | "waiting" | "error"
    node_name: str | None = None
    gpu_indices: tuple[int, ...] = ()
    message: str = ""
    diagnosis: Diagnosis | None = None
    evaluated_nodes: int = 0
    feasible_nodes: int = 0


@dataclass
class SchedulerStats:
    attempts: int = 0
    scheduled: int = 0
    unschedulable: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class Scheduler:
    def __init__(self, cluster: ClusterState, profiles: list[ProfileConfig], *,
                 seed: int = 0, clock: Callable[[], float] | None = None,
                 binder: Callable[[Pod, str], None] | None = None):
        if not profiles:
            raise SpecError("no scheduler profile given")
        self.clock = clock or time.monotonic
        self.cluster = cluster
        self.handle = Handle(cluster, np.random.default_rng(seed), binder, self.clock)
        self.frameworks: dict[str, Framework] = {}
        for cfg in profiles:
            fw = Framework(build_profile(cfg, self.handle), self.handle)
            self.frameworks[fw.name] = fw
        self.handle.frameworks = self.frameworks
        first = next(iter(self.frameworks.values()))
        self.queue = SchedulingQueue(first.less, self.clock)
        self.stats = SchedulerStats()
        self.on_bound: list[Callable[[Pod, str], None]] = []
        # Called when a plugin (preemption) evicts a bound pod, before the scheduler forgets it; the
        # backend deletes the pod (kube: the API delete; the simulator: the pod's job is stopped).
        self.on_evicted: list[Callable[[Pod, str], None]] = []
        self._waiting_qp: dict[str, QueuedPod] = {}  # pods parked at Permit, by uid
        self.handle.allow_waiting = self.allow
        self.handle.reject_waiting = self.reject
        self.handle.activate = self.activate
        self.handle.evict = self.evict

    # ------------------------------------------------------------------ feeding
    def framework_for(self, pod: Pod) -> Framework | None:
        return self.frameworks.get(pod.scheduler_name)

    def responsible_for(self, pod: Pod) -> bool:
        return pod.scheduler_name in self.frameworks

    def add(self, pod: Pod) -> None:
        self.handle.add_pod(pod)
        self.queue.add(pod)

    def add_pod_group(self, group: PodGroup) -> None:
        """Register a PodGroup (gang): its pods bind only once ``min_member`` of them have a place."""
        self.handle.pod_groups[group.key] = group
        self.queue.move_all_to_active_or_backoff("PodGroupAdd")

    def remove_pod_group(self, group: PodGroup) -> None:
        self.handle.pod_groups.pop(group.key, None)

    def activate(self, pods: list[Pod]) -> None:
        """kube's PodsToActivate: move these pods from backoff or unschedulable to activeQ now."""
        self.queue.activate([p.uid for p in pods])

    def evict(self, pod: Pod, message: str) -> None:
        """A plugin (preemption) evicts a bound or waiting pod: tell the backend, then forget the pod."""
        self.handle.record_event("Preempted", pod, message)
        for cb in self.on_evicted:
            cb(pod, message)
        if pod.uid in self.handle.pods:
            self.pod_deleted(pod)

    def pod_deleted(self, pod: Pod) -> None:
        """A pod is gone: forget it in the queue, give its resources back, and retry parked pods."""
        self.handle.remove_pod(pod)
        self.queue.delete(pod)
        waiting = self.handle.waiting_pods.pop(pod.uid, None)
        if waiting is not None:
            waiting.framework.run_unreserve(waiting.state, pod, waiting.node_index)
        if pod.uid in self.cluster.placements:
            self.cluster.release(pod.uid)
            self.queue.move_all_to_active_or_backoff("PodDeleted")

    def cluster_changed(self, event: str = "NodeChanged") -> None:
        self.queue.move_all_to_active_or_backoff(event)

    # ------------------------------------------------------------------ the cycle
    def schedule_one(self) -> Outcome | None:
        """Schedule the next pod of the queue; None when nothing is ready."""
        self.expire_waiting()
        qp = self.queue.pop()
        if qp is None:
            return None
        return self.schedule_queued(qp)

    def schedule_queued(self, qp: QueuedPod) -> Outcome:
        pod = qp.pod
        fw = self.framework_for(pod)
        self.stats.attempts += 1
        if fw is None:
            self.queue.done(qp)
            return Outcome(pod, "error", message=f"no profile for schedulerName {pod.scheduler_name!r}")
        state = CycleState()
        try:
            result = fw.schedule_pod(state, pod)
        except FitError as err:
            post = fw.run_post_filter(state, pod, err.diagnosis)
            outcome = self._unschedulable(qp, err.diagnosis)
            if post is not None and post.status.ok:
                # PostFilter made room (preemption, a released gang): retry at once, ahead of the pods
                # that the freed resources moved back (kube nominates the node for the same reason).
                self.queue.activate([pod.uid])
            return outcome
        node = result.node_index
        status = fw.run_reserve(state, pod, node)
        if status.ok:
            status = fw.assume(state, pod, node)
            if not status.ok:
                fw.run_unreserve(state, pod, node)
        if not status.ok:
            return self._failed(qp, status, result.evaluated_nodes, result.feasible_nodes)
        status = fw.run_permit(state, pod, node)
        if status.code == Code.WAIT:
            self.queue.done(qp)
            self._waiting_qp[pod.uid] = qp
            return Outcome(pod, "waiting", result.node_name, state.get("gpu_indices", ()),
                           evaluated_nodes=result.evaluated_nodes, feasible_nodes=result.feasible_nodes)
        if not status.ok:
            fw.run_unreserve(state, pod, node)
            fw.forget(pod)
            return self._failed(qp, status, result.evaluated_nodes, result.feasible_nodes)
        return self._bind(qp, fw, state, node, result.evaluated_nodes, result.feasible_nodes)

    def _bind(self, qp: QueuedPod, fw: Framework, state: CycleState, node: int, evaluated: int = 0,
              feasible: int = 0) -> Outcome:
        pod = qp.pod
        status = fw.run_bind(state, pod, node)
        if not status.ok:
            fw.run_unreserve(state, pod, node)
            fw.forget(pod)
            # kube handleBindingCycleError: the forgotten pod's resources are free again, so parked pods
            # are retried (AssignedPodDelete); the failed pod itself then goes to backoff.
            self.queue.move_all_to_active_or_backoff("AssignedPodDelete")
            return self._failed(qp, status, evaluated, feasible)
        self.queue.done(qp)
        self.stats.scheduled += 1
        name = self.cluster.nodes[node].name
        self.handle.record_event("Scheduled", pod, f"Successfully assigned {pod.key} to {name}")
        for cb in self.on_bound:
            cb(pod, name)
        return Outcome(pod, "scheduled", name, tuple(state.get("gpu_indices", ())), evaluated_nodes=evaluated,
                       feasible_nodes=feasible)

    def _unschedulable(self, qp: QueuedPod, diagnosis: Diagnosis) -> Outcome:
        message = diagnosis.message()
        self.stats.unschedulable += 1
        for reason, count in diagnosis.reason_counts.items():
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        self.handle.record_event("FailedScheduling", qp.pod, message)
        self.queue.add_unschedulable(qp, diagnosis.unschedulable_plugins, message)
        return Outcome(qp.pod, "unschedulable", message=message, diagnosis=diagnosis)

    def _failed(self, qp: QueuedPod, status: Status, evaluated: int, feasible: int) -> Outcome:
        message = f"{status.plugin}: {status.message}" if status.plugin else status.message
        self.handle.record_event("FailedScheduling", qp.pod, message)
        if status.code == Code.ERROR:
            self.stats.errors += 1
            self.queue.requeue(qp)
            kind = "error"
        else:
            self.stats.unschedulable += 1
            self.queue.add_unschedulable(qp, {status.plugin}, message)
            kind = "unschedulable"
        return Outcome(qp.pod, kind, message=message, evaluated_nodes=evaluated, feasible_nodes=feasible)

    # ------------------------------------------------------------------ permit waiting
    def allow(self, pod_uid: str, plugin: str) -> Outcome | None:
        """A Permit plugin allows a waiting pod; when no plugin is pending any more the pod binds."""
        waiting = self.handle.waiting_pods.get(pod_uid)
        if waiting is None:
            return None
        waiting.pending.discard(plugin)
        if waiting.pending:
            return None
        del self.handle.waiting_pods[pod_uid]
        qp = self._waiting_qp.pop(pod_uid)
        self.queue.reclaim(qp)
        return self._bind(qp, waiting.framework, waiting.state, waiting.node_index)

    def reject(self, pod_uid: str, message: str) -> Outcome | None:
        """Reject a waiting pod: unreserve, give its resources back and park it."""
        waiting = self.handle.waiting_pods.pop(pod_uid, None)
        if waiting is None:
            return None
        waiting.framework.run_unreserve(waiting.state, waiting.pod, waiting.node_index)
        waiting.framework.forget(waiting.pod)
        qp = self._waiting_qp.pop(pod_uid)
        self.queue.reclaim(qp)
        # kube handleBindingCycleError (schedule_one.go): the rejected pod itself is parked as
        # unschedulable first; the move its freed resources trigger is deferred and skips it.
        outcome = self._failed(qp, Status.unschedulable(message, plugin="permit"), 0, 0)
        self.queue.move_all_to_active_or_backoff("PodRejected", exclude=pod_uid)
        return outcome

    def expire_waiting(self) -> list[Outcome]:
        now = self.clock()
        out = []
        for uid, waiting in list(self.handle.waiting_pods.items()):
            if waiting.deadline <= now:
                outcome = self.reject(uid, "rejected due to timeout after waiting at permit")
                if outcome:
                    out.append(outcome)
        return out

    # ------------------------------------------------------------------ convenience
    def run_until_idle(self, max_cycles: int | None = None) -> list[Outcome]:
        """Schedule until activeQ is empty (parked and backing-off pods stay parked)."""
        outcomes = []
        while max_cycles is None or len(outcomes) < max_cycles:
            outcome = self.schedule_one()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes
