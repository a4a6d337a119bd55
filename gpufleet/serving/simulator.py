"""Request simulator: run a plan against Poisson, evenly spaced or trace-driven request streams.

Per model, requests arrive as a Poisson process at its rate (or at the times of a trace) and are split
over the partitions serving that model in proportion to the planned rates (a random split of a Poisson
stream is again Poisson); ``process="uniform"`` gives each partition evenly spaced requests at its share
instead (the plan's own assumption: a plan executed that way at its planned rates must meet every SLO).

Every partition executes its plan as Nexus and GPULet do (Shen et al. SOSP'19 Sec. 6.1; Choi et al.
ATC'22 Sec. 5), the execution model behind the planners' bound "a request waits at most one duty cycle d,
then runs: latency <= d + l_k(b_k)":

* **duty cycle**: a cycle runs each of the partition's models once, in plan order, each in its own slot:
  model k starts ``sum_{j<k} l_j(b_j)`` (planned latencies) after the cycle starts, or when the model
  before it is done if that is later. Model k takes the oldest queued requests, **at most its planned
  batch b_k**, and runs them; a batch of n takes the profiled ``L(n, p)`` times the interference factor
  of its GPU (no safety ratio: that margin belongs to the planner). Fixed slots make each model's turns
  exactly one cycle apart whatever the other models' batches are, so the ``d + l_k`` bound holds;
* **next cycle**: one duty cycle after the previous one started, or earlier, as soon as that one's
  batches are done, when some model has its full planned batch queued (glet's server dispatches a
  batch once it holds the planned batch size or the duty cycle has passed, and gives a gpulet its next
  batch as soon as it is free: ``initProxy`` in ``src/service/proxy_thread.cpp`` and
  ``staticMPSScheduler`` in ``src/service/global_scheduler.cpp`` of casys-kaist/glet). Starting early
  only shortens the wait of every model, so the bound still holds, and a burst is worked off at the
  partition's full speed instead of one planned batch per duty cycle;
* **saturated** partitions (occupancy 1: the duty cycle is the batch latency) run their planned batch
  back to back, and start at once with what is queued;
* an idle partition starts its next cycle when the next request arrives;
* a request that cannot meet its SLO even as a batch of one when its model's turn comes is dropped
  (Nexus's early drop) and counts as a violation.

Requests beyond a model's planned batch wait for the next cycle: a plan for exactly the mean rate of a
Poisson stream misses SLOs in its bursts, which is why glet plans with headroom
(:func:`.reproduce.planning_demands`).

The interference factor of a partition is the largest pairwise factor (:mod:`.interference`) between
its models and the models of the other partitions of the same GPU at their planned batch sizes; a GPU
with one partition has factor 1. A request's latency is completion minus arrival; it violates the SLO
when larger than the model's SLO or when dropped. Requests for a model the plan does not serve all
violate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ServingError
from .interference import InterferenceModel
from .plan import Partition, Plan
from .profiles import ProfileSet


@dataclass
class ModelStats:
    model: str
    slo_ms: float
    requests: int = 0
    served_in_slo: int = 0
    dropped: int = 0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def violations(self) -> int:
        return self.requests - self.served_in_slo

    @property
    def slo_attainment(self) -> float:
        return 1.0 if self.requests == 0 else self.served_in_slo / self.requests

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")


@dataclass
class SimResult:
    planner: str
    duration_s: float
    gpus_used: int
    models: dict[str, ModelStats]

    @property
    def requests(self) -> int:
        return sum(m.requests for m in self.models.values())

    @property
    def violation_ratio(self) -> float:
        total = self.requests
        return 0.0 if total == 0 else sum(m.violations for m in self.models.values()) / total

    @property
    def goodput_rps(self) -> float:
        return sum(m.served_in_slo for m in self.models.values()) / self.duration_s

    def to_dict(self) -> dict:
        return {
            "planner": self.planner, "duration_s": self.duration_s, "gpus_used": self.gpus_used,
            "requests": self.requests, "violation_ratio": round(self.violation_ratio, 5),
            "slo_attainment": round(1 - self.violation_ratio, 5), "goodput_rps": round(self.goodput_rps, 2),
            "models": {m.model: {"requests": m.requests, "slo_ms": m.slo_ms, "violations": m.violations,
                                 "dropped": m.dropped, "slo_attainment": round(m.slo_attainment, 5),
                                 "p50_ms": round(m.percentile_ms(50), 3), "p99_ms": round(m.percentile_ms(99), 3)}
                       for m in self.models.values()},
        }


def partition_factors(plan: Plan, interference: InterferenceModel | None) -> dict[int, float]:
    """``id(partition) -> factor``: the largest pairwise slowdown against the GPU's other partitions."""
    out: dict[int, float] = {}
    for gpu in plan.gpus:
        for part in gpu:
            f = 1.0
            if interference is not None:
                for other in gpu:
                    if other is part:
                        continue
                    for a in part.allocations:
                        for o in other.allocations:
                            f = max(f, interference.factor(a.model, a.batch, part.percent, o.model, o.batch, other.percent))
            out[id(part)] = f
    return out


