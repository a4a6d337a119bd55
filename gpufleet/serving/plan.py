"""What every planner returns, and the batch-size rules they share.

A :class:`Plan` lists the GPUs used; per GPU its partitions (a share of the GPU: an MPS active-thread
percentage, or a share of the CPU cores); per partition the models it time-shares, each with a batch size
and the request rate routed to it, one duty cycle, and the predicted latency and throughput.

Batch rules (Nexus, Shen et al., SOSP'19 Sec. 6.1; GPULet, Choi et al., ATC'22 Sec. 5), with ``l(b)`` the
profiled batch latency times the safety ratio (1.1 in glet's configs) times the interference factor:

* saturated partition (serves back-to-back batches of b): the largest b with ``2 l(b) <= SLO``
  (a request waits at most one batch and then runs in the next); throughput ``b / l(b)``;
* residual partition (serves a rate r below its saturated throughput): GPULet takes the largest b with
  ``l(b) + b / r <= SLO``; Nexus the largest b with ``l(b) + (b - 1) / r <= SLO`` (b = 1 needs no wait,
  so a very low rate is served with batches of one); in both the duty cycle
  is ``d = min(SLO - l(b), b / r)`` but at least ``l(b)``, so that a request waits at most ``d`` and then
  runs: worst-case latency ``d + l(b) <= SLO``;
* time sharing (Nexus squishy bin packing merge): models k on one partition with a common duty cycle d
  run one batch each per cycle, ``b_k = ceil(d r_k)``; feasible when ``sum_k l_k(b_k) <= d`` and
  ``d + l_k(b_k) <= SLO_k`` for every k;
* time sharing as glet does it (``IncrementalScheduler::allocateTimeShare``, ``src/scheduler/
  scheduler_incremental.cpp`` of casys-kaist/glet): the newcomer's batch is the largest
  ``b <= floor(D r / 1000)`` (D the gpulet's duty cycle) with ``d + l(b) < SLO`` and
  ``l(b) / d < 1 - occupancy`` where ``d = b / r`` truncated to whole milliseconds (glet keeps it in an
  ``int``); only that b is tried; the gpulet's duty cycle becomes d, every member is
  re-batched to ``b_k = max(1, floor(d r_k))``; feasible when ``sum_k l_k <= d`` and
  ``d + sum_k l_k <= SLO_k`` for every member, new and old. The second bound is the worst case of a
  request that just missed its model's fixed slot (wait d, then the slots before it and its own batch),
  so it leaves the slack that Nexus's ``d + l_k`` does not. Members keep their routed rate; a member whose
  ``b_k / d`` falls below it is served less, as in glet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from .profiles import LatencyProfile

LATENCY_RATIO = 1.1
MAX_BATCH = 32
PARTITIONS = (20, 40, 50, 60, 80, 100)


@dataclass(frozen=True)
class ModelDemand:
    """A model to serve: its name (the profile key), request rate (requests/s) and SLO (ms)."""

    name: str
    rate_rps: float
    slo_ms: float


@dataclass
class Allocation:
    """One model on one partition: its batch size, the rate routed to it and its batch latency."""

    model: str
    batch: int
    rate_rps: float
    latency_ms: float  # predicted latency of one batch of `batch` (ratio and interference included)
    slo_ms: float


@dataclass
class Partition:
    percent: int
    duty_cycle_ms: float = 0.0
    allocations: list[Allocation] = field(default_factory=list)
    interference_factor: float = 1.0  # the factor the planner assumed (1 when it ignored interference)

    @property
    def occupancy(self) -> float:
        if not self.allocations or self.duty_cycle_ms <= 0:
            return 0.0
        return sum(a.latency_ms for a in self.allocations) / self.duty_cycle_ms

    def capacity_rps(self, allocation: Allocation) -> float:
        """Requests/s this partition can take for one of its models (one batch per duty cycle)."""
        return 1000.0 * allocation.batch / self.duty_cycle_ms

    def predicted_latency_ms(self, allocation: Allocation) -> float:
        """Worst-case request latency: wait up to one duty cycle, then run."""
        return self.duty_cycle_ms + allocation.latency_ms

    @property
    def models(self) -> list[str]:
        return [a.model for a in self.allocations]


@dataclass
class Plan:
    planner: str
    gpus: list[list[Partition]] = field(default_factory=list)
    demands: list[ModelDemand] = field(default_factory=list)
    unserved_rps: dict[str, float] = field(default_factory=dict)
    max_gpus: int | None = None
    # rate a planner accepted to serve short of the demand (glet's interference threshold: a model keeps
    # a plan that serves at least 85 % of its rate); routed as planned, so the simulator shows its cost
    tolerated_rps: dict[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return not any(r > 1e-6 for r in self.unserved_rps.values())

    @property
    def gpus_used(self) -> int:
        return sum(1 for g in self.gpus if any(p.allocations for p in g))

    def partitions(self) -> Iterable[tuple[int, Partition]]:
        for i, g in enumerate(self.gpus):
            for p in g:
                yield i, p

    def served_rps(self, model: str) -> float:
        return sum(a.rate_rps for _, p in self.partitions() for a in p.allocations if a.model == model)

    def capacity_rps(self, model: str) -> float:
        return sum(p.capacity_rps(a) for _, p in self.partitions() for a in p.allocations if a.model == model)

    def to_dict(self) -> dict:
        return {
            "planner": self.planner, "feasible": self.feasible, "gpus_used": self.gpus_used,
            "unserved_rps": {k: round(v, 3) for k, v in self.unserved_rps.items() if v > 1e-6},
            "tolerated_rps": {k: round(v, 3) for k, v in self.tolerated_rps.items() if v > 1e-6},
            "gpus": [[{
                "percent": p.percent, "duty_cycle_ms": round(p.duty_cycle_ms, 3),
                "occupancy": round(p.occupancy, 3), "interference_factor": round(p.interference_factor, 4),
                "models": [{"model": a.model, "batch": a.batch, "rate_rps": round(a.rate_rps, 2),
                            "batch_latency_ms": round(a.latency_ms, 3),
                            "predicted_latency_ms": round(p.predicted_latency_ms(a), 3),
                            "capacity_rps": round(p.capacity_rps(a), 2), "slo_ms": a.slo_ms}
                           for a in p.allocations]} for p in g if p.allocations] for g in self.gpus
                if any(p.allocations for p in g)],
        }


# ---------------------------------------------------------------------------- batch rules
def scaled_latency(profile: LatencyProfile, batch: int, percent: float, factor=1.0,
                   ratio: float = LATENCY_RATIO) -> float:
    """``L(b, p) * ratio * factor``; ``factor`` may be a number or a function of the batch size (the
    interference factor depends on it)."""
    f = factor(batch) if callable(factor) else factor
    return profile.latency(batch, percent) * ratio * f


def saturated_batch(profile: LatencyProfile, percent: float, slo_ms: float, factor=1.0,
                    ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH) -> tuple[int, float] | None:
    """Largest b with ``2 l(b) <= SLO`` and its latency ``l(b)``; None when even b = 1 is too slow."""
    best = None
    for b in range(1, min(max_batch, profile.max_batch) + 1):
        lat = scaled_latency(profile, b, percent, factor, ratio)
        if 2 * lat <= slo_ms:
            best = (b, lat)
    return best


def saturated_throughput(profile: LatencyProfile, percent: float, slo_ms: float, factor=1.0,
                         ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH) -> float:
    sat = saturated_batch(profile, percent, slo_ms, factor, ratio, max_batch)
    return 0.0 if sat is None else 1000.0 * sat[0] / sat[1]


def residual_batch(profile: LatencyProfile, percent: float, slo_ms: float, rate_rps: float,
                   factor=1.0, ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH,
                   nexus: bool = False) -> tuple[int, float, float] | None:
    """``(b, l(b), duty_cycle_ms)`` for serving ``rate_rps`` below saturation, or None when no batch
    meets the SLO while keeping up with the rate (``l(b) <= d``)."""
    if rate_rps <= 0:
        return None
    best = None
    for b in range(1, min(max_batch, profile.max_batch) + 1):
        lat = scaled_latency(profile, b, percent, factor, ratio)
        wait = (b - 1 if nexus else b) * 1000.0 / rate_rps
        if lat + wait > slo_ms and b > 1:  # a batch of one does not wait for company
            continue
        duty = max(min(slo_ms - lat, b * 1000.0 / rate_rps), lat)
        if duty + lat > slo_ms + 1e-9 or 1000.0 * b / duty < rate_rps * (1 - 1e-9):
            continue
        best = (b, lat, duty)
    return best


def time_share(members: list[tuple[Allocation, LatencyProfile]], duty_ms: float, percent: float,
               factor=1.0, ratio: float = LATENCY_RATIO,
               max_batch: int = MAX_BATCH) -> list[Allocation] | None:
    """Nexus merge check: re-batch every member for a common duty cycle; None when infeasible."""
    out, total = [], 0.0
    for alloc, profile in members:
        b = max(1, math.ceil(duty_ms * alloc.rate_rps / 1000.0 - 1e-9))
        if b > min(max_batch, profile.max_batch):
            return None
        lat = scaled_latency(profile, b, percent, factor, ratio)
        if duty_ms + lat > alloc.slo_ms + 1e-9:
            return None
        total += lat
        out.append(Allocation(alloc.model, b, alloc.rate_rps, lat, alloc.slo_ms))
    if total > duty_ms + 1e-9:
        return None
    return out


def time_share_glet(members: list[tuple[Allocation, LatencyProfile]], newcomer: Allocation,
                    newcomer_profile: LatencyProfile, duty_ms: float, occupancy: float, percent: float,
                    factor=1.0, ratio: float = LATENCY_RATIO,
                    max_batch: int = MAX_BATCH) -> tuple[list[Allocation], float] | None:
    """glet's time-sharing check (module docstring): ``newcomer.rate_rps`` joins a gpulet whose members are
    ``members``, duty cycle ``duty_ms`` and occupancy ``occupancy``. Returns the re-batched members with the
    newcomer last and the new duty cycle, or None when infeasible."""
    rate = newcomer.rate_rps
    top = min(max_batch, newcomer_profile.max_batch, math.floor(duty_ms * rate / 1000.0 + 1e-9))
    chosen = None
    for b in range(top, 0, -1):
        duty = float(math.floor(1000.0 * b / rate + 1e-9))  # glet keeps this duty cycle in an int (ms)
        if duty <= 0:
            continue
        lat = scaled_latency(newcomer_profile, b, percent, factor, ratio)
        if duty + lat < newcomer.slo_ms and lat / duty < 1.0 - occupancy:
            chosen = (b, duty, lat)
            break
    if chosen is None:
        return None
    b, duty, lat = chosen
    out, total = [], lat
    for alloc, profile in members:
        bk = min(max(1, math.floor(duty * alloc.rate_rps / 1000.0 + 1e-9)), max_batch, profile.max_batch)
        lk = scaled_latency(profile, bk, percent, factor, ratio)
        total += lk
        out.append(Allocation(alloc.model, bk, alloc.rate_rps, lk, alloc.slo_ms))
    if total > duty * (1 + 1e-9):
        return None
    if any(duty + total > slo + 1e-9 for slo in [newcomer.slo_ms] + [a.slo_ms for a, _ in members]):
        return None
    out.append(Allocation(newcomer.model, b, rate, lat, newcomer.slo_ms))
    return out, duty
