"""GpuBinPacking: fill a node's GPUs before opening another one.

Rule (shared seed 002, "资源碎片问题"): spreading 1-GPU pods leaves every node with a free GPU that no
2-GPU pod can use; scoring nodes by how full their GPUs will be packs pods and keeps whole nodes free.
score = (allocated GPU milli on the node after placing the pod) * 100 // (the node's GPU milli).

A pod without GPUs scores the same way without adding to the GPU use, and a node without GPUs scores 100:
CPU-only pods go where GPUs are already used up (or absent), so they do not eat the CPU and memory that
the free GPUs of other nodes need. Without this, packing strands GPUs on CPU-exhausted nodes (measured on
the openb default trace: docs/sim.md).
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, Plugin


class GpuBinPacking(Plugin):
    name = "GpuBinPacking"

    def score(self, state, pod, cluster, nodes):
        capacity = cluster.gpu_capacity_milli[nodes].sum(axis=1).astype(np.int64)
        used = capacity - cluster.gpu_free_milli[nodes].sum(axis=1) + pod.gpu_request_milli
        safe = np.where(capacity == 0, 1, capacity)
        return np.where(capacity == 0, 0 if pod.num_gpu else MAX_NODE_SCORE,
                        np.minimum(used, capacity) * MAX_NODE_SCORE // safe)
