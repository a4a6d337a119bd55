"""NodeUnschedulable and NodeName filters.

Rules: kube-scheduler plugins nodeunschedulable (a node with spec.unschedulable is skipped unless the pod
tolerates the ``node.kubernetes.io/unschedulable:NoSchedule`` taint; reason "node(s) were unschedulable")
and nodename (a pod with spec.nodeName only fits that node; reason "node(s) didn't match the requested node
name").
"""

from __future__ import annotations


from ...cluster import Taint
from ..framework import FilterResult, Plugin

UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"

    def filter(self, state, pod, cluster, nodes):
        if any(t.tolerates(UNSCHEDULABLE_TAINT) for t in pod.tolerations):
            return FilterResult.all_pass(len(nodes))
        fail = cluster.unschedulable[nodes]
        return FilterResult.from_failures(len(nodes), [("node(s) were unschedulable", fail)], unresolvable=True)


class NodeName(Plugin):
    name = "NodeName"

    def filter(self, state, pod, cluster, nodes):
        if not pod.node_name:
            return FilterResult.all_pass(len(nodes))
        target = cluster.node_index.get(pod.node_name, -1)
        fail = nodes != target
        return FilterResult.from_failures(len(nodes), [("node(s) didn't match the requested node name", fail)],
                                          unresolvable=True)
