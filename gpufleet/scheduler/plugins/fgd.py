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


def fragment_delta(typical: TypicalPods, cluster, nodes: np.ndarray, pod):
    """(F_before [D], F_after [D, C], valid [D, C], choice [D, C]) for the pod's candidate placements."""
    gpu_free = cluster.gpu_free_milli[nodes].astype(np.int64)
    cpu_free = cluster.cpu_free_milli[nodes]
    model = cluster.gpu_model_id[nodes]
    names = cluster.gpu_model_names
    before = typical.fragment(gpu_free, cpu_free, model, names)
    cand = candidate_placements(gpu_free, cpu_free, fgd_cpu_milli(pod), pod.num_gpu, pod.gpu_milli)
    d, c, g = cand.gpu_free.shape
    after = typical.fragment(cand.gpu_free.reshape(d * c, g), np.repeat(cand.cpu_free, c),
                             np.repeat(model, c), names).reshape(d, c)
    return before, after, cand.valid, cand.choice


class FGD(Plugin):
    name = "FGD"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        unknown = set(self.args) - {"typicalPods"}
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} (expected typicalPods)")
        self.typical = typical_pods_arg(self.args, self.name)
        self.cache = FragmentCache()

    def typical_for(self, pod) -> TypicalPods:
        return typical_or_pod(self.typical, pod)

    def _evaluate(self, pod):
        def evaluate(cluster, nodes):
            before, after, valid, choice = fragment_delta(self.typical_for(pod), cluster, nodes, pod)
            score = np.where(valid, sigmoid_score(before[:, None] - after), -1)
            best = np.argmax(score, axis=1)  # first best GPU, as the simulator's strict '>' loop
            rows = np.arange(len(nodes))
            return np.maximum(score[rows, best], 0), choice[rows, best]
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
