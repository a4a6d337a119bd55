"""Small helpers for the scheduler tests: run one plugin the way the framework does."""

from __future__ import annotations

import numpy as np

from gpufleet.cluster import ClusterState
from gpufleet.scheduler import CycleState, Status
from gpufleet.scheduler.framework import Code


def plugin_scores(plugin, cluster: ClusterState, pod, nodes=None) -> list[int] | None:
    """PreScore, Score and NormalizeScore of one plugin over ``nodes`` (default: all); None when skipped."""
    nodes = np.arange(cluster.num_nodes) if nodes is None else np.asarray(nodes)
    state = CycleState()
    if plugin.implements("preScore"):
        status = plugin.pre_score(state, pod, cluster, nodes)
        if isinstance(status, Status) and status.code == Code.SKIP:
            return None
    scores = np.asarray(plugin.score(state, pod, cluster, nodes), dtype=np.int64)
    if hasattr(plugin, "normalize_score"):
        scores = np.asarray(plugin.normalize_score(state, pod, cluster, nodes, scores))
    return [int(s) for s in scores]


def filter_result(plugin, cluster: ClusterState, pod, nodes=None):
    nodes = np.arange(cluster.num_nodes) if nodes is None else np.asarray(nodes)
    result = plugin.filter(CycleState(), pod, cluster, nodes)
    reasons = {reason: [int(i) for i in np.flatnonzero(fail)] for reason, fail in result.failures}
    return [bool(x) for x in result.mask], reasons


class Clock:
    """A settable clock for the queue and the scheduler: tests move ``now`` by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now
