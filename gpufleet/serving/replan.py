"""Re-planning when request rates change, with hysteresis.

GPULet re-plans every period (20 s) from EWMA request rates sampled every 500 ms (Choi et al., ATC'22
Sec. 6); a new partition costs a process start, kernel loading and warm-up, so a reorganisation should
not be paid for noise. Our rule:

* rates are smoothed: ``ewma = alpha x sample + (1 - alpha) x ewma`` (alpha 0.3 by default);
* the current plan is kept while, for every model, its smoothed rate stays within the plan's band:
  at most the rate it was planned for (``planned``, which already includes ``headroom``) and at least
  ``shrink_below x planned``;
* otherwise, and only when ``cooldown_s`` has passed since the last change, the planner runs again with
  the smoothed rates times ``1 + headroom``. A model whose rate rises above its capacity is re-planned at
  once (no cooldown): under-provisioning violates SLOs, over-provisioning only wastes GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .plan import ModelDemand, Plan


@dataclass
class Decision:
    replanned: bool
    reason: str
    plan: Plan


@dataclass
class Replanner:
    planner: Callable[[list[ModelDemand]], Plan]
    slo_ms: dict[str, float]
    headroom: float = 0.1
    shrink_below: float = 0.6
    cooldown_s: float = 20.0
    alpha: float = 0.3
    ewma: dict[str, float] = field(default_factory=dict)
    planned: dict[str, float] = field(default_factory=dict)
    plan: Plan | None = None
    last_change_s: float = float("-inf")

    def observe(self, rates_rps: dict[str, float], now_s: float) -> Decision:
        for model, rate in rates_rps.items():
            prev = self.ewma.get(model)
            self.ewma[model] = rate if prev is None else self.alpha * rate + (1 - self.alpha) * prev
        if self.plan is None:
            return self._replan(now_s, "initial plan")
        grown = [m for m, r in self.ewma.items() if r > self.planned.get(m, 0.0) + 1e-9]
        if grown:
            return self._replan(now_s, f"rate of {', '.join(sorted(grown))} above planned capacity")
        shrunk = [m for m, r in self.ewma.items() if r < self.shrink_below * self.planned.get(m, 0.0)]
        if shrunk and now_s - self.last_change_s >= self.cooldown_s:
            return self._replan(now_s, f"rate of {', '.join(sorted(shrunk))} below {self.shrink_below:g} x planned")
        reason = "within band" if not shrunk else "shrunk, but within cooldown"
        return Decision(False, reason, self.plan)

    def _replan(self, now_s: float, reason: str) -> Decision:
        self.planned = {m: r * (1 + self.headroom) for m, r in self.ewma.items()}
        demands = [ModelDemand(m, r, self.slo_ms[m]) for m, r in sorted(self.planned.items())]
        self.plan = self.planner(demands)
        self.last_change_s = now_s
        return Decision(True, reason, self.plan)
