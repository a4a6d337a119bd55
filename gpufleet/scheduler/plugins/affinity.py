"""NodeAffinity: nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity.

Rule: kube-scheduler plugins/nodeaffinity and component-helpers nodeaffinity: every nodeSelector pair must
match; of the required nodeSelectorTerms at least one must match, and a term matches when all its
matchExpressions do (In, NotIn, Exists, DoesNotExist, Gt, Lt; NotIn and DoesNotExist match nodes without
the label; Gt/Lt compare integers and fail on non-integer labels). Reason:
"node(s) didn't match Pod's node affinity/selector". Evaluated on integer label codes, one vector
operation per requirement.
"""

from __future__ import annotations

import numpy as np

from ..framework import FilterResult, Plugin

REASON = "node(s) didn't match Pod's node affinity/selector"


def requirement_mask(cluster, nodes, req) -> np.ndarray:
    codes, vocab = cluster.label_codes(req.key)
    c = codes[nodes]
    if req.operator == "Exists":
        return c >= 0
    if req.operator == "DoesNotExist":
        return c < 0
    if req.operator in ("In", "NotIn"):
        wanted = [vocab[v] for v in req.values if v in vocab]
        hit = np.isin(c, wanted) if wanted else np.zeros(len(c), dtype=bool)
        return hit if req.operator == "In" else ~hit
    # Gt / Lt: integer comparison of the label value.
    bound = int(req.values[0])
    value_of = np.full(len(vocab) + 1, np.nan)
    for v, code in vocab.items():
        try:
            value_of[code] = int(v)
        except ValueError:
            pass
    vals = np.where(c >= 0, value_of[np.where(c >= 0, c, len(vocab))], np.nan)
    with np.errstate(invalid="ignore"):
        return (vals > bound) if req.operator == "Gt" else (vals < bound)


def node_affinity_mask(cluster, pod, nodes) -> np.ndarray:
    ok = np.ones(len(nodes), dtype=bool)
    for key, value in pod.node_selector.items():
        codes, vocab = cluster.label_codes(key)
        ok &= codes[nodes] == vocab.get(value, -2)
    if pod.required_node_affinity:
        any_term = np.zeros(len(nodes), dtype=bool)
        for term in pod.required_node_affinity:
            term_ok = np.ones(len(nodes), dtype=bool) if term.match_expressions else np.zeros(len(nodes), bool)
            for req in term.match_expressions:
                term_ok &= requirement_mask(cluster, nodes, req)
            any_term |= term_ok
        ok &= any_term
    return ok


class NodeAffinity(Plugin):
    name = "NodeAffinity"

    def filter(self, state, pod, cluster, nodes):
        if not pod.node_selector and not pod.required_node_affinity:
            return FilterResult.all_pass(len(nodes))
        ok = node_affinity_mask(cluster, pod, nodes)
        return FilterResult.from_failures(len(nodes), [(REASON, ~ok)], unresolvable=True)
