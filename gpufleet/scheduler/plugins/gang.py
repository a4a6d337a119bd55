"""Coscheduling (gang scheduling): the pods of a PodGroup bind all together, or none of them does.

Rules, after kubernetes-sigs/scheduler-plugins pkg/coscheduling (KEP-2 "Lightweight coscheduling based
on back-to-back queue sorting") and Volcano's gang plugin (volcano-sh/volcano pkg/scheduler/plugins/gang):

* QueueSort: higher priority first; then the group's time (when the scheduler first saw a member;
  a pod without a group: its own queue timestamp); then the group key. Members of one group therefore
  leave the queue back to back, and a whole group is ordered against other work.
* PreFilter: a member is rejected when fewer than ``minMember`` pods of its group exist ("cannot find
  enough sibling pods"), while its group is denied after a failure (coscheduling's lastDeniedPG, 3 s
  here too, argument ``deniedSeconds``), and when the group's remaining demand cannot fit the free
  resources (coscheduling's CheckClusterResource): for every pod shape still needed, the copies each node
  could hold (pod slots, CPU, memory, GPUs) are summed over the nodes with numpy and must reach the
  number of members of that shape still needed. It is a necessary condition, checked before any member
  takes anything.
* Permit: when ``minMember`` pods of the group are placed (assumed or bound), every waiting sibling is
  allowed and binds, then this pod; otherwise the pod waits up to ``scheduleTimeoutSeconds`` and its
  unplaced siblings are activated (kube's PodsToActivate) so that they are tried next.
* Unreserve: a member of an incomplete group that loses its place (Permit timeout, deletion, a failed
  bind, a rejection) rejects every waiting sibling and denies the group: no partial gang is bound.
* PostFilter: a pod that fits nowhere first checks whether releasing the waiting pods of *other*
  incomplete gangs would let it fit (the same filters, run with those pods taken out); if so, those
  gangs are rejected, so a gang that cannot complete never sits on resources another job could use
  (the coscheduling deadlock: two half-placed gangs waiting for each other until their timeouts). Else,
  a member of an incomplete gang rejects its waiting siblings and denies its group.

A pod that names a group that is not registered (``Scheduler.add_pod_group``) is unschedulable until the
PodGroup arrives: binding it alone could be a partial gang.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ...cluster import Pod
from ..framework import Code, CycleState, Plugin, PostFilterResult, PreFilterResult, Status

DENIED_KEY = "gang.denied"  # handle.shared: group key -> virtual time until which the group is denied
DEFAULT_DENIED_SECONDS = 3.0


def group_key(pod: Pod) -> str | None:
    """``namespace/group`` of a pod that belongs to a PodGroup, else None."""
    return f"{pod.namespace}/{pod.pod_group}" if pod.pod_group else None


def pod_shape(pod: Pod) -> tuple:
    return (pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli if pod.num_gpu else 0,
            tuple(sorted(pod.extended.items())))


def copies_that_fit(cluster, pod: Pod) -> int:
    """How many copies of ``pod`` the free resources could hold, summed over schedulable nodes (numpy)."""
    copies = np.maximum(cluster.pods_capacity - cluster.pods_count, 0)
    if pod.cpu_milli:
        copies = np.minimum(copies, cluster.cpu_free_milli // pod.cpu_milli)
    if pod.memory_mib:
        copies = np.minimum(copies, cluster.memory_free_mib // pod.memory_mib)
    if pod.num_gpu:
        per_gpu = cluster.gpu_free_milli // max(pod.gpu_milli, 1)
        copies = np.minimum(copies, per_gpu.sum(axis=1) // pod.num_gpu)
    for name, amount in pod.extended.items():
        col = cluster.scalar_index.get(name)
        if amount and col is None:
            return 0
        if amount:
            copies = np.minimum(copies, cluster.scalar_free[:, col] // amount)
    copies = np.where(cluster.unschedulable, 0, copies)
    return int(copies.sum())


class Coscheduling(Plugin):
    name = "Coscheduling"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        denied = self.args.get("deniedSeconds", DEFAULT_DENIED_SECONDS)
        if isinstance(denied, bool) or not isinstance(denied, (int, float)) or denied < 0:
            raise ValueError(f"deniedSeconds: expected a number of seconds >= 0, got {denied!r}")
        self.denied_seconds = float(denied)

    # ------------------------------------------------------------------ bookkeeping
    def group(self, pod: Pod):
        key = group_key(pod)
        return None if key is None else self.handle.pod_groups.get(key)

    def members(self, key: str) -> dict[str, Pod]:
        return self.handle.group_members.get(key, {})

    def placed(self, key: str) -> int:
        placements = self.handle.cluster.placements
        return sum(1 for uid in self.members(key) if uid in placements)

    def bound(self, key: str, exclude: str | None = None) -> int:
        """Members placed and no longer waiting at Permit (``exclude``: a pod that is losing its place)."""
        placements, waiting = self.handle.cluster.placements, self.handle.waiting_pods
        return sum(1 for uid in self.members(key) if uid in placements and uid not in waiting and uid != exclude)

    def _denied(self) -> dict[str, float]:
        return self.handle.shared.setdefault(DENIED_KEY, {})

    def deny(self, key: str) -> None:
        if self.denied_seconds > 0:
            self._denied()[key] = self.handle.clock() + self.denied_seconds

    def needed(self, pod: Pod) -> list[Pod]:
        """The unplaced members (this pod first) still needed for the group to reach minMember."""
        key = group_key(pod)
        group = self.handle.pod_groups.get(key) if key else None
        if group is None:
            return [pod]
        missing = group.min_member - self.placed(key)
        if missing <= 0:
            return [pod]
        placements = self.handle.cluster.placements
        others = [p for uid, p in self.members(key).items() if uid not in placements and uid != pod.uid]
        return ([pod] + others)[:missing] if pod.uid not in placements else others[:missing]

    def demand_fits(self, pods: list[Pod]) -> bool:
        cluster = self.handle.cluster
        by_shape = Counter(pod_shape(p) for p in pods)
        first = {}
        for p in pods:
            first.setdefault(pod_shape(p), p)
        return all(copies_that_fit(cluster, first[shape]) >= count for shape, count in by_shape.items())

    # ------------------------------------------------------------------ queue sort
    def _sort_key(self, qp) -> tuple[float, str]:
        key = group_key(qp.pod)
        if key is None:
            return qp.timestamp, ""
        seen = self.handle.group_first_seen.get(key, qp.initial_attempt_timestamp) if self.handle else \
            qp.initial_attempt_timestamp
        return seen, key

    def less(self, a, b) -> bool:
        if a.pod.priority != b.pod.priority:
            return a.pod.priority > b.pod.priority
        return self._sort_key(a) < self._sort_key(b)

    # ------------------------------------------------------------------ pre filter
    def pre_filter(self, state, pod, cluster):
        key = group_key(pod)
        if key is None:
            return None
        group = self.handle.pod_groups.get(key)
        if group is None:
            return Status.unschedulable(f"pod group {key} not found")
        members = len(self.members(key))
        if members < group.min_member:
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                          [f"pre-filter pod {pod.name} cannot find enough sibling pods, current pods number: "
                           f"{members}, minMember of group: {group.min_member}"])
        if self.placed(key) >= group.min_member:
            return None  # the gang is complete: a further member schedules like any pod
        until = self._denied().get(key)
        now = self.handle.clock()
        if until is not None and now < until:
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                          [f"pod group {key} failed to schedule recently; it is retried in "
                           f"{until - now:g}s"])
        if not self.demand_fits(self.needed(pod)):
            return Status.unschedulable(f"pod group {key}: the free resources cannot hold the "
                                        f"{group.min_member - self.placed(key)} pods still needed")
        return PreFilterResult()

    # ------------------------------------------------------------------ reserve / permit
    def reserve(self, state, pod, cluster, node_index):
        return None

    def unreserve(self, state, pod, cluster, node_index):
        key = group_key(pod)
        group = self.handle.pod_groups.get(key) if key else None
        if group is None:
            return
        if self.bound(key, exclude=pod.uid) >= group.min_member:
            return  # the gang is already running; this was a further member
        self.deny(key)
        self.reject_waiting(key, except_uid=pod.uid,
                            message=f"pod group {key} rejected: member {pod.name} lost its place")

    def reject_waiting(self, key: str, except_uid: str | None, message: str) -> int:
        waiting = [uid for uid in self.members(key) if uid in self.handle.waiting_pods and uid != except_uid]
        for uid in waiting:
            self.handle.reject_waiting(uid, message)
        return len(waiting)

    def permit(self, state, pod, cluster, node_index):
        key = group_key(pod)
        group = self.handle.pod_groups.get(key) if key else None
        if group is None:
            return None
        if self.placed(key) >= group.min_member:
            for uid in [u for u in self.members(key) if u in self.handle.waiting_pods and u != pod.uid]:
                self.handle.allow_waiting(uid, self.name)
            return None
        placements = cluster.placements
        self.handle.activate([p for uid, p in self.members(key).items() if uid not in placements])
        return Status.wait(self.name), group.schedule_timeout_seconds

    # ------------------------------------------------------------------ post filter
    def post_filter(self, state, pod, cluster, diagnosis):
        if self.release_blocking_gangs(pod):
            return PostFilterResult(status=Status(), message="released the waiting pods of incomplete gangs")
        key = group_key(pod)
        group = self.handle.pod_groups.get(key) if key else None
        if group is not None and self.placed(key) < group.min_member:
            rejected = self.reject_waiting(key, except_uid=pod.uid,
                                           message=f"pod group {key} rejected: member {pod.name} does not fit")
            if rejected or not diagnosis.unresolvable:
                self.deny(key)
        return None

    def could_place(self, pod: Pod) -> bool:
        """Would ``pod`` (and, for a gang member, its gang's remaining demand) fit the cluster as it is?"""
        fw = self.handle.frameworks.get(pod.scheduler_name)
        if fw is None:
            return False
        if group_key(pod) and not self.demand_fits(self.needed(pod)):
            return False
        nodes = np.arange(self.handle.cluster.num_nodes, dtype=np.int64)
        return len(fw.run_filter(CycleState(), pod, nodes)) > 0

    def release_blocking_gangs(self, pod: Pod) -> bool:
        """Reject the waiting pods of other incomplete gangs when without them ``pod`` would fit."""
        cluster = self.handle.cluster
        own = group_key(pod)
        held: dict[str, list[Pod]] = {}
        for uid, waiting in self.handle.waiting_pods.items():
            key = group_key(waiting.pod)
            group = self.handle.pod_groups.get(key) if key else None
            if key is None or key == own or group is None or self.bound(key) >= group.min_member:
                continue
            held.setdefault(key, []).append(waiting.pod)
        if not held:
            return False
        pods = [p for ps in held.values() for p in ps]
        with released(cluster, pods):
            fits = self.could_place(pod)
        if not fits:
            return False
        for key in held:
            self.deny(key)
            self.reject_waiting(key, except_uid=None,
                                message=f"pod group {key} rejected: incomplete, and {pod.key} needs its resources")
        return True


class released:
    """Context manager: take pods out of the ClusterState, put them back exactly (same node and GPUs)."""

    def __init__(self, cluster, pods: list[Pod]):
        self.cluster = cluster
        self.pods = [p for p in pods if p.uid in cluster.placements]
        self.placements = []

    def __enter__(self):
        for p in self.pods:
            self.placements.append((p, self.cluster.release(p.uid)))
        return self

    def restore(self) -> None:
        for p, placement in reversed(self.placements):
            self.cluster.assign(p, self.cluster.node_index[placement.node_name], placement.gpu_indices)
        self.placements = []

    def __exit__(self, *exc):
        self.restore()
        return False


__all__ = ["Coscheduling", "group_key", "copies_that_fit", "released", "with_gang"]


def with_gang(profile, preemption: bool = True):
    """A copy of a ProfileConfig with Coscheduling at queueSort, preFilter, reserve, permit and postFilter,
    and PriorityPreemption after it at postFilter (unless ``preemption`` is False).

    The same as a KubeSchedulerConfiguration with ``queueSort: {disabled: [{name: "*"}], enabled:
    [{name: Coscheduling}]}``, ``multiPoint: {enabled: [{name: Coscheduling}]}`` and ``postFilter:
    {enabled: [{name: PriorityPreemption}]}``.
    """
    import copy

    cfg = copy.deepcopy(profile)
    cfg.plugins["queueSort"] = [("Coscheduling", 1)]
    for point in ("preFilter", "reserve", "permit"):
        cfg.plugins[point] = [p for p in cfg.plugins.get(point, []) if p[0] != "Coscheduling"] + \
            [("Coscheduling", 1)]
    post = [p for p in cfg.plugins.get("postFilter", []) if p[0] not in ("Coscheduling", "PriorityPreemption")]
    cfg.plugins["postFilter"] = [("Coscheduling", 1)] + post + ([("PriorityPreemption", 1)] if preemption else [])
    cfg.source = f"{cfg.source} + gang scheduling"
    return cfg
