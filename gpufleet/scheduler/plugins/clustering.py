"""GpuClustering: the FGD paper's GPU-clustering baseline (Sec. 6.1; simulator
hkust-adsl/kubernetes-scheduler-simulator pkg/simulator/plugin/gpu_clustering_score.go).

Rule: a GPU pod's kind is "fractional" or "k whole GPUs"; it prefers nodes that already run pods of its own
kind only. With base = 25 * (8000 - total free GPU milli) // 8000:
base + 75 when the node's GPU pods are all of the pod's kind; base + 50 when they include its kind and others;
base + 25 when the node runs no GPU pod; base alone when it runs only other kinds. A pod without GPUs scores 0
everywhere. Kinds per node come from ClusterState.gpu_pod_kind_count. GPUs by best fit (GpuFit's default).
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, Plugin
from .dotprod import MAX_SPEC_GPU_MILLI


class GpuClustering(Plugin):
    name = "GpuClustering"

    def score(self, state, pod, cluster, nodes):
        if pod.num_gpu == 0:
            return np.zeros(len(nodes), dtype=np.int64)
        quarter = MAX_NODE_SCORE // 4
        left = cluster.gpu_free_milli[nodes].sum(axis=1).astype(np.int64)
        base = quarter * (MAX_SPEC_GPU_MILLI - left) // MAX_SPEC_GPU_MILLI
        kinds = cluster.gpu_pod_kind_count[nodes] > 0
        kind = 0 if pod.gpu_milli < 1000 else pod.num_gpu
        own = kinds[:, kind] if kind < kinds.shape[1] else np.zeros(len(nodes), dtype=bool)
        n_kinds = kinds.sum(axis=1)
        offset = np.where(own, np.where(n_kinds == 1, 3 * quarter, 2 * quarter),
                          np.where(n_kinds == 0, quarter, 0))
        return np.clip(base + offset, 0, MAX_NODE_SCORE)
