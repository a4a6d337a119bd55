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
  - Best fit over free gpulets in ascending size with size >= p_ideal; a whole free GPU (100 %) is split
    into ``p_ideal`` and ``100 - p_ideal``. The gpulet serves ``min(left, saturated throughput)``.
  - When nothing fits, one more GPU is added (up to ``max_gpus``; with no limit, time sharing is tried
    first). With no GPU left, glet's fallbacks in glet's order (``addModeltoSchedule``): ``readjust``
    (the leftover free gpulets, largest first, even smaller than p_ideal), then time sharing (Nexus
    merge, at most 3 models, highest merged occupancy first).
  - With interference on, ``l(b)`` is multiplied by the interference factor against the models already in
    the other gpulets of that GPU and the batch is the largest that still meets the rule with that factor.
    The GPU's other gpulets are re-checked with the factor the newcomer causes (glet's
    ``checkNeedtoRevert``): a one-model gpulet is re-batched (its batch if still within SLO, else the
    residual batch for its rate, else the saturated batch, serving less; the rate lost is placed again
    after all models, as glet re-runs placement for the throughput interference takes); the placement is
    refused when a neighbour cannot meet its SLO or a time-shared neighbour overflows its duty cycle.
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
                 partitions, ratio: float, max_batch: int, max_models: int, time_share_first: bool = False):
        self.time_share_first = time_share_first
        self.profiles, self.max_gpus, self.interference = profiles, max_gpus, interference
        self.partitions, self.ratio, self.max_batch, self.max_models = sorted(partitions), ratio, max_batch, max_models
        self.gpus: list[list[Partition]] = []
        self.lost_rps: dict[str, float] = {}  # rate that interference took from saturated gpulets

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

    def neighbours_ok(self, gpu: list[Partition], newcomer: Partition) -> list[tuple] | None:
        """Re-check every other gpulet of the GPU with the newcomer in place (glet's ``checkNeedtoRevert``):
        None when a neighbour would miss its SLO (worst case: wait one duty cycle, then run) or a
        time-shared neighbour would no longer fit its duty cycle; else the updates
        ``(gpulet, allocations, factor, duty_cycle_ms, rate lost)``. A gpulet serving one model that slows
        down past its duty cycle (a saturated gpulet) keeps its SLO but serves less: the rate it loses is
        returned and placed again later (glet re-runs its placement for the throughput that interference
        takes away, ``incrementalScheduling``)."""
        if self.interference is None:
            return []
        updates = []
        for other in gpu:
            if other is newcomer or not other.allocations:
                continue
            f = 1.0
            for a in other.allocations:
                f = max(f, self.pair_factor(a.model, a.batch, other.percent, gpu, other))
            if len(other.allocations) == 1:
                single = self.rebatch(other, other.allocations[0], f)
                if single is None:
                    return None
                alloc, duty, lost = single
                updates.append((other, [alloc], f, duty, lost))
                continue
            new_allocs, total = [], 0.0
            for a in other.allocations:
                lat = scaled_latency(self.profiles[a.model], a.batch, other.percent, f, self.ratio)
                total += lat
                new_allocs.append(Allocation(a.model, a.batch, a.rate_rps, lat, a.slo_ms))
            duty, lost = other.duty_cycle_ms, 0.0
            if total > duty * (1 + 1e-9):
                return None
            if any(duty + a.latency_ms > a.slo_ms + 1e-9 for a in new_allocs):
                return None
            updates.append((other, new_allocs, f, duty, lost))
        return updates

    def rebatch(self, part: Partition, a: Allocation, factor: float) -> tuple[Allocation, float, float] | None:
        """A one-model gpulet slowed by ``factor``: keep its batch when it still meets the SLO and keeps
        up; else the residual batch for its rate with the factor; else the saturated batch with the
        factor, serving less (the rate lost is returned). ``(allocation, duty cycle, rate lost)`` or None
        when even a batch of one misses the SLO."""
        prof = self.profiles[a.model]
        lat = scaled_latency(prof, a.batch, part.percent, factor, self.ratio)
        duty = part.duty_cycle_ms
        if lat <= duty * (1 + 1e-9) and duty + lat <= a.slo_ms + 1e-9:
            return Allocation(a.model, a.batch, a.rate_rps, lat, a.slo_ms), duty, 0.0
        res = residual_batch(prof, part.percent, a.slo_ms, a.rate_rps, factor, self.ratio, self.max_batch)
        if res is not None:
            b, lat, duty = res
            return Allocation(a.model, b, a.rate_rps, lat, a.slo_ms), duty, 0.0
        sat = saturated_batch(prof, part.percent, a.slo_ms, factor, self.ratio, self.max_batch)
        if sat is None:
            return None
        b, lat = sat
        capacity = 1000.0 * b / lat
        served = min(a.rate_rps, capacity)
        return Allocation(a.model, b, served, lat, a.slo_ms), lat, a.rate_rps - served

    def apply(self, updates) -> None:
        for other, allocs, f, duty, lost in updates:
            other.allocations, other.interference_factor, other.duty_cycle_ms = allocs, f, duty
            if lost > 0:
                model = allocs[0].model
                self.lost_rps[model] = self.lost_rps.get(model, 0.0) + lost

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
        self.apply(updates)
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
        self.apply(updates)
        return True

    def place(self, d: ModelDemand, left: float) -> float | None:
        """Best fit of ``p_ideal``: the smallest free gpulet of at least ``p_ideal`` % (a free 100 % GPU is
        split into ``p_ideal`` and the rest); the rate served, or None when no such gpulet takes it."""
        prof = self.profiles[d.name]
        p_eff = efficient_partition(prof, d.slo_ms, self.partitions, self.ratio, self.max_batch)
        p_req = required_partition(prof, d.slo_ms, left, self.partitions, self.ratio, self.max_batch)
        p_ideal = min(p_eff, p_req) if p_req is not None else p_eff
        if self.time_share_first and p_req is not None and p_req <= p_eff and self.time_share(d, left):
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

    def readjust(self, d: ModelDemand, left: float) -> float | None:
        """glet's ``readjust``: when no free gpulet of ``p_ideal`` is left and no GPU can be added, the
        leftover free gpulets (smaller than ``p_ideal``) take the rate, largest first, saturated while the
        rate exceeds what they serve, else as a residual gpulet; the rate served, or None."""
        free = [(part.percent, gi, k, part) for gi, gpu in enumerate(self.gpus)
                for k, part in enumerate(gpu) if not part.allocations]
        for _, gi, _, part in sorted(free, key=lambda t: (-t[0], t[1], t[2])):
            gpu = self.gpus[gi]
            filled = self.fill(d, part, gpu, left)
            if filled is not None and self.try_commit(gpu, part, filled[0]):
                return filled[1]
        return None

    def place_rate(self, d: ModelDemand, left: float, plan: Plan) -> None:
        """Place ``left`` req/s of ``d``: best fit of ``p_ideal`` (opening GPUs one at a time up to
        ``max_gpus``; with no GPU limit, time sharing is tried before a GPU is opened), then glet's
        fallbacks: ``readjust`` into the leftover free gpulets, then time sharing."""
        while left > RATE_SLACK:
            served = self.place(d, left)
            if served is None and self.max_gpus is None and self.time_share(d, left):
                served = left
            if served is None and (self.max_gpus is None or len(self.gpus) < self.max_gpus):
                if not (self.gpus and all(not p.allocations for p in self.gpus[-1]) and len(self.gpus[-1]) == 1):
                    self.gpus.append([Partition(100)])
                    continue
            if served is None:
                served = self.readjust(d, left)
            if served is None and self.time_share(d, left):
                served = left
            if served is None:
                plan.unserved_rps[d.name] = plan.unserved_rps.get(d.name, 0.0) + left
                return
            left -= served

    def run(self, demands: list[ModelDemand], name: str) -> Plan:
        plan = Plan(name, demands=list(demands), max_gpus=self.max_gpus)
        for d in sorted(demands, key=lambda d: (-d.rate_rps * d.slo_ms, d.name)):
            self.place_rate(d, d.rate_rps, plan)
        by_name = {d.name: d for d in demands}
        for _ in range(3):  # place again what interference took from saturated gpulets (bounded)
            lost, self.lost_rps = self.lost_rps, {}
            for model, rate in sorted(lost.items()):
                if rate > RATE_SLACK:
                    self.place_rate(by_name[model], rate, plan)
        for model, rate in self.lost_rps.items():
            if rate > RATE_SLACK:
                plan.unserved_rps[model] = plan.unserved_rps.get(model, 0.0) + rate
        for gpu in self.gpus:  # merge free gpulets; an empty GPU is one 100 % gpulet again
            used = [p for p in gpu if p.allocations]
            free = sum(p.percent for p in gpu if not p.allocations)
            gpu[:] = used + ([Partition(free)] if free else [])
        plan.gpus = self.gpus
        return plan


def plan_gpulet(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                interference: InterferenceModel | None = None, partitions=PARTITIONS,
                ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH, max_models: int = MAX_MODELS,
                time_share_first: bool = False, **_: object) -> Plan:
    """GPULet without interference awareness (``interference=None``) or with it ("gpulet+int")."""
    name = "gpulet+int" if interference is not None else "gpulet"
    return _Planner(profiles, max_gpus, interference, partitions, ratio, max_batch, max_models,
                    time_share_first).run(demands, name)
