"""DefaultBinder: bind the pod to the chosen node through the backend's binder.

Rule: kube-scheduler plugins/defaultbinder (POST pods/binding). The backend supplies the call
(the simulator records it; the Kubernetes backend posts a Binding). The pod records its node and GPUs.
"""

from __future__ import annotations

from ...cluster import GPU_INDEX_ANNOTATION
from ..framework import Plugin, Status


class DefaultBinder(Plugin):
    name = "DefaultBinder"

    def bind(self, state, pod, cluster, node_index):
        node_name = cluster.nodes[node_index].name
        gpus = tuple(state.get("gpu_indices", ()))
        if self.handle is not None and self.handle.binder is not None:
            try:
                self.handle.binder(pod, node_name)
            except Exception as exc:  # a backend failure becomes a bind error, the pod is retried
                return Status.error(f"binding rejected: {exc}")
        pod.node_name = node_name
        pod.gpu_indices = gpus
        if gpus:
            pod.annotations[GPU_INDEX_ANNOTATION] = ",".join(str(g) for g in gpus)
        return None
