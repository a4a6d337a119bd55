"""One model per GPU: the no-sharing baseline. Each model gets whole GPUs running saturated batches
(``2 l(b) <= SLO``) and one more whole GPU for its residual rate (residual rule ``l(b) + b / r <= SLO``);
no GPU ever holds two models (Choi et al. ATC'22, Sec. 2, the "dedicated GPU" starting point)."""

from __future__ import annotations

from ..plan import (LATENCY_RATIO, MAX_BATCH, Allocation, ModelDemand, Partition, Plan, residual_batch,
                    saturated_batch)
from ..profiles import ProfileSet


def plan_dedicated(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                   ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH, **_: object) -> Plan:
    plan = Plan("dedicated", demands=list(demands), max_gpus=max_gpus)
    for d in sorted(demands, key=lambda d: d.name):
        prof = profiles[d.name]
        sat = saturated_batch(prof, 100, d.slo_ms, ratio=ratio, max_batch=max_batch)
        left = d.rate_rps
        while left > 1e-6 and sat is not None:
            if max_gpus is not None and len(plan.gpus) >= max_gpus:
                break
            res = residual_batch(prof, 100, d.slo_ms, left, ratio=ratio, max_batch=max_batch)
            if res is not None:
                b, lat, duty = res
                plan.gpus.append([Partition(100, duty, [Allocation(d.name, b, left, lat, d.slo_ms)])])
                left = 0.0
            else:
                b, lat = sat
                served = min(left, 1000.0 * b / lat)
                plan.gpus.append([Partition(100, lat, [Allocation(d.name, b, served, lat, d.slo_ms)])])
                left -= served
        if left > 1e-6:
            plan.unserved_rps[d.name] = left
    return plan
