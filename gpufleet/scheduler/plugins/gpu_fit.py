"""GpuFit: whole and fractional GPUs, allowed GPU models, and which GPUs of the node the pod gets.

Rules (gpufleet's own, following the openb trace's GPU-sharing model and Alibaba's GPU sharing scheduler
extension): a pod asking for ``num_gpu`` GPUs with ``gpu_milli`` each fits a node with at least
``num_gpu`` GPUs that each have ``gpu_milli`` free ("Insufficient nvidia.com/gpu"); when the pod names
allowed models the node's GPU model must be one of them ("node(s) didn't have an allowed GPU model").

Reserve picks the GPUs: a choice another plugin left in CycleState under ``gpu_choice`` (node index ->
GPU indices; fragmentation-aware scorers compute it while scoring) wins, else
ClusterState.default_gpu_choice (best fit: the fullest GPU that still fits a shared pod, the lowest free
GPUs for whole-GPU pods). The choice goes to CycleState ``gpu_indices`` and is recorded on the pod at bind
(``pod.gpu_indices`` and the ``gpufleet.io/gpu-index`` annotation).
"""

from __future__ import annotations

import numpy as np

from ..framework import FilterResult, Plugin, Status

INSUFFICIENT_GPU = "Insufficient nvidia.com/gpu"
NO_ALLOWED_MODEL = "node(s) didn't have an allowed GPU model"


def allowed_model_mask(cluster, pod, nodes) -> np.ndarray:
    ids = [cluster.gpu_model_names.index(m) for m in pod.gpu_models if m in cluster.gpu_model_names]
    return np.isin(cluster.gpu_model_id[nodes], ids)


def gpu_fit_mask(cluster, pod, nodes) -> np.ndarray:
    return np.count_nonzero(cluster.gpu_free_milli[nodes] >= pod.gpu_milli, axis=1) >= pod.num_gpu


class GpuFit(Plugin):
    name = "GpuFit"

    def filter(self, state, pod, cluster, nodes):
        if pod.num_gpu == 0:
            return FilterResult.all_pass(len(nodes))
        failures = []
        if pod.gpu_models:
            failures.append((NO_ALLOWED_MODEL, ~allowed_model_mask(cluster, pod, nodes)))
        failures.append((INSUFFICIENT_GPU, ~gpu_fit_mask(cluster, pod, nodes)))
        return FilterResult.from_failures(len(nodes), failures)

    def reserve(self, state, pod, cluster, node_index):
        if pod.num_gpu == 0:
            state["gpu_indices"] = ()
            return None
        chosen = state.get("gpu_choice", {}).get(node_index)
        if chosen is None:
            chosen = cluster.default_gpu_choice(pod, node_index)
        if len(chosen) != pod.num_gpu:
            return Status.unschedulable(INSUFFICIENT_GPU)
        state["gpu_indices"] = tuple(int(g) for g in chosen)
        return None

    def unreserve(self, state, pod, cluster, node_index):
        state.pop("gpu_indices", None)
