"""FGD: Fragmentation Gradient Descent, the FGD paper's policy (USENIX ATC'23 "Beware of Fragmentation", Sec. 4,
Algorithm 1; simulator hkust-adsl/kubernetes-scheduler-simulator pkg/simulator/plugin/fgd_score.go).

Rule: with F_n the node's fragmentation against the typical pods (gpufleet.scheduler.fragmentation), place the
pod where the fragmentation grows least. For each node, simulate the placement:

* a fractional pod (one GPU, milli < 1000) is tried on every GPU with enough free milli; the best GPU wins
  (the first one among equal scores) and is the GPU the pod gets (CycleState ``gpu_choice``);
* a whole-GPU pod takes the lowest-index fully free GPUs; a CPU-only pod takes only CPU;
* score = floor(sigmoid((F_before - F_after) / 1000) * 100), in 0..100, no NormalizeScore.

Args: ``typicalPods`` (list of {cpuMilli, numGpu, gpuMilli, gpuModels, frequency}); the simulator computes
them once per experiment from the workload and passes them in the profile's pluginConfig. Without them the
pod being placed is taken as the only typical pod. The pod's CPU is the
simulator's non-zero request (100 millicores when it asks none).
"""

from __future__ import annotations

import numpy as np

from ..fragmentation import (FragmentCache, GpuChoice, TypicalPods, candidate_placements, fgd_cpu_milli, pod_shape_key,
                             sigmoid_score, typical_or_pod, typical_pods_arg)
from ..framework import Plugin


class FGD(Plugin):
    name = "FGD"
    ARGS: tuple[str, ...] = ("typicalPods",)
    scale = 1000.0  # milli: the sigmoid's unit

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        unknown = set(self.args) - set(self.ARGS)
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} (expected "
                             f"{', '.join(self.ARGS)})")
        self.typical = typical_pods_arg(self.args, self.name)
        self.cache = FragmentCache()

    def typical_for(self, pod) -> TypicalPods:
        return typical_or_pod(self.typical, pod)

    def measure(self, typical: TypicalPods, gpu_free, cpu_free, model, names) -> np.ndarray:
        """The fragmentation the gradient descends: FGD's F_n against the typical pods."""
        return typical.fragment(gpu_free, cpu_free, model, names)

    def _evaluate(self, pod):
        def evaluate(cluster, nodes):
            gpu_free = cluster.gpu_free_milli[nodes].astype(np.int64)
            cpu_free = cluster.cpu_free_milli[nodes]
            model = cluster.gpu_model_id[nodes]
            names = cluster.gpu_model_names
            typical = self.typical_for(pod)
            before = self.measure(typical, gpu_free, cpu_free, model, names)
            cand = candidate_placements(gpu_free, cpu_free, fgd_cpu_milli(pod), pod.num_gpu, pod.gpu_milli)
            d, c, g = cand.gpu_free.shape
            after = self.measure(typical, cand.gpu_free.reshape(d * c, g), np.repeat(cand.cpu_free, c),
                                 np.repeat(model, c), names).reshape(d, c)
            score = np.where(cand.valid, sigmoid_score(before[:, None] - after, self.scale), -1)
            best = np.argmax(score, axis=1)  # first best GPU, as the simulator's strict '>' loop
            rows = np.arange(len(nodes))
            return np.maximum(score[rows, best], 0), cand.choice[rows, best]
        return evaluate

    def reserve(self, state, pod, cluster, node_index):
        """The GPU for a fractional pod when scoring was skipped (one feasible node): the simulator's Reserve
        asks FGD for the GPU whatever the number of feasible nodes. Runs before GpuFit in the profile."""
        if pod.num_gpu == 1 and pod.gpu_milli < 1000 and "gpu_choice" not in state:
            self.score(state, pod, cluster, np.array([node_index]))
        return None

    def score(self, state, pod, cluster, nodes):
        scores, choice = self.cache.lookup(cluster, nodes, (pod_shape_key(pod), self.typical is None), self._evaluate(pod))
        if pod.num_gpu == 1 and pod.gpu_milli < 1000:
            state["gpu_choice"] = GpuChoice(cluster.num_nodes, nodes, choice)
        return scores
