"""NodeResourcesFit: does the pod's request fit the node's free resources; and how to score what is left.

Rules: kube-scheduler pkg/scheduler/framework/plugins/noderesources (fit.go, least_allocated.go,
most_allocated.go, requested_to_capacity_ratio.go, resource_allocation.go, helper/shape_score.go):

* Filter: "Insufficient cpu" / "Insufficient memory" / "Insufficient <extended>" when the request exceeds
  allocatable minus requested; "Too many pods" when the node's pod slots are full. GPUs are GpuFit's.
* Score, per resource r with weight w over the resources of ``scoringStrategy.resources`` (default cpu and
  memory, weight 1): requested_r = (non-zero) requested on the node + the pod's (non-zero) request.
  An extended resource the pod does not request is skipped, as is any resource with allocatable 0.
  - LeastAllocated: ``(alloc - req) * 100 // alloc`` (0 when req > alloc); node = sum(s*w) // sum(w).
  - MostAllocated: ``min(req, alloc) * 100 // alloc``; node = sum(s*w) // sum(w).
  - RequestedToCapacityRatio: utilization ``min(req, alloc) * 100 // alloc`` through the broken-linear
    shape (scores given 0..10, scaled x10); resources scoring 0 are left out of the weight sum and the node
    score is ``round(sum(s*w) / sum(w))``.
CPU is in millicores and memory in MiB (kube uses bytes, so memory ratios can differ by one unit of
integer rounding); ``nvidia.com/gpu`` may be named as a scoring resource and is measured in GPU milli.
"""

from __future__ import annotations

import numpy as np

from ...cluster import GPU_RESOURCE
from ...cluster.state import nonzero_requests
from ..framework import MAX_NODE_SCORE, FilterResult, Plugin

MAX_CUSTOM_PRIORITY_SCORE = 10
STRATEGIES = ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio")


def parse_resource_specs(specs, where: str) -> list[tuple[str, int]]:
    out = []
    for i, spec in enumerate(specs or []):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"{where}[{i}]: expected a mapping with name and weight")
        weight = spec.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
            raise ValueError(f"{where}[{i}].weight: expected an integer in 1..100, got {weight!r}")
        out.append((str(spec["name"]), weight))
    return out


def requested_and_allocatable(cluster, pod, nodes: np.ndarray, resource: str, use_requested: bool):
    """kube's calculateResourceAllocatableRequest over ``nodes``: (requested incl. the pod, allocatable).

    ``use_requested`` False counts non-zero requests (defaults for pods that ask nothing), as the Fit
    scorers do; BalancedAllocation uses the real requests.
    """
    if resource == "cpu":
        alloc = cluster.cpu_capacity_milli[nodes]
        if use_requested:
            return alloc - cluster.cpu_free_milli[nodes] + pod.cpu_milli, alloc
        return cluster.nonzero_cpu_requested[nodes] + nonzero_requests(pod)[0], alloc
    if resource == "memory":
        alloc = cluster.memory_capacity_mib[nodes]
        if use_requested:
            return alloc - cluster.memory_free_mib[nodes] + pod.memory_mib, alloc
        return cluster.nonzero_memory_requested[nodes] + nonzero_requests(pod)[1], alloc
    zeros = np.zeros(len(nodes), dtype=np.int64)
    if resource == GPU_RESOURCE:
        if not pod.num_gpu:
            return zeros, zeros
        alloc = cluster.gpu_capacity_milli[nodes].sum(axis=1).astype(np.int64)
        used = alloc - cluster.gpu_free_milli[nodes].sum(axis=1)
        return used + pod.gpu_request_milli, alloc
    request = pod.extended.get(resource, 0)
    col = cluster.scalar_column(resource)
    if not request or col is None:
        return zeros, zeros
    alloc = cluster.scalar_capacity[nodes, col]
    return alloc - cluster.scalar_free[nodes, col] + request, alloc