def poisson_arrivals(rate_rps: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (ms) of a Poisson process on [0, duration)."""
    if rate_rps <= 0:
        return np.zeros(0)
    n = int(rate_rps * duration_s * 1.2 + 10 * np.sqrt(rate_rps * duration_s) + 10)
    times = np.cumsum(rng.exponential(1000.0 / rate_rps, n))
    while times[-1] < duration_s * 1000.0:
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1000.0 / rate_rps, n))])
    return times[times < duration_s * 1000.0]


def uniform_arrivals(rate_rps: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Evenly spaced arrival times (ms) at ``rate_rps`` on [0, duration), from a random phase."""
    if rate_rps <= 0:
        return np.zeros(0)
    gap = 1000.0 / rate_rps
    times = rng.uniform(0, gap) + gap * np.arange(int(duration_s * rate_rps) + 1)
    return times[times < duration_s * 1000.0]


def _run_partition(part: Partition, profiles: ProfileSet, factor: float,
                   queues: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
    """Latencies (ms, NaN = dropped) of each allocation's requests, in arrival order (rules: module
    docstring)."""
    allocs = part.allocations
    heads = [0] * len(allocs)
    lat = [np.full(q.size, np.nan) for q in queues]
    exec_ms = [profiles[a.model].latencies(part.percent) * factor for a in allocs]
    caps = [max(1, min(a.batch, e.size)) for a, e in zip(allocs, exec_ms)]
    slots = np.concatenate([[0.0], np.cumsum([a.latency_ms for a in allocs])[:-1]])
    duty = part.duty_cycle_ms if part.duty_cycle_ms > 0 else float(sum(a.latency_ms for a in allocs))
    back_to_back = part.occupancy >= 1 - 1e-9
    t = 0.0
    while True:
        pending = [q[h] for q, h in zip(queues, heads) if h < q.size]
        if not pending:
            break
        if min(pending) > t:
            t = min(pending)  # idle: the next cycle starts with the next request
        start = now = t
        for k, a in enumerate(allocs):
            now = max(now, start + slots[k])  # each model runs in its slot of the cycle
            q, h = queues[k], heads[k]
            # early drop: requests that cannot finish within the SLO even as a batch of one
            limit = int(np.searchsorted(q, now + exec_ms[k][0] - a.slo_ms, side="left"))
            if limit > h:
                heads[k] = h = limit  # lat stays NaN: dropped
            ready = int(np.searchsorted(q, now, side="right"))
            n = min(ready - h, caps[k])
            if n <= 0:
                continue
            done = now + exec_ms[k][n - 1]
            lat[k][h:h + n] = done - q[h:h + n]
            heads[k] = h + n
            now = done
        if back_to_back:
            t = now
            continue
        # the next cycle: one duty cycle after this one started, or as soon as some model has its full
        # planned batch queued (never before this cycle's batches are done)
        full = [queues[k][heads[k] + caps[k] - 1] for k in range(len(allocs)) if heads[k] + caps[k] <= queues[k].size]
        t = max(now, min([start + duty] + full))
    return [(l, 0) for l in lat]


def simulate(plan: Plan, profiles: ProfileSet, duration_s: float = 10.0,
             rates_rps: dict[str, float] | None = None, arrivals_ms: dict[str, np.ndarray] | None = None,
             interference: InterferenceModel | None = None, seed: int = 0,
             process: str = "poisson") -> SimResult:
    """Simulate ``plan`` for ``duration_s``; request rates default to the plan's demands, ``arrivals_ms``
    (a trace: per model sorted arrival times in ms) replaces the generated streams of its models.
    ``process``: ``"poisson"``, or ``"uniform"`` (each allocation gets evenly spaced requests at its
    share of the model's rate, from a random phase: the plan's own assumption, so a plan executed this
    way at its planned rates must show no violation)."""
    if process not in ("poisson", "uniform"):
        raise ServingError(f"unknown arrival process {process!r} (expected poisson or uniform)")
    rng = np.random.default_rng(seed)
    slo = {d.name: d.slo_ms for d in plan.demands}
    rates = {d.name: d.rate_rps for d in plan.demands}
    rates.update(rates_rps or {})
    arrivals_ms = arrivals_ms or {}
    for m in arrivals_ms:
        slo.setdefault(m, max((a.slo_ms for _, p in plan.partitions() for a in p.allocations if a.model == m),
                              default=0.0))
    stats = {m: ModelStats(m, slo[m]) for m in sorted(set(rates) | set(arrivals_ms))}
    routes: dict[str, list[tuple[Partition, int]]] = {}
    for _, part in plan.partitions():
        for k, a in enumerate(part.allocations):
            routes.setdefault(a.model, []).append((part, k))
    queues: dict[tuple[int, int], np.ndarray] = {}
    for m, st in stats.items():
        targets = routes.get(m, [])
        weights = np.array([p.allocations[k].rate_rps for p, k in targets], dtype=float)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(targets), 1 / max(1, len(targets)))
        if process == "uniform" and m not in arrivals_ms and targets:
            streams = [uniform_arrivals(rates.get(m, 0.0) * w, duration_s, rng) for w in weights]
            st.requests = sum(int(s.size) for s in streams)
            for (p, k), times in zip(targets, streams):
                queues[(id(p), k)] = times
            continue
        times = np.sort(np.asarray(arrivals_ms[m], dtype=float)) if m in arrivals_ms else \
            poisson_arrivals(rates.get(m, 0.0), duration_s, rng)
        st.requests = int(times.size)
        if not targets:
            continue
        choice = rng.choice(len(targets), size=times.size, p=weights)
        for i, (p, k) in enumerate(targets):
            queues[(id(p), k)] = times[choice == i]
    factors = partition_factors(plan, interference)
    collected: dict[str, list[np.ndarray]] = {m: [] for m in stats}
    for _, part in plan.partitions():
        if not part.allocations:
            continue
        qs = [queues.get((id(part), k), np.zeros(0)) for k in range(len(part.allocations))]
        for a, (lat, _) in zip(part.allocations, _run_partition(part, profiles, factors[id(part)], qs)):
            collected[a.model].append(lat)
    for m, st in stats.items():
        lat = np.concatenate(collected[m]) if collected[m] else np.zeros(0)
        done = lat[~np.isnan(lat)]
        st.dropped = int(np.isnan(lat).sum())
        st.served_in_slo = int((done <= st.slo_ms + 1e-9).sum())
        st.latencies_ms = done
    return SimResult(plan.planner, duration_s, plan.gpus_used, stats)


def plot_result(result: SimResult, path: str | Path) -> Path:
    """Latency CDF per model (normalised to its SLO) and SLO attainment per model, as one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for st in result.models.values():
        if st.latencies_ms.size:
            x = np.sort(st.latencies_ms) / st.slo_ms
            ax1.plot(x, np.arange(1, x.size + 1) / st.requests, label=st.model)
    ax1.axvline(1.0, color="k", linestyle="--", linewidth=1)
    ax1.set_xlabel("latency / SLO")
    ax1.set_ylabel("fraction of requests")
    ax1.set_title("latency CDF (dropped requests never reach 1)")
    ax1.legend(fontsize=7)
    names = list(result.models)
    ax2.bar(names, [100 * result.models[n].slo_attainment for n in names])
    ax2.axhline(99, color="r", linestyle="--", linewidth=1)
    ax2.set_ylabel("SLO attainment (%)")
    ax2.set_title(f"{result.planner}: {result.gpus_used} GPUs, {result.goodput_rps:.0f} req/s in SLO")
    ax2.tick_params(axis="x", rotation=30, labelsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
