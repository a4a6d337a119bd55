"""GPULet elastic partitioning (spatio-temporal sharing), optionally interference-aware.

Choi et al., "Serving Heterogeneous Machine Learning Models on Multi-GPU Servers with Spatio-Temporal
Sharing", USENIX ATC'22, Sec. 5 (Algorithm 1) and the public code's incremental scheduler, as summarised
in ../shared/data/gpulet/README.md. Our reading:

* Models are taken in decreasing ``rate x SLO``. Per model, while rate is left:
  - ``p_eff``: over steps between adjacent partition sizes (20, 40, 50, 60, 80, 100 %), skipping steps
    whose saturated throughput grows by less than 5 %, the upper size of the step with the largest
    throughput gain per extra percent (100 % when no step qualifies);
  - ``p_req``: the smallest partition that serves the leftover rate within the SLO (residual rule
    ``l(b) + b / r <= SLO``);
  - ``p_ideal = min(p_eff, p_req)``.
  - A leftover small enough for a residual gpulet first tries time sharing (Nexus merge, at most 3 models)
    in an occupied gpulet, highest merged occupancy first.
  - Otherwise best fit over free gpulets in ascending size with size >= p_ideal; a whole free GPU (100 %)
    is split into ``p_ideal`` and ``100 - p_ideal``. The gpulet serves ``min(left, saturated throughput)``.
  - With interference on, ``l(b)`` is multiplied by the interference factor against the models already in
    the other gpulets of that GPU, the batch is the largest that still meets the rule with that factor,
    and the placement is refused when the neighbours would miss their SLO with the factor the newcomer
    causes (glet's ``checkNeedtoRevert``).
  - When nothing fits, one more GPU is added (up to ``max_gpus``).
* Afterwards free gpulets of a GPU are merged, and a GPU left empty becomes one 100 % gpulet again.
"""

from __future__ import annotations

from ..interference import InterferenceModel
from ..plan import (LATENCY_RATIO, MAX_BATCH, PARTITIONS, Allocation, ModelDemand, Partition, Plan,
                    residual_batch, saturated_batch, saturated_throughput, scaled_latency, time_share)
from ..profiles import LatencyProfile, ProfileSet

MIN_GAIN = 1.05
MAX_MODELS = 3
RATE_SLACK = 1e-6


def efficient_partition(profile: LatencyProfile, slo_ms: float, partitions=PARTITIONS,
                        ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH) -> int:
    """``p_eff``: the partition after the step with the largest saturated-throughput gain per percent."""
    parts = sorted(partitions)
    trp = {p: saturated_throughput(profile, p, slo_ms, ratio=ratio, max_batch=max_batch) for p in parts}
    best_gain, best = 0.0, parts[-1]
    for low, high in zip(parts, parts[1:]):
        if trp[low] <= 0:
            if trp[high] > 0 and best_gain == 0.0:
                best = high  # smallest size that serves at all
            continue
        if trp[high] / trp[low] < MIN_GAIN:
            continue
        gain = (trp[high] - trp[low]) / (high - low)
        if gain > best_gain:
            best_gain, best = gain, high
    return best


def required_partition(profile: LatencyProfile, slo_ms: float, rate_rps: float, partitions=PARTITIONS,
                       ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH) -> int | None:
    """``p_req``: the smallest partition that serves ``rate_rps`` alone within the SLO, or None."""
    for p in sorted(partitions):
        if residual_batch(profile, p, slo_ms, rate_rps, ratio=ratio, max_batch=max_batch) is not None:
            return p
    return None


