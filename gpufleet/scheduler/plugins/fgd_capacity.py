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

import numpy as np

from ..fragmentation import (FragmentCache, GpuChoice, TypicalPods, candidate_placements, capacity_fragment, fgd_cpu_milli,
                             pod_shape_key, typical_or_pod, typical_pods_arg)
from ..framework import Plugin


class CapacityFGD(Plugin):
    name = "CapacityFGD"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        unknown = set(self.args) - {"typicalPods", "alpha", "scale"}
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} (expected typicalPods, alpha, "
                             "scale)")
        self.typical = typical_pods_arg(self.args, self.name)
        try:
            self.alpha = float(self.args.get("alpha", 1.0))
            self.scale = float(self.args.get("scale", 1000.0))
        except (TypeError, ValueError):
            raise ValueError("alpha and scale: expected numbers") from None
        if not 0.0 <= self.alpha <= 1.0 or self.scale <= 0:
            raise ValueError(f"alpha: expected 0..1 and scale > 0, got {self.alpha}, {self.scale}")
        self.cache = FragmentCache()

    def typical_for(self, pod) -> TypicalPods:
        return typical_or_pod(self.typical, pod)

    def measure(self, typical, gpu_free, cpu_free, model, names):
        f = 0.0
        if self.alpha < 1.0:
            f = (1.0 - self.alpha) * typical.fragment(gpu_free, cpu_free, model, names)
        if self.alpha > 0.0:
            f = f + self.alpha * capacity_fragment(typical, gpu_free, cpu_free, model, names)
        return f

    def _evaluate(self, pod):
        def evaluate(cluster, nodes):
            gpu_free = cluster.gpu_free_milli[nodes].astype(np.int64)
            cpu_free = cluster.cpu_free_milli[nodes]
            model = cluster.gpu_model_id[nodes]
            names = cluster.gpu_model_names
            typical = self.typical_for(pod)
            before = self.measure(typical, gpu_free, cpu_free, model, names)
            cand = candidate_placements(gpu_free, cpu_free, fgd_cpu_milli(pod), pod.num_gpu, pod.gpu_milli)
            d, c, g = cand.gpu_free.shape
            after = self.measure(typical, cand.gpu_free.reshape(d * c, g), np.repeat(cand.cpu_free, c),
                                 np.repeat(model, c), names).reshape(d, c)
            delta = before[:, None] - after
            score = np.trunc(100.0 / (1.0 + np.exp(-delta / self.scale))).astype(np.int64)
            score = np.where(cand.valid, score, -1)
            best = np.argmax(score, axis=1)
            rows = np.arange(len(nodes))
            return np.maximum(score[rows, best], 0), cand.choice[rows, best]
        return evaluate

    def reserve(self, state, pod, cluster, node_index):
        """The fractional pod's GPU when scoring was skipped (one feasible node); runs before GpuFit."""
        if pod.num_gpu == 1 and pod.gpu_milli < 1000 and "gpu_choice" not in state:
            self.score(state, pod, cluster, np.array([node_index]))
        return None

    def score(self, state, pod, cluster, nodes):
        scores, choice = self.cache.lookup(cluster, nodes, (pod_shape_key(pod), self.typical is None), self._evaluate(pod))
        if pod.num_gpu == 1 and pod.gpu_milli < 1000:
            state["gpu_choice"] = GpuChoice(cluster.num_nodes, nodes, choice)
        return scores
