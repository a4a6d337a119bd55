"""GpuPacking: the FGD paper's GPU-packing baseline (Sec. 6.1; simulator hkust-adsl/kubernetes-scheduler-simulator
pkg/simulator/plugin/gpu_packing_score.go).

Rule, from high to low: (1) the pod fits on partly used GPUs: 100 - (sum over the GPUs it would take of
free milli * 100 // 1000) // 10, at least 50; (2) it must break fully free GPUs on a node whose GPUs are
partly used: 50 - (fully free GPUs it takes), at least 33; (3) every GPU of the node is free:
max(33 - free GPUs, free GPUs). The GPUs it would take are the first fitting ones in ascending order of free
milli. A pod without GPUs scores 0 everywhere (so the tie-break places it at random). GPUs of the chosen node
by best fit (GpuFit's default), which takes the same GPUs.
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, Plugin

MILLI = 1000


class GpuPacking(Plugin):
    name = "GpuPacking"

    def score(self, state, pod, cluster, nodes):
        if pod.num_gpu == 0:
            return np.zeros(len(nodes), dtype=np.int64)
        free = cluster.gpu_free_milli[nodes].astype(np.int64)
        fully = np.count_nonzero(free >= MILLI, axis=1)
        all_free = fully == cluster.gpu_count[nodes]
        case3 = np.maximum(MAX_NODE_SCORE // 3 - fully, fully)
        if pod.gpu_milli >= MILLI:  # whole GPUs: only fully free ones fit, so case 2 unless all are free
            used = np.maximum(MAX_NODE_SCORE // 2 - pod.num_gpu, MAX_NODE_SCORE // 3)
            return np.where(all_free, case3, used)
        # A fractional pod takes the fitting GPU with the least free milli.
        taken = np.where(free >= pod.gpu_milli, free, np.iinfo(np.int64).max).min(axis=1)
        case2 = max(MAX_NODE_SCORE // 2 - 1, MAX_NODE_SCORE // 3)
        case1 = np.maximum(MAX_NODE_SCORE - (np.minimum(taken, MILLI) * 100 // MILLI) // 10, MAX_NODE_SCORE // 2)
        return np.where(all_free, case3, np.where(taken >= MILLI, case2, case1))
