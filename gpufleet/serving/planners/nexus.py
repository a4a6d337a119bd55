"""Nexus squishy bin packing (temporal sharing of whole GPUs).

Shen et al., "Nexus: A GPU Cluster Engine for Accelerating DNN-Based Video Analysis", SOSP'19, Sec. 6.1
(Algorithm 1), as summarised in the GPULet paper's Sec. 2.2:

1. Saturate: per model, ``B`` = largest batch with ``l(B) <= SLO / 2``; ``floor(r / (B / l(B)))`` whole
   GPUs run batches of B back to back (duty cycle ``l(B)``, occupancy 1).
2. Residual rate ``r'``: b = largest batch with ``(b - 1) / r' + l(b) <= SLO``; duty cycle
   ``d = min(SLO - l(b), b / r')``; occupancy ``l(b) / d``.
3. Merge residual nodes in decreasing occupancy: each goes to the existing residual GPU whose merged
   occupancy is highest among the feasible merges (common duty cycle ``min(d_a, d_b)``, batches
   ``ceil(d r_k)``, ``sum_k l_k(b_k) <= d`` and ``d + l_k(b_k) <= SLO_k``), or to a new GPU.

All partitions are 100 % (no spatial sharing), so no interference applies.
"""

from __future__ import annotations

from ..plan import (LATENCY_RATIO, MAX_BATCH, Allocation, ModelDemand, Partition, Plan, residual_batch,
                    saturated_batch, time_share)
from ..profiles import ProfileSet


def plan_sbp(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
             ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH, **_: object) -> Plan:
    plan = Plan("sbp", demands=list(demands), max_gpus=max_gpus)
    saturated: list[Partition] = []
    residual: list[Partition] = []
    for d in demands:
        prof = profiles[d.name]
        sat = saturated_batch(prof, 100, d.slo_ms, ratio=ratio, max_batch=max_batch)
        if sat is None:
            plan.unserved_rps[d.name] = d.rate_rps
            continue
        batch, lat = sat
        per_gpu = 1000.0 * batch / lat
        n = int(d.rate_rps // per_gpu)
        for _ in range(n):
            saturated.append(Partition(100, lat, [Allocation(d.name, batch, per_gpu, lat, d.slo_ms)]))
        left = d.rate_rps - n * per_gpu
        if left <= 1e-9:
            continue
        res = residual_batch(prof, 100, d.slo_ms, left, ratio=ratio, max_batch=max_batch, nexus=True)
        if res is None:  # too little rate to batch within the SLO: one more saturated GPU takes it
            saturated.append(Partition(100, lat, [Allocation(d.name, batch, left, lat, d.slo_ms)]))
        else:
            b, lat_b, duty = res
            residual.append(Partition(100, duty, [Allocation(d.name, b, left, lat_b, d.slo_ms)]))

    merged: list[Partition] = []
    for node in sorted(residual, key=lambda p: p.occupancy, reverse=True):
        best: tuple[float, int, Partition] | None = None
        for i, gpu in enumerate(merged):
            duty = min(gpu.duty_cycle_ms, node.duty_cycle_ms)
            members = [(a, profiles[a.model]) for a in gpu.allocations + node.allocations]
            allocs = time_share(members, duty, 100, ratio=ratio, max_batch=max_batch)
            if allocs is None:
                continue
            cand = Partition(100, duty, allocs)
            if best is None or cand.occupancy > best[0]:
                best = (cand.occupancy, i, cand)
        if best is None:
            merged.append(node)
        else:
            merged[best[1]] = best[2]

    nodes = saturated + merged
    if max_gpus is not None and len(nodes) > max_gpus:
        for node in nodes[max_gpus:]:  # what does not fit is unserved
            for a in node.allocations:
                plan.unserved_rps[a.model] = plan.unserved_rps.get(a.model, 0.0) + a.rate_rps
        nodes = nodes[:max_gpus]
    plan.gpus = [[node] for node in nodes]
    return plan
