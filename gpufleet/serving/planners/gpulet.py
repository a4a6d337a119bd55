"""GPULet elastic partitioning (spatio-temporal sharing), optionally interference-aware, and glet's own
baseline configurations of the same scheduler.

Choi et al., "Serving Heterogeneous Machine Learning Models on Multi-GPU Servers with Spatio-Temporal
Sharing", USENIX ATC'22, Sec. 5 (Algorithm 1), and the public code (casys-kaist/glet): the incremental
scheduler ``src/scheduler/scheduler_incremental.cpp`` (cited below as SI), ``scheduler_base.{h,cpp}``
(SB), the standalone driver ``src/standalone_scheduler.cpp`` and the configs ``resource/SchedConfigs/``.
Our reading, rule by rule:

* **Order.** Models are taken in *increasing* ``rate x SLO`` (SI ``cmp_task_dsc`` is a "less than"
  comparator, despite its name and the paper's text), ties broken by the larger glet model id first
  (SB ``_IDtoModelName``: lenet1..lenet6, googlenet, resnet50, ssd-mobilenetv1, vgg16, mnasnet1_0,
  mobilenet_v2, densenet161, bert; other models after those, by name).
* **TRP_SLACK.** A rate of at most 15 req/s left over is not placed (SI ``TRP_SLACK = 15``, used by
  ``estimateTrp``, ``readjust``, ``allocateTimeShare``, ``mergeResidue``). Unlike glet we still place a
  model that has no gpulet at all, so that every model is served.
* Per model, while rate is left:
  - ``p_eff``: over steps between adjacent partition sizes (20, 40, 50, 60, 80, 100 %), skipping steps
    whose saturated throughput grows by less than 5 %, the upper size of the step with the largest
    throughput gain per extra percent (100 % when no step qualifies; SI ``getMaxReturnPart``);
  - ``p_req``: the smallest partition that serves the leftover rate within the SLO (residual rule
    ``l(b) + b / r <= SLO``; SI ``getMinPart``); ``p_ideal = min(p_eff, p_req)``.
  - **Best fit** (SI ``findBestFit``): with a GPU limit all GPUs exist from the start (SB
    ``initiateDevs``) and a whole free GPU is taken first, a free gpulet of exactly ``p_ideal`` % found
    after it in the scan order second, else the smallest free gpulet of at least ``p_ideal`` %; a whole
    GPU is split into ``p_ideal`` and ``100 - p_ideal``. Without a GPU limit, GPUs are opened one at a time
    and the smallest free gpulet wins. The gpulet serves ``min(left, saturated throughput)``.
  - When nothing fits, glet's fallbacks in glet's order (SI ``addModeltoSchedule``): ``readjust`` (the
    leftover free gpulets, largest first, even smaller than ``p_ideal``), then **time sharing** with
    glet's rule (:func:`..plan.time_share_glet`; at most 3 models; candidates with occupancy < 1 by
    decreasing occupancy, first that fits; the rate may spread over several gpulets).
  - glet's ``mergeResidue`` (between the two) merges a model's residual gpulets into one when the
    saturated throughput of the smallest covers their sum. It has nothing to do here: glet places a
    model's estimated gpulets as one batch (``allocateFit``) and can leave several residual ones; we
    place one gpulet at a time, saturated ones first, and a residual gpulet always takes all the rate
    left, so a model never holds two residual gpulets. Not implemented.
  - With interference on, ``l(b)`` is multiplied by the interference factor against the models already in
    the other gpulets of that GPU and the batch is the largest that still meets the rule with that factor.
    The GPU's other gpulets are re-checked with the factor the newcomer causes (SI ``checkNeedtoRevert``):
    a one-model gpulet is re-batched (its batch if still within SLO, else the residual batch for its
    rate, else the saturated batch, serving less); the placement is refused when a neighbour cannot meet
    its SLO or a time-shared neighbour overflows its duty cycle.
* **Interference threshold** (SI ``incrementalScehduling``, ``INTF_THRESHOLD = 0.85``): after all models
  are placed, a model whose gpulets now serve less than 85 % of its rate (interference took the rest) is
  taken out and placed again, once; a model still below 85 % after that retry fails the plan. A model
  between 85 % and 100 % is kept as it is (``Plan.tolerated_rps``): glet places no rate for that gap.
* Afterwards free gpulets of a GPU are merged, and a GPU left empty becomes one 100 % gpulet again.

glet's baseline configurations of this scheduler (``resource/SchedConfigs``), used as the paper's baselines:

* ``config-timesharing_only.json`` (``Part: 0``, no interference): the standalone driver then offers
  only whole GPUs (``AVAIL_PARTS = {100}``), so the same scheduler packs whole GPUs, saturated ones first
  (``estimateTrp``), and merges residual models with glet's time-sharing rule: planner ``glet-timesharing``.
* ``config-greedy_part.json`` (``Self Tuning: 1``, which turns interference off, SB ``setupScheduler``):
  the estimate takes, for the rate left, the smallest partition whose saturated throughput exceeds it
  (SI ``getEstimateTrpST``), there is no time sharing (``addModeltoSchedule`` skips it under self
  tuning), and glet's runtime then tunes the batch (``src/common/self_tuning.cpp``). We plan the batch
  that tuning aims at, the residual batch for the rate on that partition (the next larger partition when
  none meets the SLO there): planner ``glet-greedy``.
"""

