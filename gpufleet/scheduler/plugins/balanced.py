"""NodeResourcesBalancedAllocation: prefer nodes whose resource fractions stay close to each other.

Rule: kube-scheduler noderesources/balanced_allocation.go. fraction_r = requested_r / allocatable_r
(real requests including the pod, capped at 1; resources with allocatable 0 or extended resources the pod
does not request are skipped); with two fractions std = |f1 - f2| / 2, with more the population standard
deviation; score = int((1 - std) * 100). Best-effort pods (no cpu or memory request) are skipped in
PreScore (kubernetes#129138). Default resources: cpu and memory, weight 1.
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, Plugin, Status
from .fit import parse_resource_specs, requested_and_allocatable


class NodeResourcesBalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        self.resources = parse_resource_specs(self.args.get("resources"), "resources") or \
            [("cpu", 1), ("memory", 1)]

    def pre_score(self, state, pod, cluster, nodes):
        requests = [pod.cpu_milli if r == "cpu" else pod.memory_mib if r == "memory" else
                    (pod.gpu_request_milli if r == "nvidia.com/gpu" else pod.extended.get(r, 0))
                    for r, _ in self.resources]
        if not any(requests):
            return Status.skip()
        return None

    def score(self, state, pod, cluster, nodes):
        fractions = []
        valid = []
        for resource, _ in self.resources:
            requested, alloc = requested_and_allocatable(cluster, pod, nodes, resource, use_requested=True)
            ok = alloc != 0
            frac = np.where(ok, requested / np.where(ok, alloc, 1), 0.0)
            fractions.append(np.minimum(frac, 1.0))
            valid.append(ok)
        f = np.array(fractions)  # [resources, nodes]
        v = np.array(valid)
        count = v.sum(axis=0)
        std = np.zeros(len(nodes))
        # Two valid fractions: |f1 - f2| / 2 (kube's shortcut); more: population standard deviation.
        mean = np.where(count > 0, (f * v).sum(axis=0) / np.maximum(count, 1), 0.0)
        var = (((f - mean) ** 2) * v).sum(axis=0) / np.maximum(count, 1)
        general = np.sqrt(var)
        if len(self.resources) >= 2:
            two = count == 2
            if two.any():
                idx = np.argsort(~v, axis=0, kind="stable")[:2]  # rows of the two valid fractions
                cols = np.arange(len(nodes))
                pair = np.abs((f[idx[0], cols] - f[idx[1], cols]) / 2)
                std = np.where(two, pair, std)
            std = np.where(count > 2, general, std)
        return ((1 - std) * MAX_NODE_SCORE).astype(np.int64)
