"""Fill mode: the FGD paper's experiment. Pods arrive one at a time and never leave.

Rule (FGD paper Sec. 6.1 and the openb README): the pods are shuffled with a seed, then pruned or
re-sampled until their total GPU request is ``demand_ratio`` (1.3) x the cluster's GPU capacity
(:func:`tune_to_demand`); they are scheduled one at a time and a pod that fits nowhere is skipped. After
each pod the arrived GPU request (as % of capacity) is compared with the next whole percent 0..130; at
each percent reached, the GPU allocation ratio and the fragmentation (see metrics) are recorded.

The tuning is gpufleet's own reading of the paper, not a copy of the FGD simulator's code:
shuffle with ``numpy.random.default_rng(seed).permutation``; if the shuffled trace asks for at least the
target, keep the shortest prefix whose cumulative GPU request reaches it (pods after it are pruned; CPU-only
pods inside the prefix stay); otherwise append pods drawn uniformly with replacement from the trace (same
generator) until the target is reached. Re-sampled pods are copies with their own names (``NAME~k``).

On a cluster with MIG nodes the run also reports stranded MIG compute slices (``mig_slice_report``): the
most seen at any curve point (``mig_slices``) and after the last pod (``final_mig_slices``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..cluster import MILLI_PER_GPU, ClusterState, GpufleetError, Node, Pod
from ..scheduler import ProfileConfig, Scheduler
from ..scheduler.plugins.mig_placement import mig_slice_report
from .metrics import TypicalPod, allocation_ratio, cluster_fragmentation
from .traces import fresh_copy

DEFAULT_DEMAND_RATIO = 1.3
CURVE_PERCENTS = np.arange(0, 131)  # arrived GPU request as % of capacity: 0, 1, ..., 130


def gpu_capacity_milli(nodes: Sequence[Node]) -> int:
    capacity = sum(n.gpu_count for n in nodes) * MILLI_PER_GPU
    if capacity == 0:
        raise GpufleetError("fill mode needs a cluster with GPUs (the cluster has none)")
    return capacity


def tune_to_demand(pods: Sequence[Pod], capacity_milli: int, seed: int,
                   demand_ratio: float = DEFAULT_DEMAND_RATIO) -> list[Pod]:
    """The shuffled pods, pruned or re-sampled until total GPU request >= demand_ratio x capacity."""
    request = np.array([p.gpu_request_milli for p in pods], dtype=np.int64)
    if not len(pods) or request.sum() == 0:
        raise GpufleetError("fill mode needs pods that ask for GPUs (the workload asks for none)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pods))
    target = demand_ratio * capacity_milli
    cumulative = np.cumsum(request[order])
    if cumulative[-1] >= target:
        return [fresh_copy(pods[i]) for i in order[: int(np.searchsorted(cumulative, target)) + 1]]
    tuned = [fresh_copy(pods[i]) for i in order]
    total = int(cumulative[-1])
    while total < target:
        i = int(rng.integers(len(pods)))
        tuned.append(fresh_copy(pods[i], f"{pods[i].name}~{len(tuned)}"))
        total += int(request[i])
    return tuned


@dataclass
class FillResult:
    """One fill run. Curves are indexed by arrived demand percent (CURVE_PERCENTS); NaN where not reached."""

    policy: str
    seed: int
    pods_arrived: int
    pods_scheduled: int
    pods_unschedulable: int
    allocation_ratio: list[float]  # %, allocated GPU milli / capacity
    fragmentation: list[float]  # % of GPU capacity that is fragment
    fragmentation_ratio: list[float]  # %, fragment / idle GPU milli
    unschedulable_reasons: dict[str, int] = field(default_factory=dict)  # pods failed, per filter reason
    final_allocation_ratio: float = 0.0
    seconds: float = 0.0
    # MIG slices (scheduler.plugins.mig_placement.mig_slice_report) at the curve point where the most were
    # stranded, as replay reports them; empty for a cluster without MIG nodes.
    mig_slices: dict[str, int] = field(default_factory=dict)
    final_mig_slices: dict[str, int] = field(default_factory=dict)  # the same after the last pod


def run_fill(nodes: Sequence[Node], arrivals: Sequence[Pod], profiles: list[ProfileConfig], seed: int,
             typical: Sequence[TypicalPod], policy: str = "",
             progress: Callable[[int], None] | None = None) -> FillResult:
    """Schedule ``arrivals`` (unscheduled pods, e.g. from tune_to_demand) in order onto a fresh cluster.

    ``seed`` seeds the scheduler (Random scores, ties); ``progress`` is called with the number of curve
    points (arrived-demand percents) just recorded.
    """
    started = time.perf_counter()
    capacity = gpu_capacity_milli(nodes)
    cluster = ClusterState(nodes)
    scheduler = Scheduler(cluster, profiles, seed=seed, clock=lambda: 0.0)
    n = len(CURVE_PERCENTS)
    allocation, fragmentation, fragmentation_ratio = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    reasons: dict[str, int] = {}
    arrived_milli = scheduled = next_percent = 0
    has_mig = any(k.startswith("gpufleet.io/mig.") for n in nodes for k in n.labels)
    peak_mig: dict[str, int] = {}

    def record_reached() -> None:
        nonlocal next_percent
        while next_percent < n and arrived_milli * 100 >= CURVE_PERCENTS[next_percent] * capacity:
            fragment, ratio = cluster_fragmentation(cluster, typical)
            allocation[next_percent] = 100 * allocation_ratio(cluster)
            fragmentation[next_percent] = 100 * fragment / capacity
            fragmentation_ratio[next_percent] = 100 * ratio
            if has_mig:  # stranded slices at each curve point (not per pod: the report walks the nodes)
                report = mig_slice_report(cluster)
                if not peak_mig or report["stranded_slices"] > peak_mig["stranded_slices"]:
                    peak_mig.update(report)
            next_percent += 1
            if progress is not None:
                progress(1)

    record_reached()
    for pod in arrivals:
        scheduler.add(pod)
        outcome = scheduler.schedule_one()
        if outcome is not None and outcome.status == "scheduled":
            scheduled += 1
        else:  # skipped: it leaves the queue for good
            scheduler.pod_deleted(pod)
            if outcome is not None and outcome.diagnosis is not None:
                for reason in outcome.diagnosis.reason_counts:
                    reasons[reason] = reasons.get(reason, 0) + 1
        arrived_milli += pod.gpu_request_milli
        record_reached()
    final_mig = mig_slice_report(cluster) if has_mig else {}
    if final_mig and (not peak_mig or final_mig["stranded_slices"] > peak_mig["stranded_slices"]):
        peak_mig = dict(final_mig)
    return FillResult(policy, seed, len(arrivals), scheduled, len(arrivals) - scheduled,
                      allocation.tolist(), fragmentation.tolist(), fragmentation_ratio.tolist(), reasons,
                      100 * allocation_ratio(cluster), time.perf_counter() - started, peak_mig, final_mig)