from __future__ import annotations

from ..interference import InterferenceModel
from ..plan import (LATENCY_RATIO, MAX_BATCH, PARTITIONS, Allocation, ModelDemand, Partition, Plan,
                    residual_batch, saturated_batch, saturated_throughput, scaled_latency, time_share_glet)
from ..profiles import LatencyProfile, ProfileSet

MIN_GAIN = 1.05
MAX_MODELS = 3
RATE_SLACK = 1e-6
TRP_SLACK = 15.0          # req/s left over that glet does not place (SI TRP_SLACK)
INTF_THRESHOLD = 0.85     # share of its rate a model must keep under interference (SI INTF_THRESHOLD)
GLET_MODEL_IDS = ("lenet1", "lenet2", "lenet3", "lenet4", "lenet5", "lenet6", "googlenet", "resnet50",
                  "ssd-mobilenetv1", "vgg16", "mnasnet1_0", "mobilenet_v2", "densenet161", "bert")
GLET_NAMES = {"ssd-mobilenet": "ssd-mobilenetv1", "mnasnet": "mnasnet1_0", "densenet": "densenet161",
              "bert_base": "bert"}


def glet_order(demand: ModelDemand) -> tuple:
    """Sort key of glet's ``cmp_task_dsc``: increasing rate x SLO, then the larger glet model id first."""
    name = GLET_NAMES.get(demand.name, demand.name)
    gid = GLET_MODEL_IDS.index(name) if name in GLET_MODEL_IDS else -1
    return (demand.rate_rps * demand.slo_ms, -gid, demand.name)


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
                 partitions, ratio: float, max_batch: int, max_models: int, time_share_first: bool = False,
                 time_sharing: bool = True, self_tuning: bool = False):
        self.time_share_first, self.time_sharing, self.self_tuning = time_share_first, time_sharing, self_tuning
        self.profiles, self.max_gpus, self.interference = profiles, max_gpus, interference
        self.partitions, self.ratio, self.max_batch, self.max_models = sorted(partitions), ratio, max_batch, max_models
        # with a GPU limit every GPU exists from the start (SB initiateDevs); without one they are opened lazily
        self.gpus: list[list[Partition]] = [[Partition(100)] for _ in range(max_gpus or 0)]

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
        ``(gpulet, allocations, factor, duty_cycle_ms)``. A gpulet serving one model that slows down past
        its duty cycle (a saturated gpulet) keeps its SLO but serves less (SB ``adjustSatNode``); what that
        costs the model is judged after placement by the 85 % threshold (:meth:`retry_short`)."""
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
                alloc, duty = single
                updates.append((other, [alloc], f, duty))
                continue
            new_allocs, total = [], 0.0
            for a in other.allocations:
                lat = scaled_latency(self.profiles[a.model], a.batch, other.percent, f, self.ratio)
                total += lat
                new_allocs.append(Allocation(a.model, a.batch, a.rate_rps, lat, a.slo_ms))
            duty = other.duty_cycle_ms
            if total > duty * (1 + 1e-9):
                return None
            if any(duty + a.latency_ms > a.slo_ms + 1e-9 for a in new_allocs):
                return None
            updates.append((other, new_allocs, f, duty))
        return updates

    def rebatch(self, part: Partition, a: Allocation, factor: float) -> tuple[Allocation, float] | None:
        """A one-model gpulet slowed by ``factor``: keep its batch when it still meets the SLO and keeps
        up; else the residual batch for its rate with the factor; else the saturated batch with the
        factor, serving less. ``(allocation, duty cycle)`` or None
        when even a batch of one misses the SLO."""
        prof = self.profiles[a.model]
        lat = scaled_latency(prof, a.batch, part.percent, factor, self.ratio)
        duty = part.duty_cycle_ms
        if lat <= duty * (1 + 1e-9) and duty + lat <= a.slo_ms + 1e-9:
            return Allocation(a.model, a.batch, a.rate_rps, lat, a.slo_ms), duty
        res = residual_batch(prof, part.percent, a.slo_ms, a.rate_rps, factor, self.ratio, self.max_batch)
        if res is not None:
            b, lat, duty = res
            return Allocation(a.model, b, a.rate_rps, lat, a.slo_ms), duty
        sat = saturated_batch(prof, part.percent, a.slo_ms, factor, self.ratio, self.max_batch)
        if sat is None:
            return None
        b, lat = sat
        capacity = 1000.0 * b / lat
        served = min(a.rate_rps, capacity)
        return Allocation(a.model, b, served, lat, a.slo_ms), lat

    def apply(self, updates) -> None:
        for other, allocs, f, duty in updates:
            other.allocations, other.interference_factor, other.duty_cycle_ms = allocs, f, duty

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

    def time_share(self, d: ModelDemand, left: float) -> float:
        """glet's ``allocateTimeShare``: gpulets with occupancy < 1 and room for one more model, by decreasing
        occupancy; the first that takes the newcomer with glet's rule (:func:`..plan.time_share_glet`) serves
        its rate, and the scan repeats while more than ``TRP_SLACK`` is left. The rate served."""
        served = 0.0
        while left - served > (TRP_SLACK if served > 0 else RATE_SLACK):
            rate = left - served
            cands = [(part.occupancy, gi, k, part) for gi, gpu in enumerate(self.gpus) for k, part in enumerate(gpu)
                     if part.allocations and len(part.allocations) < self.max_models and part.occupancy < 1.0
                     and d.name not in part.models]
            for _, gi, _, part in sorted(cands, key=lambda t: (-t[0], t[1], t[2])):
                gpu = self.gpus[gi]
                members = [(a, self.profiles[a.model]) for a in part.allocations]
                f = max(self.pair_factor(m, self.max_batch, part.percent, gpu, part) for m in part.models + [d.name])
                shared = time_share_glet(members, Allocation(d.name, 1, rate, 0.0, d.slo_ms), self.profiles[d.name],
                                         part.duty_cycle_ms, part.occupancy, part.percent, f, self.ratio,
                                         self.max_batch)
                if shared is None:
                    continue
                saved = (part.allocations, part.interference_factor, part.duty_cycle_ms)
                part.allocations, part.duty_cycle_ms = shared
                part.interference_factor = f
                updates = self.neighbours_ok(gpu, part)
                if updates is None:
                    part.allocations, part.interference_factor, part.duty_cycle_ms = saved
                    continue
                self.apply(updates)
                served += rate
                break
            else:
                break
        return served

    def p_ideal(self, d: ModelDemand, left: float) -> int:
        prof = self.profiles[d.name]
        if self.self_tuning:  # glet getEstimateTrpST: smallest partition whose saturated throughput exceeds the rate
            for p in self.partitions:
                if saturated_throughput(prof, p, d.slo_ms, ratio=self.ratio, max_batch=self.max_batch) > left:
                    return p
            return self.partitions[-1]
        p_eff = efficient_partition(prof, d.slo_ms, self.partitions, self.ratio, self.max_batch)
        p_req = required_partition(prof, d.slo_ms, left, self.partitions, self.ratio, self.max_batch)
        return min(p_eff, p_req) if p_req is not None else p_eff

    def free_in_fit_order(self, size: int) -> list[tuple[int, Partition]]:
        """Free gpulets of at least ``size`` % in the order they are tried: with a GPU limit glet's
        ``findBestFit`` choice first (a whole free GPU, the last one scanned, unless a gpulet of exactly
        ``size`` % comes after it), then the same rule on what is left; without a limit smallest first."""
        free = [(gi, part) for gi, gpu in enumerate(self.gpus) for part in gpu
                if not part.allocations and part.percent >= size]
        if self.max_gpus is None:
            return sorted(free, key=lambda t: (t[1].percent, t[0]))
        order = []
        while free:
            best, best_diff = None, None
            for cand in free:
                diff = cand[1].percent - size
                if cand[1].percent == 100:
                    best, best_diff = cand, 0
                elif best_diff is None or diff <= best_diff:
                    best, best_diff = cand, diff
            order.append(best)
            free.remove(best)
        return order

    def place(self, d: ModelDemand, left: float) -> float | None:
        """Best fit of ``p_ideal`` (a free 100 % GPU is split into ``p_ideal`` and the rest); the rate
        served, or None when no such gpulet takes it."""
        p_ideal = self.p_ideal(d, left)
        if self.time_share_first and self.time_sharing:
            p_req = required_partition(self.profiles[d.name], d.slo_ms, left, self.partitions, self.ratio,
                                       self.max_batch)
            if p_req is not None and p_req <= p_ideal and self.time_share(d, left) >= left - RATE_SLACK:
                return left
        for gi, part in self.free_in_fit_order(p_ideal):
            gpu = self.gpus[gi]
            split = part.percent == 100 and p_ideal < 100
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

    def has_gpulet(self, model: str) -> bool:
        return any(model in part.models for gpu in self.gpus for part in gpu)

    def place_rate(self, d: ModelDemand, left: float, plan: Plan) -> None:
        """Place ``left`` req/s of ``d``: best fit of ``p_ideal`` (without a GPU limit GPUs are opened one
        at a time, time sharing tried before a GPU is opened), then glet's fallbacks: ``readjust`` into the
        leftover free gpulets, then time sharing. A remainder of at most ``TRP_SLACK`` is left
        unplaced once the model has a gpulet."""
        while left > (TRP_SLACK if self.has_gpulet(d.name) else RATE_SLACK):
            served = self.place(d, left)
            if served is None and self.max_gpus is None and self.time_sharing:
                served = self.time_share(d, left) or None
            if served is None and self.max_gpus is None:
                if not (self.gpus and all(not p.allocations for p in self.gpus[-1]) and len(self.gpus[-1]) == 1):
                    self.gpus.append([Partition(100)])
                    continue
            if served is None:
                served = self.readjust(d, left)
            if served is None and self.time_sharing:
                served = self.time_share(d, left) or None
            if served is None:
                plan.unserved_rps[d.name] = plan.unserved_rps.get(d.name, 0.0) + left
                return
            left -= served

    def served_rps(self, model: str) -> float:
        """What the model's gpulets serve: the routed rate, or less where a batch per duty cycle is less."""
        return sum(min(a.rate_rps, part.capacity_rps(a)) for gpu in self.gpus for part in gpu
                   for a in part.allocations if a.model == model)

    def remove(self, model: str) -> None:
        for gpu in self.gpus:
            for part in gpu:
                if model in part.models:
                    part.allocations = [a for a in part.allocations if a.model != model]
                    if not part.allocations:
                        part.duty_cycle_ms, part.interference_factor = 0.0, 1.0

    def retry_short(self, demands: list[ModelDemand], plan: Plan) -> None:
        """glet's interference threshold (module docstring): a model served below 85 % of its rate is
        placed again once; below 85 % after that retry the rest is unserved (the plan fails)."""
        for attempt in range(2):
            short = [d for d in demands if d.name not in plan.unserved_rps
                     and self.served_rps(d.name) < INTF_THRESHOLD * d.rate_rps - RATE_SLACK]
            for d in sorted(short, key=glet_order):
                if attempt == 0:
                    self.remove(d.name)
                    self.place_rate(d, d.rate_rps, plan)
                else:
                    plan.unserved_rps[d.name] = d.rate_rps - self.served_rps(d.name)

    def run(self, demands: list[ModelDemand], name: str) -> Plan:
        plan = Plan(name, demands=list(demands), max_gpus=self.max_gpus)
        for d in sorted(demands, key=glet_order):
            self.place_rate(d, d.rate_rps, plan)
        if self.interference is not None:
            self.retry_short(demands, plan)
        for d in demands:  # what a plan accepts to serve short of the rate (TRP_SLACK, 85 % threshold)
            gap = d.rate_rps - self.served_rps(d.name) - plan.unserved_rps.get(d.name, 0.0)
            if gap > RATE_SLACK:
                plan.tolerated_rps[d.name] = gap
        for gpu in self.gpus:  # merge free gpulets; an empty GPU is one 100 % gpulet again
            used = [p for p in gpu if p.allocations]
            free = sum(p.percent for p in gpu if not p.allocations)
            gpu[:] = used + ([Partition(free)] if free else [])
        plan.gpus = [gpu for gpu in self.gpus if any(p.allocations for p in gpu)]
        return plan


