"""TaintToleration: filter on untolerated NoSchedule/NoExecute taints; score PreferNoSchedule taints.

Rule: kube-scheduler plugins/tainttoleration/taint_toleration.go. Filter reason names the first
untolerated NoSchedule/NoExecute taint in the node's spec.taints order (v1helper
FindMatchingUntoleratedTaint): "node(s) had untolerated taint {key: value}". Score counts the node's
PreferNoSchedule taints that the pod's tolerations (effect empty or PreferNoSchedule) do not tolerate;
NormalizeScore is helper.DefaultNormalizeScore reversed: ``100 - count * 100 // maxCount`` (all 100 when
no node has such a taint).
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, FilterResult, Plugin


def default_normalize(scores: np.ndarray, reverse: bool) -> np.ndarray:
    """helper.DefaultNormalizeScore(MaxNodeScore, reverse, scores)."""
    max_count = int(scores.max()) if len(scores) else 0
    if max_count == 0:
        return np.full(len(scores), MAX_NODE_SCORE if reverse else 0, dtype=np.int64)
    out = MAX_NODE_SCORE * scores // max_count
    return MAX_NODE_SCORE - out if reverse else out


def untolerated(cluster, tolerations, effects: tuple[str, ...]) -> np.ndarray:
    """Bool per distinct taint of the cluster: has one of ``effects`` and no toleration tolerates it."""
    return np.array([t.effect in effects and not any(tol.tolerates(t) for tol in tolerations)
                     for t in cluster.taints], dtype=bool)


class TaintToleration(Plugin):
    name = "TaintToleration"

    def filter(self, state, pod, cluster, nodes):
        if not cluster.taints:
            return FilterResult.all_pass(len(nodes))
        bad = untolerated(cluster, pod.tolerations, ("NoSchedule", "NoExecute"))
        if not bad.any():
            return FilterResult.all_pass(len(nodes))
        matrix = cluster.taint_matrix[nodes][:, bad]
        failing = matrix.any(axis=1)
        if not failing.any():
            return FilterResult.all_pass(len(nodes))
        # The reason names one untolerated taint per node: the first in the node's own taint list.
        bad_taints = [t for t, b in zip(cluster.taints, bad) if b]
        position = cluster.taint_position[nodes][:, bad]
        first = np.argmin(np.where(matrix, position, np.iinfo(np.int32).max), axis=1)
        failures = [(f"node(s) had untolerated taint {bad_taints[k]}", failing & (first == k))
                    for k in np.unique(first[failing])]
        return FilterResult.from_failures(len(nodes), failures, unresolvable=True)

    def score(self, state, pod, cluster, nodes):
        if not cluster.taints:
            return np.zeros(len(nodes), dtype=np.int64)
        tolerations = [t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")]
        bad = untolerated(cluster, tolerations, ("PreferNoSchedule",))
        return cluster.taint_matrix[nodes][:, bad].sum(axis=1).astype(np.int64)

    def normalize_score(self, state, pod, cluster, nodes, scores):
        return default_normalize(scores, reverse=True)
