"""Planners: each turns model demands (rate, SLO) and latency profiles into a :class:`~..plan.Plan`.

| name | module | sharing |
|---|---|---|
| ``gpulet+int`` | :mod:`.gpulet` (interference-aware) | spatial + temporal |
| ``gpulet`` | :mod:`.gpulet` | spatial + temporal |
| ``glet-timesharing`` | :mod:`.gpulet` (glet's ``config-timesharing_only``: the paper's SBP baseline) | temporal |
| ``glet-greedy`` | :mod:`.gpulet` (glet's ``config-greedy_part``: the paper's greedy baseline) | spatial |
| ``sbp`` | :mod:`.nexus` (Nexus squishy bin packing) | temporal |
| ``greedy`` | :mod:`.greedy` (greedy best-fit) | spatial |
| ``dedicated`` | :mod:`.dedicated` (one model per GPU) | none |
"""

from __future__ import annotations

from typing import Callable

from ..errors import ServingError
from ..interference import InterferenceModel
from ..plan import ModelDemand, Plan
from ..profiles import ProfileSet
from .dedicated import plan_dedicated
from .gpulet import plan_glet_greedy, plan_glet_timesharing, plan_gpulet
from .greedy import plan_greedy
from .nexus import plan_sbp

PLANNERS = ("gpulet+int", "gpulet", "glet-timesharing", "glet-greedy", "sbp", "greedy", "dedicated")


def make_plan(planner: str, demands: list[ModelDemand], profiles: ProfileSet, max_gpus: int | None = None,
              interference: InterferenceModel | None = None, **options) -> Plan:
    """Run planner ``planner``; ``gpulet+int`` uses ``interference`` (the paper's defaults when None)."""
    if planner == "gpulet+int":
        return plan_gpulet(demands, profiles, max_gpus, interference or InterferenceModel(), **options)
    funcs: dict[str, Callable[..., Plan]] = {"gpulet": plan_gpulet, "glet-timesharing": plan_glet_timesharing,
                                             "glet-greedy": plan_glet_greedy, "sbp": plan_sbp,
                                             "greedy": plan_greedy, "dedicated": plan_dedicated}
    if planner not in funcs:
        raise ServingError(f"unknown planner {planner!r} (expected one of {', '.join(PLANNERS)})")
    return funcs[planner](demands, profiles, max_gpus, **options)


__all__ = ["PLANNERS", "make_plan", "plan_dedicated", "plan_glet_greedy", "plan_glet_timesharing", "plan_gpulet",
           "plan_greedy", "plan_sbp"]
