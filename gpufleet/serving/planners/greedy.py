"""Greedy best-fit spatial sharing (the GPULet paper's spatial baseline, Choi et al. ATC'22 Sec. 2.3/7).

Every model gets its own partitions (no time sharing, no interference awareness). Models are taken in
decreasing rate; per model, while rate is left: the partition size is the smallest one that serves the
leftover rate within the SLO (``l(b) + b / r <= SLO``), or 100 % run saturated (``2 l(b) <= SLO``) when
none does; it goes to the GPU whose free share is the smallest that still fits it (best fit), a new GPU
when none fits (up to ``max_gpus``).
"""

from __future__ import annotations

from ..plan import (LATENCY_RATIO, MAX_BATCH, PARTITIONS, Allocation, ModelDemand, Partition, Plan,
                    residual_batch, saturated_batch)
from ..profiles import ProfileSet


def plan_greedy(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                partitions=PARTITIONS, ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH,
                **_: object) -> Plan:
    plan = Plan("greedy", demands=list(demands), max_gpus=max_gpus)
    gpus: list[list[Partition]] = []
    parts = sorted(partitions)
    for d in sorted(demands, key=lambda d: (-d.rate_rps, d.name)):
        prof = profiles[d.name]
        left = d.rate_rps
        while left > 1e-6:
            choice = None
            for p in parts:
                res = residual_batch(prof, p, d.slo_ms, left, ratio=ratio, max_batch=max_batch)
                if res is not None:
                    b, lat, duty = res
                    choice = Partition(p, duty, [Allocation(d.name, b, left, lat, d.slo_ms)])
                    break
            if choice is None:
                sat = saturated_batch(prof, parts[-1], d.slo_ms, ratio=ratio, max_batch=max_batch)
                if sat is None:
                    break
                b, lat = sat
                served = min(left, 1000.0 * b / lat)
                choice = Partition(parts[-1], lat, [Allocation(d.name, b, served, lat, d.slo_ms)])
            fits = [(100 - sum(p.percent for p in g), i) for i, g in enumerate(gpus)
                    if 100 - sum(p.percent for p in g) >= choice.percent]
            if fits:
                gpus[min(fits)[1]].append(choice)
            elif max_gpus is None or len(gpus) < max_gpus:
                gpus.append([choice])
            else:
                break
            left -= choice.allocations[0].rate_rps
        if left > 1e-6:
            plan.unserved_rps[d.name] = left
    plan.gpus = gpus
    return plan
