"""Random: a uniformly random feasible node (the FGD paper's Random baseline).

Rule, as the simulator's pkg/simulator/plugin/random_score.go: one feasible node drawn uniformly (with the
framework's seeded generator, so a run is reproducible for a seed) scores 100, every other node 0. So the
pick is uniform whatever the tie-break rule of the framework.

Arg ``gpuSelection``: ``bestFit`` (default; GpuFit's choice) or ``random``: a fractional pod gets a GPU drawn
uniformly among the node's GPUs with enough free milli (the FGD experiment's ``gpuSelMethod: random`` for
Random, open_gpu_share.go allocateGpuIdBasedOnRandomFit); whole GPUs are the lowest-index free ones either way.
When only one node is feasible the framework skips scoring and GpuFit's best fit picks the GPU (the
simulator would still draw one): a small, documented difference.
"""

from __future__ import annotations

import numpy as np

from ..fragmentation import GpuChoice
from ..framework import MAX_NODE_SCORE, Plugin

GPU_SELECTIONS = ("bestFit", "random")


class Random(Plugin):
    name = "Random"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        unknown = set(self.args) - {"gpuSelection"}
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} (expected gpuSelection)")
        self.gpu_selection = self.args.get("gpuSelection", "bestFit")
        if self.gpu_selection not in GPU_SELECTIONS:
            raise ValueError(f"gpuSelection: expected one of {', '.join(GPU_SELECTIONS)}, "
                             f"got {self.gpu_selection!r}")

    def score(self, state, pod, cluster, nodes):
        scores = np.zeros(len(nodes), dtype=np.int64)
        if len(nodes):
            scores[int(self.handle.rng.integers(len(nodes)))] = MAX_NODE_SCORE
        if self.gpu_selection == "random" and pod.num_gpu == 1 and pod.gpu_milli < 1000 and len(nodes):
            fits = cluster.gpu_free_milli[nodes] >= pod.gpu_milli
            keys = np.where(fits, self.handle.rng.random(fits.shape), -1.0)
            state["gpu_choice"] = GpuChoice(cluster.num_nodes, nodes, np.argmax(keys, axis=1))
        return scores
