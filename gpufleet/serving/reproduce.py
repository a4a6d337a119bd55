"""Reproduce the shape of the GPULet paper's Fig. 13: the highest request rate each planner sustains.

For each scenario (Table 4's scen1..scen5 and the game/traffic applications) and planner, the total rate
R (split evenly over the scenario's models) is searched: R is sustained when the planner places all of it
on at most ``max_gpus`` GPUs and the simulator (:mod:`.simulator`, interference applied to every plan, as
on a real GPU) reports at most 1 % SLO violations. Rates are scanned upwards on a geometric grid (8 steps
per doubling, from 100 req/s), all of a scenario's models scaled together, and the scan stops at the
first rate that is not sustained: the reported rate is sustained together with every lower grid rate
(as a load sweep that raises the rate until SLO violations pass 1 %). A plan that runs a partition near
occupancy 1 can fail at a low rate and pass at a higher one; crediting such a planner with the higher
rate (this module did until the GPULet review) overstates what it sustains.

Choi et al. (ATC'22) report gpulet+int at about 1.6x SBP (1.3-2.4x) and 1.8x greedy best-fit on average.
Their baselines are glet's own scheduler in two configurations (``resource/SchedConfigs`` of casys-kaist/glet:
``config-timesharing_only.json``, ``config-greedy_part.json``), planners ``glet-timesharing`` and
``glet-greedy`` here (:mod:`.planners.gpulet`); Nexus's SBP (``sbp``) and our greedy (``greedy``) are
measured alongside for reference.

A baseline that sustains nothing (0 req/s, it fails at the first grid rate) has no ratio: the ratio is
``None`` and the geometric mean is taken over the scenarios where the baseline sustains something, with
the left-out scenarios named next to it (:func:`ratio_summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .interference import InterferenceModel
from .plan import ModelDemand
from .planners import make_plan
from .profiles import ProfileSet
from .simulator import simulate

VIOLATION_LIMIT = 0.01
SBP_BASELINE, GREEDY_BASELINE = "glet-timesharing", "glet-greedy"
PAPER_PLANNERS = ("gpulet+int", "gpulet", SBP_BASELINE, GREEDY_BASELINE, "sbp", "greedy")
RATE_ROOM, LOW_RATE_ROOM, LOW_RATE_RPS = 1.2, 1.5, 125.0


def planning_demands(demands: list[ModelDemand]) -> list[ModelDemand]:
    """The rates a planner is asked for, as glet's server asks its scheduler (``GlobalScheduler::setupTasks``
    in glet's ``src/service/global_scheduler.cpp``): the measured rate x ``RATE_ROOM`` (1.2), x 1.5
    below 125 req/s. A plan for exactly the mean rate of a Poisson stream runs its duty cycles at load 1
    and misses SLOs in every burst; every planner gets the same headroom."""
    return [ModelDemand(d.name, d.rate_rps * (LOW_RATE_ROOM if d.rate_rps < LOW_RATE_RPS else RATE_ROOM), d.slo_ms)
            for d in demands]


def check_rate(planner: str, demands: list[ModelDemand], total_rps: float, profiles: ProfileSet,
               interference: InterferenceModel, max_gpus: int, duration_s: float, seed: int) -> tuple[bool, bool]:
    """``(placed, sustained)``: the planner placed all of the rate (with glet's headroom,
    :func:`planning_demands`); and the simulation at the rate itself met the 1 % limit."""
    scaled = [ModelDemand(d.name, total_rps / len(demands), d.slo_ms) for d in demands]
    plan = make_plan(planner, planning_demands(scaled), profiles, max_gpus=max_gpus, interference=interference)
    if not plan.feasible:
        return False, False
    result = simulate(plan, profiles, duration_s=duration_s, interference=interference, seed=seed,
                      rates_rps={d.name: d.rate_rps for d in scaled})
    return True, result.violation_ratio <= VIOLATION_LIMIT


def rate_grid(start_rps: float = 100.0, stop_rps: float = 12800.0, per_doubling: int = 8) -> list[float]:
    n = int(round(np.log2(stop_rps / start_rps) * per_doubling))
    return [start_rps * 2 ** (i / per_doubling) for i in range(n + 1)]


def max_sustained_rate(planner: str, demands: list[ModelDemand], profiles: ProfileSet,
                       interference: InterferenceModel, max_gpus: int = 4, duration_s: float = 5.0,
                       seed: int = 0, grid: list[float] | None = None) -> float:
    """The highest rate of the grid (100 req/s doubling every 8 steps) that the planner places and the
    simulation sustains together with every lower grid rate (0 when the first rate fails)."""
    best = 0.0
    for rate in grid or rate_grid():
        _, ok = check_rate(planner, demands, rate, profiles, interference, max_gpus, duration_s, seed)
        if not ok:
            break
        best = rate
    return best


def max_placed_rate(planner: str, demands: list[ModelDemand], profiles: ProfileSet,
                    interference: InterferenceModel, max_gpus: int = 4, grid: list[float] | None = None) -> float:
    """The highest grid rate the planner places (with the headroom) together with every lower one, without
    simulating: the packing limit, to tell a planner that runs out of GPUs from one whose plan misses SLOs."""
    best = 0.0
    for rate in grid or rate_grid():
        scaled = [ModelDemand(d.name, rate / len(demands), d.slo_ms) for d in demands]
        if not make_plan(planner, planning_demands(scaled), profiles, max_gpus=max_gpus,
                         interference=interference).feasible:
            break
        best = rate
    return best


@dataclass
class ReproductionRow:
    scenario: str
    rates: dict[str, float]  # planner -> max sustained total req/s
    placed: dict[str, float] = field(default_factory=dict)  # planner -> max placed total req/s

    def ratio(self, planner: str, baseline: str, placed: bool = False) -> float | None:
        """``planner / baseline``; None when the baseline sustains (or places) nothing."""
        rates = self.placed if placed else self.rates
        base = rates.get(baseline, 0.0)
        return None if base <= 0 else rates[planner] / base


def reproduce(scenarios: dict[str, list[ModelDemand]], profiles: ProfileSet, interference: InterferenceModel,
              planners=PAPER_PLANNERS, max_gpus: int = 4,
              duration_s: float = 5.0, seed: int = 0, progress=None) -> list[ReproductionRow]:
    rows = []
    for name, demands in scenarios.items():
        rates, placed = {}, {}
        for planner in planners:
            rates[planner] = max_sustained_rate(planner, demands, profiles, interference, max_gpus, duration_s, seed)
            placed[planner] = max_placed_rate(planner, demands, profiles, interference, max_gpus)
            if progress:
                progress(name, planner, rates[planner])
        rows.append(ReproductionRow(name, rates, placed))
    return rows


def geometric_mean(values) -> float | None:
    """Geometric mean of the positive ratios (None entries and zeros left out); None when none is left."""
    v = np.array([x for x in values if x is not None and x > 0])
    return float(np.exp(np.log(v).mean())) if v.size else None


def ratio_summary(rows: list[ReproductionRow], planner: str, baseline: str,
                  placed: bool = False) -> tuple[float | None, list[str]]:
    """The geometric mean of ``planner / baseline`` over the scenarios, and the scenarios left out of it
    because the baseline sustains (or places) nothing there."""
    ratios = {r.scenario: r.ratio(planner, baseline, placed) for r in rows}
    left_out = [name for name, x in ratios.items() if x is None]
    return geometric_mean(ratios.values()), left_out