def least_allocated(requested: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    safe = np.where(alloc == 0, 1, alloc)
    score = (alloc - requested) * MAX_NODE_SCORE // safe
    return np.where((alloc == 0) | (requested > alloc), 0, score)


def most_allocated(requested: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    safe = np.where(alloc == 0, 1, alloc)
    score = np.minimum(requested, alloc) * MAX_NODE_SCORE // safe
    return np.where(alloc == 0, 0, score)


def broken_linear(shape: list[tuple[int, int]], p: np.ndarray) -> np.ndarray:
    """helper.BuildBrokenLinearFunction with Go's truncating integer division."""
    out = np.full(p.shape, shape[-1][1], dtype=np.int64)
    done = np.zeros(p.shape, dtype=bool)
    for i, (u, s) in enumerate(shape):
        here = (~done) & (p <= u)
        if i == 0:
            out[here] = s
        else:
            u0, s0 = shape[i - 1]
            num = (s - s0) * (p[here] - u0)
            # Go's int64 division truncates toward zero.
            out[here] = s0 + np.sign(num) * (np.abs(num) // (u - u0))
        done |= here
    return out


class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        strategy = self.args.get("scoringStrategy") or {}
        if not isinstance(strategy, dict):
            raise ValueError("scoringStrategy: expected a mapping")
        self.strategy = strategy.get("type", "LeastAllocated")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"scoringStrategy.type: expected one of {', '.join(STRATEGIES)}, "
                             f"got {self.strategy!r}")
        self.resources = parse_resource_specs(strategy.get("resources"), "scoringStrategy.resources") or \
            [("cpu", 1), ("memory", 1)]
        self.shape: list[tuple[int, int]] = []
        if self.strategy == "RequestedToCapacityRatio":
            rtc = strategy.get("requestedToCapacityRatio") or {}
            points = rtc.get("shape") if isinstance(rtc, dict) else None
            if not points:
                raise ValueError("scoringStrategy.requestedToCapacityRatio.shape: expected at least one point")
            last = -1
            for i, pt in enumerate(points):
                try:
                    u, s = int(pt["utilization"]), int(pt["score"])
                except (KeyError, TypeError, ValueError):
                    raise ValueError(f"scoringStrategy.requestedToCapacityRatio.shape[{i}]: expected "
                                     "utilization and score integers") from None
                if not 0 <= u <= 100 or u <= last:
                    raise ValueError(f"scoringStrategy.requestedToCapacityRatio.shape[{i}].utilization: "
                                     "expected increasing values in 0..100")
                if not 0 <= s <= MAX_CUSTOM_PRIORITY_SCORE:
                    raise ValueError(f"scoringStrategy.requestedToCapacityRatio.shape[{i}].score: "
                                     "expected 0..10")
                last = u
                self.shape.append((u, s * (MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE)))

    def filter(self, state, pod, cluster, nodes):
        failures = []
        if pod.cpu_milli:
            failures.append(("Insufficient cpu", pod.cpu_milli > cluster.cpu_free_milli[nodes]))
        if pod.memory_mib:
            failures.append(("Insufficient memory", pod.memory_mib > cluster.memory_free_mib[nodes]))
        failures.append(("Too many pods", cluster.pods_count[nodes] + 1 > cluster.pods_capacity[nodes]))
        for name, amount in pod.extended.items():
            if amount <= 0:
                continue
            col = cluster.scalar_column(name)
            free = cluster.scalar_free[nodes, col] if col is not None else np.zeros(len(nodes), dtype=np.int64)
            failures.append((f"Insufficient {name}", amount > free))
        return FilterResult.from_failures(len(nodes), failures)

    def score(self, state, pod, cluster, nodes):
        total = np.zeros(len(nodes), dtype=np.int64)
        weight_sum = np.zeros(len(nodes), dtype=np.int64)
        for resource, weight in self.resources:
            requested, alloc = requested_and_allocatable(cluster, pod, nodes, resource, use_requested=False)
            counted = alloc != 0
            if self.strategy == "LeastAllocated":
                s = least_allocated(requested, alloc)
            elif self.strategy == "MostAllocated":
                s = most_allocated(requested, alloc)
            else:
                s = broken_linear(self.shape, most_allocated(requested, alloc))
                s = np.where(alloc == 0, 0, s)
                counted = counted & (s > 0)
            total += np.where(counted, s * weight, 0)
            weight_sum += np.where(counted, weight, 0)
        safe = np.where(weight_sum == 0, 1, weight_sum)
        if self.strategy == "RequestedToCapacityRatio":
            out = np.floor(total / safe + 0.5).astype(np.int64)  # math.Round on non-negatives
        else:
            out = total // safe
        return np.where(weight_sum == 0, 0, out)
