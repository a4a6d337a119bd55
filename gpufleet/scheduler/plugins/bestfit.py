"""BestFit: the FGD paper's best-fit baseline (Sec. 6.1; simulator hkust-adsl/kubernetes-scheduler-simulator
pkg/simulator/plugin/best_fit_score.go).

Rule: leftover = 0.5 * (free CPU - pod CPU) / 128,000 + 0.5 * (total free GPU milli - pod GPU milli) / 8,000
(lower is a tighter fit); raw score = trunc((1 - leftover) * 100); NormalizeScore maps the raw scores of the
feasible nodes linearly onto 0..100: ``(raw - lowest) * 100 // (highest - lowest)`` (all 0 when equal), as the
simulator's NormalizeScore. A CPU-only pod thus goes where the fewest GPUs are free. The pod's CPU is the
non-zero request; GPUs of the chosen node by best fit (GpuFit's default).
"""

from __future__ import annotations

import numpy as np

from ..fragmentation import fgd_cpu_milli
from ..framework import MAX_NODE_SCORE, Plugin
from .dotprod import MAX_SPEC_CPU_MILLI, MAX_SPEC_GPU_MILLI


def min_max_normalize(scores: np.ndarray) -> np.ndarray:
    """The simulator's NormalizeScore: (s - lowest) * 100 // (highest - lowest); all 0 when they are equal."""
    scores = np.asarray(scores, dtype=np.int64)
    if not len(scores):
        return scores
    low, high = scores.min(), scores.max()
    if high == low:
        return np.zeros_like(scores)
    return (scores - low) * MAX_NODE_SCORE // (high - low)


class BestFit(Plugin):
    name = "BestFit"

    def score(self, state, pod, cluster, nodes):
        cpu_left = cluster.cpu_free_milli[nodes] - fgd_cpu_milli(pod)
        gpu_left = cluster.gpu_free_milli[nodes].sum(axis=1) - pod.gpu_request_milli
        leftover = cpu_left / MAX_SPEC_CPU_MILLI * 0.5 + gpu_left / MAX_SPEC_GPU_MILLI * 0.5
        return np.trunc((1.0 - leftover) * MAX_NODE_SCORE).astype(np.int64)

    def normalize_score(self, state, pod, cluster, nodes, scores):
        return min_max_normalize(scores)