class _Planner:
    def __init__(self, profiles: ProfileSet, max_gpus: int | None, interference: InterferenceModel | None,
                 partitions, ratio: float, max_batch: int, max_models: int):
        self.profiles, self.max_gpus, self.interference = profiles, max_gpus, interference
        self.partitions, self.ratio, self.max_batch, self.max_models = sorted(partitions), ratio, max_batch, max_models
        self.gpus: list[list[Partition]] = []

    # -- interference
    def pair_factor(self, model: str, batch: int, percent: int, gpu: list[Partition], skip: Partition) -> float:
        if self.interference is None:
            return 1.0
        f = 1.0
        for other in gpu:
            if other is skip:
                continue
            for a in other.allocations:
                f = max(f, self.interference.factor(model, batch, percent, a.model, a.batch, other.percent))
        return f

    def neighbours_ok(self, gpu: list[Partition], newcomer: Partition) -> list[tuple[Partition, list[Allocation], float]] | None:
        """Re-check every other gpulet of the GPU with the newcomer in place; the updates, or None."""
        if self.interference is None:
            return []
        updates = []
        for other in gpu:
            if other is newcomer or not other.allocations:
                continue
            f = 1.0
            for a in other.allocations:
                f = max(f, self.pair_factor(a.model, a.batch, other.percent, gpu, other))
            new_allocs, total = [], 0.0
            for a in other.allocations:
                lat = scaled_latency(self.profiles[a.model], a.batch, other.percent, f, self.ratio)
                if other.duty_cycle_ms + lat > a.slo_ms + 1e-9:
                    return None
                total += lat
                new_allocs.append(Allocation(a.model, a.batch, a.rate_rps, lat, a.slo_ms))
            if total > other.duty_cycle_ms * (1 + 1e-9) and len(other.allocations) > 1:
                return None
            if len(other.allocations) == 1 and new_allocs[0].latency_ms > other.duty_cycle_ms:
                # a saturated gpulet slows down: it still meets the SLO (checked) but serves less
                if 1000.0 * new_allocs[0].batch / new_allocs[0].latency_ms < new_allocs[0].rate_rps * (1 - 1e-9):
                    return None
            updates.append((other, new_allocs, f))
        return updates

    # -- placement
    def fill(self, d: ModelDemand, part: Partition, gpu: list[Partition], left: float) -> tuple[Partition, float] | None:
        """The gpulet ``part`` (free) filled with model ``d``: the partition contents and the rate served."""
        prof = self.profiles[d.name]
        factor = (lambda b: self.pair_factor(d.name, b, part.percent, gpu, part))
        sat = saturated_batch(prof, part.percent, d.slo_ms, factor, self.ratio, self.max_batch)
        if sat is not None and 1000.0 * sat[0] / sat[1] < left:
            b, lat = sat
            served = 1000.0 * b / lat
            return Partition(part.percent, lat, [Allocation(d.name, b, served, lat, d.slo_ms)], factor(b)), served
        res = residual_batch(prof, part.percent, d.slo_ms, left, factor, self.ratio, self.max_batch)
        if res is None:
            return None
        b, lat, duty = res
        return Partition(part.percent, duty, [Allocation(d.name, b, left, lat, d.slo_ms)], factor(b)), left

    def try_commit(self, gpu: list[Partition], slot: Partition, filled: Partition) -> bool:
        slot.duty_cycle_ms, slot.allocations, slot.interference_factor = (
            filled.duty_cycle_ms, filled.allocations, filled.interference_factor)
        updates = self.neighbours_ok(gpu, slot)
        if updates is None:
            slot.duty_cycle_ms, slot.allocations, slot.interference_factor = 0.0, [], 1.0
            return False
        for other, allocs, f in updates:
            other.allocations, other.interference_factor = allocs, f
        return True

    def time_share(self, d: ModelDemand, left: float) -> bool:
        best = None
        for gpu in self.gpus:
            for part in gpu:
                if not part.allocations or len(part.allocations) >= self.max_models:
                    continue
                if any(a.model == d.name for a in part.allocations):
                    continue
                members = [(a, self.profiles[a.model]) for a in part.allocations]
                members.append((Allocation(d.name, 1, left, 0.0, d.slo_ms), self.profiles[d.name]))
                f = max([self.pair_factor(a.model, self.max_batch, part.percent, gpu, part) for a, _ in members])
                allocs = time_share(members, part.duty_cycle_ms, part.percent, f, self.ratio, self.max_batch)
                if allocs is None:
                    continue
                occupancy = sum(a.latency_ms for a in allocs) / part.duty_cycle_ms
                if best is None or occupancy > best[0]:
                    best = (occupancy, gpu, part, allocs, f)
        if best is None:
            return False
        _, gpu, part, allocs, f = best
        saved = (part.allocations, part.interference_factor)
        part.allocations, part.interference_factor = allocs, f
        updates = self.neighbours_ok(gpu, part)
        if updates is None:
            part.allocations, part.interference_factor = saved
            return False
        for other, new_allocs, nf in updates:
            other.allocations, other.interference_factor = new_allocs, nf
        return True

    def place(self, d: ModelDemand, left: float) -> float | None:
        prof = self.profiles[d.name]
        p_eff = efficient_partition(prof, d.slo_ms, self.partitions, self.ratio, self.max_batch)
        p_req = required_partition(prof, d.slo_ms, left, self.partitions, self.ratio, self.max_batch)
        p_ideal = min(p_eff, p_req) if p_req is not None else p_eff
        if p_req is not None and p_req <= p_eff and self.time_share(d, left):
            return left
        free = [(part.percent, gi, k, part) for gi, gpu in enumerate(self.gpus)
                for k, part in enumerate(gpu) if not part.allocations and part.percent >= p_ideal]
        for percent, gi, _, part in sorted(free, key=lambda t: (t[0], t[1], t[2])):
            gpu = self.gpus[gi]
            split = percent == 100 and p_ideal < 100
            if split:
                part.percent = p_ideal
                rest = Partition(100 - p_ideal)
                gpu.append(rest)
            filled = self.fill(d, part, gpu, left)
            if filled is not None and self.try_commit(gpu, part, filled[0]):
                return filled[1]
            if split:
                gpu.remove(rest)
                part.percent = 100
        return None

    def run(self, demands: list[ModelDemand], name: str) -> Plan:
        plan = Plan(name, demands=list(demands), max_gpus=self.max_gpus)
        for d in sorted(demands, key=lambda d: (-d.rate_rps * d.slo_ms, d.name)):
            left = d.rate_rps
            while left > RATE_SLACK:
                served = self.place(d, left)
                if served is None:
                    if self.max_gpus is None or len(self.gpus) < self.max_gpus:
                        if self.gpus and all(not p.allocations for p in self.gpus[-1]) and len(self.gpus[-1]) == 1:
                            plan.unserved_rps[d.name] = left  # even an empty GPU cannot take it
                            break
                        self.gpus.append([Partition(100)])
                        continue
                    plan.unserved_rps[d.name] = left
                    break
                left -= served
        for gpu in self.gpus:  # merge free gpulets; an empty GPU is one 100 % gpulet again
            used = [p for p in gpu if p.allocations]
            free = sum(p.percent for p in gpu if not p.allocations)
            gpu[:] = used + ([Partition(free)] if free else [])
        plan.gpus = self.gpus
        return plan


def plan_gpulet(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                interference: InterferenceModel | None = None, partitions=PARTITIONS,
                ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH, max_models: int = MAX_MODELS,
                **_: object) -> Plan:
    """GPULet without interference awareness (``interference=None``) or with it ("gpulet+int")."""
    name = "gpulet+int" if interference is not None else "gpulet"
    return _Planner(profiles, max_gpus, interference, partitions, ratio, max_batch, max_models).run(demands, name)
