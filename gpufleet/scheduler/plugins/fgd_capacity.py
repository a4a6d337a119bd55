"""CapacityFGD: gpufleet's policy that allocates more GPU than FGD on the openb traces (docs/fgd.md).

Rule: FGD's gradient descent (plugins/fgd.py: simulate each candidate placement, fractional pods on every
fitting GPU) on a blended fragmentation measure
    F'(n) = (1 - alpha) * F_FGD(n) + alpha * F_cap(n)
where F_cap (gpufleet.scheduler.fragmentation.capacity_fragment) counts the free GPU milli that a stream of
copies of each typical pod could not consume given the node's free CPU and per-GPU free milli (FGD's F only
asks whether one copy fits, so it does not see CPU being drained from a node whose GPUs still need it).
score = floor(sigmoid((F'_before - F'_after) / scale) * 100); ties between nodes go to the framework's
tie-break. The fractional pod's GPU is the best candidate (CycleState ``gpu_choice``).

Args: ``typicalPods`` (as FGD), ``alpha`` (0..1, default 1.0; the built-in policy ``fgd-cap`` uses 0.5, the
best of 0, 0.5 and 1 on openb default seeds 42-43), ``scale`` (milli, default 1000; 300 and 3000 were not better).
"""

from __future__ import annotations

from ..fragmentation import TypicalPods, capacity_fragment
from .fgd import FGD


class CapacityFGD(FGD):
    """FGD's candidate placements, GPU choice, cache and Reserve, with the blended measure and its scale."""

    name = "CapacityFGD"
    ARGS = ("typicalPods", "alpha", "scale")

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        try:
            self.alpha = float(self.args.get("alpha", 1.0))
            self.scale = float(self.args.get("scale", 1000.0))
        except (TypeError, ValueError):
            raise ValueError("alpha and scale: expected numbers") from None
        if not 0.0 <= self.alpha <= 1.0 or self.scale <= 0:
            raise ValueError(f"alpha: expected 0..1 and scale > 0, got {self.alpha}, {self.scale}")

    def measure(self, typical: TypicalPods, gpu_free, cpu_free, model, names):
        f = 0.0
        if self.alpha < 1.0:
            f = (1.0 - self.alpha) * typical.fragment(gpu_free, cpu_free, model, names)
        if self.alpha > 0.0:
            f = f + self.alpha * capacity_fragment(typical, gpu_free, cpu_free, model, names)
        return f
