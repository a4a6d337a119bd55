"""PriorityPreemption (PostFilter): evict lower-priority work so a pod, or a whole gang, can be placed.

Rules, after kube-scheduler's DefaultPreemption (pkg/scheduler/framework/plugins/defaultpreemption and
framework/preemption: victims have a lower priority than the preemptor; pick the fewest and lowest-priority
victims, then "reprieve" every victim that is not needed, highest priority first) and Volcano's preempt
action with its gang plugin (a gang job is a victim only as a whole, volcano-sh/volcano
pkg/scheduler/plugins/gang PreemptableFn):

* an eviction unit is a pod without a group, or every placed pod of a PodGroup: part of a gang is never
  evicted alone;
* a unit is a candidate when every pod of it has a lower priority than the preemptor;
* the preemptor is the pod, or for a member of an incomplete gang all the members still needed to reach
  minMember (they must all fit, or nothing is evicted);
* candidates are ordered lowest priority first, then fewest pods; the shortest prefix whose eviction
  lets the preemptor fit is found by bisection (evicting more never hurts), then each chosen unit is
  reprieved if the preemptor still fits without evicting it (highest priority first);
* "fits" is a trial placement: each preemptor pod in turn runs the profile's Filter plugins over all
  nodes (vectorised) and is assumed on the first feasible node, then everything is put back exactly.

Nothing is evicted when the filters failed for a reason preemption cannot fix (an unresolvable status).
Evicted pods go to the backend through ``Scheduler.evict``; the preemptor is retried at once.
"""

from __future__ import annotations

import numpy as np

from ...cluster import Pod
from ..framework import CycleState, Plugin, PostFilterResult, Status
from .gang import DENIED_KEY, group_key, released


class PriorityPreemption(Plugin):
    name = "PriorityPreemption"

    def post_filter(self, state, pod, cluster, diagnosis):
        if diagnosis.unresolvable:
            return None
        handle = self.handle
        preemptors = self.preemptors(pod)
        units = self.candidate_units(pod)
        if not units:
            return None
        victims = self.select_victims(preemptors, units)
        if victims is None:
            return None
        evicted = 0
        for unit in victims:
            for victim in unit:
                if victim.uid in handle.waiting_pods:
                    handle.reject_waiting(victim.uid, f"preempted by {pod.key}")
                    evicted += 1
                elif victim.uid in cluster.placements:
                    handle.evict(victim, f"preempted by {pod.key} (priority {pod.priority})")
                    evicted += 1
        key = group_key(pod)
        if key:
            handle.shared.get(DENIED_KEY, {}).pop(key, None)
            handle.activate([p for p in preemptors if p.uid != pod.uid])
        return PostFilterResult(status=Status(), message=f"preempted {evicted} lower-priority pod(s) in "
                                                         f"{len(victims)} unit(s)")

    # ------------------------------------------------------------------ who must fit, who may go
    def preemptors(self, pod: Pod) -> list[Pod]:
        key = group_key(pod)
        group = self.handle.pod_groups.get(key) if key else None
        if group is None:
            return [pod]
        placements = self.handle.cluster.placements
        members = self.handle.group_members.get(key, {})
        missing = group.min_member - sum(1 for uid in members if uid in placements)
        others = [p for uid, p in members.items() if uid not in placements and uid != pod.uid]
        return [pod] + others[:max(missing - 1, 0)]

    def candidate_units(self, pod: Pod) -> list[list[Pod]]:
        cluster = self.handle.cluster
        own = group_key(pod)
        units: dict[str, list[Pod]] = {}
        for uid, placed in cluster.pods.items():
            key = group_key(placed)
            units.setdefault(f"group:{key}" if key else f"pod:{uid}", []).append(placed)
        out = []
        for unit_key, pods in units.items():
            if own and unit_key == f"group:{own}":
                continue
            if max(p.priority for p in pods) < pod.priority:
                out.append(pods)
        out.sort(key=lambda u: (max(p.priority for p in u), len(u), u[0].uid))
        return out

    # ------------------------------------------------------------------ victim selection
    def fits(self, preemptors: list[Pod]) -> bool:
        cluster = self.handle.cluster
        fw = self.handle.frameworks.get(preemptors[0].scheduler_name)
        if fw is None:
            return False
        nodes = np.arange(cluster.num_nodes, dtype=np.int64)
        trial: list[Pod] = []
        try:
            for p in preemptors:
                feasible = fw.run_filter(CycleState(), p, nodes)
                if len(feasible) == 0:
                    return False
                cluster.assign(p, int(feasible[0]))
                trial.append(p)
            return True
        finally:
            for p in trial:
                cluster.release(p.uid)

    def select_victims(self, preemptors: list[Pod], units: list[list[Pod]]) -> list[list[Pod]] | None:
        cluster = self.handle.cluster
        with released(cluster, [p for u in units for p in u]):
            if not self.fits(preemptors):
                return None  # even evicting every candidate would not help
        lo, hi = 1, len(units)  # the shortest prefix that fits lies in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            with released(cluster, [p for u in units[:mid] for p in u]):
                ok = self.fits(preemptors)
            if ok:
                hi = mid
            else:
                lo = mid + 1
        chosen = list(units[:lo])
        for unit in sorted(chosen, key=lambda u: -max(p.priority for p in u)):
            rest = [u for u in chosen if u is not unit]
            with released(cluster, [p for u in rest for p in u]):
                if self.fits(preemptors):
                    chosen = rest
        return chosen