def plan_gpulet(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                interference: InterferenceModel | None = None, partitions=PARTITIONS,
                ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH, max_models: int = MAX_MODELS,
                time_share_first: bool = False, **_: object) -> Plan:
    """GPULet without interference awareness (``interference=None``) or with it ("gpulet+int")."""
    name = "gpulet+int" if interference is not None else "gpulet"
    return _Planner(profiles, max_gpus, interference, partitions, ratio, max_batch, max_models,
                    time_share_first).run(demands, name)


def plan_glet_timesharing(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                          ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH, max_models: int = MAX_MODELS,
                          **_: object) -> Plan:
    """glet's ``config-timesharing_only``: the same scheduler on whole GPUs with glet's time sharing (the
    paper's SBP baseline)."""
    return _Planner(profiles, max_gpus, None, (100,), ratio, max_batch, max_models).run(demands, "glet-timesharing")


def plan_glet_greedy(demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
                     partitions=PARTITIONS, ratio: float = LATENCY_RATIO, max_batch: int = MAX_BATCH,
                     **_: object) -> Plan:
    """glet's ``config-greedy_part``: self-tuning partition estimate, no time sharing, no interference (the
    paper's greedy best-fit baseline)."""
    return _Planner(profiles, max_gpus, None, partitions, ratio, max_batch, MAX_MODELS,
                    time_sharing=False, self_tuning=True).run(demands, "glet-greedy")
