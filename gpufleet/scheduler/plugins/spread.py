"""SelectorSpread: spread the pods of one controller over nodes and zones.

Rule: kube-scheduler plugins/selectorspread (as walked through in shared seed 002):

* PreScore: the selector is that of the pod's controllers (Service, ReplicationController, ReplicaSet,
  StatefulSet). gpufleet has no controller objects, so a pod with an owner reference uses its own labels
  as the selector (the pods of one controller carry its selector's labels). No owner or no labels: skip.
* Score: the number of pods on the node, in the pod's namespace, matching the selector.
* NormalizeScore: with maxNode the highest count over the scored nodes,
  ``node = 100 * (maxNode - count) / maxNode`` (100 when maxNode is 0); when zones exist
  (topology.kubernetes.io/zone or region labels) the zone count is the sum over the scored nodes of that
  zone and ``zone = 100 * (maxZone - zoneCount) / maxZone``; a node in a zone gets
  ``node * (1 - 2/3) + zone * 2/3``; the result is truncated to an integer.
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, Plugin, Status

ZONE_WEIGHTING = 2.0 / 3.0
STATE_KEY = "PreScoreSelectorSpread"


class SelectorSpread(Plugin):
    name = "SelectorSpread"

    def pre_score(self, state, pod, cluster, nodes):
        if pod.owner is None or not pod.labels:
            return Status.skip()
        state[STATE_KEY] = dict(pod.labels)
        return None

    def score(self, state, pod, cluster, nodes):
        selector = state.get(STATE_KEY)
        if not selector:
            return np.zeros(len(nodes), dtype=np.int64)
        return cluster.matching_pod_counts(pod.namespace, selector)[nodes]

    def normalize_score(self, state, pod, cluster, nodes, scores):
        if STATE_KEY not in state:
            return scores
        max_node = int(scores.max()) if len(scores) else 0
        if max_node > 0:
            f = MAX_NODE_SCORE * ((max_node - scores) / max_node)
        else:
            f = np.full(len(scores), float(MAX_NODE_SCORE))
        zones = cluster.zone_id[nodes]
        in_zone = zones >= 0
        if in_zone.any():
            counts = np.bincount(zones[in_zone], weights=scores[in_zone], minlength=len(cluster.zone_names))
            max_zone = counts.max()
            zone_count = counts[np.where(in_zone, zones, 0)]
            zone_score = MAX_NODE_SCORE * ((max_zone - zone_count) / max_zone) if max_zone > 0 else \
                np.full(len(scores), float(MAX_NODE_SCORE))
            f = np.where(in_zone, f * (1.0 - ZONE_WEIGHTING) + ZONE_WEIGHTING * zone_score, f)
        return f.astype(np.int64)
