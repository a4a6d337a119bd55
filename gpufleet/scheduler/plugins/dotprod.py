"""DotProd: the FGD paper's Tetris-style dot-product baseline (Sec. 6.1; simulator
hkust-adsl/kubernetes-scheduler-simulator pkg/simulator/plugin/dot_product_score.go with the experiment's
settings ``dimExtMethod: merge``, ``normMethod: max``).

Rule: node vector = (free CPU milli, total free GPU milli), pod vector = (CPU milli, total GPU milli), both
divided by the largest node spec (128,000 CPU milli, 8,000 GPU milli);
score = trunc(100 * (1 - (node . pod) / 2)): the simulator ranks a *smaller* dot product higher (its code
says "the larger the dot product, the lower the score"), and so does this plugin. A node with less free
CPU than the pod asks scores 0. The pod's CPU is the non-zero request (100 when it asks none). The GPUs of
the chosen node are picked by best fit (the experiment's ``gpuSelMethod: best``, GpuFit's default).
"""

from __future__ import annotations

import numpy as np

from ..fragmentation import fgd_cpu_milli
from ..framework import Plugin

MAX_SPEC_CPU_MILLI = 128_000
MAX_SPEC_GPU_MILLI = 8_000


class DotProd(Plugin):
    name = "DotProd"

    def score(self, state, pod, cluster, nodes):
        cpu = fgd_cpu_milli(pod)
        cpu_free = cluster.cpu_free_milli[nodes]
        gpu_free = cluster.gpu_free_milli[nodes].sum(axis=1)
        dot = (cpu_free / MAX_SPEC_CPU_MILLI) * (cpu / MAX_SPEC_CPU_MILLI) + \
            (gpu_free / MAX_SPEC_GPU_MILLI) * (pod.gpu_request_milli / MAX_SPEC_GPU_MILLI)
        score = np.trunc(100.0 * (1.0 - dot / 2.0)).astype(np.int64)
        return np.where(cpu_free < cpu, 0, np.clip(score, 0, 100))
