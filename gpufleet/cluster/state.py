"""ClusterState: the columnar cluster every plugin reads.

Per-node numbers live in numpy arrays indexed by node (``cpu_free_milli[n]``), per-GPU numbers in
``[node, gpu slot]`` matrices padded to the largest GPU count (``gpu_free_milli[n, g]``; a padded slot has
``gpu_exists`` False and 0 free milli, so it never fits anything). Plugins compute boolean masks and integer
scores over these arrays; nothing on the hot path loops over nodes in Python.

Invariants kept by :meth:`ClusterState.assign` and :meth:`ClusterState.release` (checked by
:meth:`check_invariants` and by the property tests):

* no free amount (CPU, memory, extended resources, pod slots, GPU milli) ever goes below zero;
* no GPU is ever above 1000 milli allocated (free never below 0, never above 1000);
* release returns exactly what assign took, so assign followed by release restores every array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from .errors import AssignError
from .model import (LEGACY_REGION_LABEL, LEGACY_ZONE_LABEL, MILLI_PER_GPU, REGION_LABEL, ZONE_LABEL, Node,
                    Pod, Taint)

# kube-scheduler's defaults for pods that request nothing, used only for scoring
# (pkg/scheduler/util: DefaultMilliCPURequest = 100, DefaultMemoryRequest = 200 MB).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST_MIB = 200


@dataclass(frozen=True)
class Placement:
    """Exactly what one assignment took from one node; release gives this back."""

    pod_uid: str
    node_name: str
    cpu_milli: int
    memory_mib: int
    nonzero_cpu_milli: int
    nonzero_memory_mib: int
    gpu_indices: tuple[int, ...]
    gpu_milli: int  # per GPU in gpu_indices
    extended: Mapping[str, int] = field(default_factory=dict)


def nonzero_requests(pod: Pod) -> tuple[int, int]:
    """kube-scheduler's GetNonzeroRequests: a zero CPU or memory request counts as the default for scoring.

    kube applies the default per container that omits the request; gpufleet keeps pod totals only, so the
    default applies when the pod's total is zero (the same for the usual one-container pod).
    """
    cpu = pod.cpu_milli if pod.cpu_milli else DEFAULT_MILLI_CPU_REQUEST
    mem = pod.memory_mib if pod.memory_mib else DEFAULT_MEMORY_REQUEST_MIB
    return cpu, mem


def gpu_pod_kind(placement: "Placement") -> int:
    """Column of ClusterState.gpu_pod_kind_count: 0 for a fractional GPU, else the number of whole GPUs."""
    return 0 if placement.gpu_milli < MILLI_PER_GPU else len(placement.gpu_indices)


def zone_key(labels: Mapping[str, str]) -> str:
    """kube's GetZoneKey (k8s.io/component-helpers/node/topology/helpers.go): region and zone; "" when neither.

    Like kube, the legacy ``failure-domain.beta.kubernetes.io/{zone,region}`` label wins when present and the
    stable ``topology.kubernetes.io/{zone,region}`` label is used only when the legacy one is absent.
    """
    zone = labels.get(LEGACY_ZONE_LABEL, labels.get(ZONE_LABEL, ""))
    region = labels.get(LEGACY_REGION_LABEL, labels.get(REGION_LABEL, ""))
    if not zone and not region:
        return ""
    return f"{region}:\x00:{zone}"


class ClusterState:
    """Nodes and the pods placed on them, as numpy columns."""

    def __init__(self, nodes: Iterable[Node] = ()):
        self.nodes: list[Node] = []
        self.generation = 0
        self.placements: dict[str, Placement] = {}
        self.pods: dict[str, Pod] = {}
        self._build([*nodes])

    # ------------------------------------------------------------------ construction
    def _build(self, nodes: list[Node], keep_usage: bool = False) -> None:
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise AssignError(f"duplicate node name {dup!r}")
        self.nodes = nodes
        self.node_index: dict[str, int] = {n.name: i for i, n in enumerate(nodes)}
        n_nodes = len(nodes)
        self.max_gpus = max([n.gpu_count for n in nodes] + [1])
        i64 = np.int64
        self.cpu_capacity_milli = np.array([n.cpu_milli for n in nodes], dtype=i64)
        self.memory_capacity_mib = np.array([n.memory_mib for n in nodes], dtype=i64)
        self.pods_capacity = np.array([n.max_pods for n in nodes], dtype=i64)
        self.unschedulable = np.array([n.unschedulable for n in nodes], dtype=bool)
        self.gpu_count = np.array([n.gpu_count for n in nodes], dtype=i64)
        self.gpu_exists = np.arange(self.max_gpus)[None, :] < self.gpu_count[:, None]
        self.gpu_model_names: list[str] = sorted({g.model for n in nodes for g in n.gpus})
        model_id = {m: i for i, m in enumerate(self.gpu_model_names)}
        self.gpu_model_id = np.array([model_id[n.gpu_model] if n.gpus else -1 for n in nodes], dtype=np.int32)
        self.gpu_capacity_milli = np.where(self.gpu_exists, MILLI_PER_GPU, 0).astype(np.int32)
        self.scalar_names: list[str] = sorted({k for n in nodes for k in n.extended})
        self.scalar_index = {k: i for i, k in enumerate(self.scalar_names)}
        self.scalar_capacity = np.zeros((n_nodes, len(self.scalar_names)), dtype=i64)
        for i, n in enumerate(nodes):
            for k, v in n.extended.items():
                self.scalar_capacity[i, self.scalar_index[k]] = v
        # Labels as integer codes per key, built lazily; taints as a bool matrix over distinct taints.
        self._label_codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        self.taints: list[Taint] = sorted({t for n in nodes for t in n.taints},
                                          key=lambda t: (t.key, t.value, t.effect))
        taint_pos = {t: i for i, t in enumerate(self.taints)}
        self.taint_matrix = np.zeros((n_nodes, len(self.taints)), dtype=bool)
        # Where each taint sits in the node's spec.taints (-1 absent): kube reports the first untolerated one.
        self.taint_position = np.full((n_nodes, len(self.taints)), -1, dtype=np.int32)
        for i, n in enumerate(nodes):
            for k, t in enumerate(n.taints):
                self.taint_matrix[i, taint_pos[t]] = True
                if self.taint_position[i, taint_pos[t]] < 0:
                    self.taint_position[i, taint_pos[t]] = k
        zones = [zone_key(n.labels) for n in nodes]
        self.zone_names = sorted({z for z in zones if z})
        zone_pos = {z: i for i, z in enumerate(self.zone_names)}
        self.zone_id = np.array([zone_pos[z] if z else -1 for z in zones], dtype=np.int32)
        # Usage starts empty; placements are replayed when nodes change.
        self.cpu_free_milli = self.cpu_capacity_milli.copy()
        self.memory_free_mib = self.memory_capacity_mib.copy()
        self.pods_count = np.zeros(n_nodes, dtype=i64)
        self.nonzero_cpu_requested = np.zeros(n_nodes, dtype=i64)
        self.nonzero_memory_requested = np.zeros(n_nodes, dtype=i64)
        self.gpu_free_milli = self.gpu_capacity_milli.copy()
        # Pods per node by GPU kind: column 0 = fractional (one shared GPU), column k = k whole GPUs
        # (GPU-clustering scorers read it; kept by assign/release).
        self.gpu_pod_kind_count = np.zeros((n_nodes, self.max_gpus + 1), dtype=i64)
        self.scalar_free = self.scalar_capacity.copy()
        self.node_pods: list[dict[str, Pod]] = [{} for _ in nodes]
        self._pod_label_index: dict[tuple[str, str], set[str]] = {}
        self.generation += 1

    def add_node(self, node: Node) -> None:
        """Add a node (the Kubernetes backend sees nodes come and go); placements are kept.

        AssignError, changing nothing, when a node of that name exists.
        """
        self._rebuild([*self.nodes, node])

    def remove_node(self, name: str) -> list[Pod]:
        """Remove a node; the pods placed on it are released and returned."""
        idx = self._index(name)
        evicted = list(self.node_pods[idx].values())
        self._rebuild([n for n in self.nodes if n.name != name])
        return evicted

    def update_node(self, node: Node) -> None:
        """Replace a node's spec (labels, taints, capacity) keeping the pods placed on it.

        AssignError, changing nothing, when the pods placed on the node would not fit the new spec (fewer
        GPUs than the indices they hold, less CPU or memory than they request): release them first.
        """
        self._index(node.name)
        self._rebuild([node if n.name == node.name else n for n in self.nodes])

    def replace_nodes(self, nodes: Iterable[Node]) -> list[Pod]:
        """Set the whole node list in one rebuild (a backend's re-list or a batch of node events).

        Placements on nodes still present are kept (AssignError, changing nothing, when one no longer
        fits); the pods placed on nodes that are gone are released and returned.
        """
        nodes = list(nodes)
        keep = {n.name for n in nodes}
        evicted = [p for i, n in enumerate(self.nodes) if n.name not in keep for p in self.node_pods[i].values()]
        self._rebuild(nodes)
        return evicted

    def _rebuild(self, nodes: list[Node]) -> None:
        """Rebuild the columns for ``nodes`` and replay every placement whose node is still there.

        The new state is built aside and replayed with the full fit check; only when every placement
        fits does it replace this one, so a failure (duplicate name, a placement that no longer fits)
        leaves the state exactly as it was.
        """
        fresh = ClusterState.__new__(ClusterState)
        fresh.generation = self.generation
        fresh.placements = {}
        fresh.pods = {}
        fresh._build(nodes)
        for uid, p in self.placements.items():
            n = fresh.node_index.get(p.node_name)
            if n is None:
                continue  # its node is gone: the pod is dropped (remove_node returns it)
            pod = self.pods[uid]
            problem = fresh.can_assign(pod, n, p.gpu_indices)
            if problem:
                raise AssignError(f"node {p.node_name}: pod {pod.key} placed on it would no longer fit: "
                                  f"{problem}")
            fresh.assign(pod, n, p.gpu_indices)
        self.__dict__.update(fresh.__dict__)

    # ------------------------------------------------------------------ lookups
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def _index(self, name: str) -> int:
        try:
            return self.node_index[name]
        except KeyError:
            raise AssignError(f"no node named {name!r}") from None

    def label_codes(self, key: str) -> tuple[np.ndarray, dict[str, int]]:
        """Integer codes of label ``key`` per node (-1 where absent) and the value -> code map."""
        cached = self._label_codes.get(key)
        if cached is None:
            vocab: dict[str, int] = {}
            codes = np.full(self.num_nodes, -1, dtype=np.int32)
            for i, n in enumerate(self.nodes):
                v = n.labels.get(key)
                if v is not None:
                    codes[i] = vocab.setdefault(v, len(vocab))
            cached = (codes, vocab)
            self._label_codes[key] = cached
        return cached

    def scalar_column(self, name: str) -> int | None:
        return self.scalar_index.get(name)

    def gpus_fitting(self, gpu_milli: int) -> np.ndarray:
        """Per node, how many of its GPUs have at least ``gpu_milli`` free."""
        return np.count_nonzero(self.gpu_free_milli >= gpu_milli, axis=1)

    def pods_on(self, node_index: int) -> list[Pod]:
        return list(self.node_pods[node_index].values())

    def matching_pod_counts(self, namespace: str, selector: Mapping[str, str]) -> np.ndarray:
        """Per node, the placed pods in ``namespace`` whose labels contain every pair of ``selector``."""
        counts = np.zeros(self.num_nodes, dtype=np.int64)
        if not selector:
            return counts
        sets = [self._pod_label_index.get(kv, set()) for kv in selector.items()]
        sets.sort(key=len)
        uids = set.intersection(*sets) if sets else set()
        idx = [self.node_index[self.placements[u].node_name] for u in uids
               if self.pods[u].namespace == namespace]
        if idx:
            counts += np.bincount(np.asarray(idx), minlength=self.num_nodes)
        return counts

    # ------------------------------------------------------------------ GPU choice
    def default_gpu_choice(self, pod: Pod, node_index: int) -> tuple[int, ...]:
        """Which GPUs of a node a pod gets when no plugin chose: best fit per GPU.

        A pod sharing a GPU (gpu_milli < 1000) takes the fitting GPU with the least free milli, so a
        half-used GPU is filled before a whole one is broken into; whole-GPU pods take the lowest-index
        fully free GPUs. Ties go to the lower index. Empty tuple when the pod needs no GPU or none fits.
        """
        if pod.num_gpu == 0:
            return ()
        free = self.gpu_free_milli[node_index]
        fits = np.flatnonzero(free >= pod.gpu_milli)
        if len(fits) < pod.num_gpu:
            return ()
        order = fits[np.argsort(free[fits], kind="stable")]
        return tuple(int(g) for g in sorted(order[: pod.num_gpu]))

    # ------------------------------------------------------------------ assign / release
    def can_assign(self, pod: Pod, node_index: int, gpu_indices: Iterable[int] | None = None) -> str | None:
        """None when ``pod`` fits on the node with those GPUs, else what is short."""
        n = node_index
        if not 0 <= n < self.num_nodes:
            return f"node index {n} out of range"
        if pod.cpu_milli > self.cpu_free_milli[n]:
            return "Insufficient cpu"
        if pod.memory_mib > self.memory_free_mib[n]:
            return "Insufficient memory"
        if self.pods_count[n] + 1 > self.pods_capacity[n]:
            return "Too many pods"
        for k, v in pod.extended.items():
            col = self.scalar_index.get(k)
            if v > 0 and (col is None or v > self.scalar_free[n, col]):
                return f"Insufficient {k}"
        if pod.num_gpu:
            gpus = tuple(gpu_indices) if gpu_indices is not None else self.default_gpu_choice(pod, n)
            if len(gpus) != pod.num_gpu or len(set(gpus)) != len(gpus):
                return f"Insufficient nvidia.com/gpu (need {pod.num_gpu} GPUs, got indices {gpus})"
            for g in gpus:
                if not 0 <= g < self.gpu_count[n]:
                    return f"node {self.nodes[n].name} has no GPU {g}"
                if pod.gpu_milli > self.gpu_free_milli[n, g]:
                    return "Insufficient nvidia.com/gpu"
        elif gpu_indices:
            return "pod asks for no GPU but GPU indices were given"
        if not 0 < pod.gpu_milli <= MILLI_PER_GPU and pod.num_gpu:
            return f"gpu_milli must be in 1..1000, got {pod.gpu_milli}"
        return None

    def assign(self, pod: Pod, node_index: int, gpu_indices: Iterable[int] | None = None, *,
               force: bool = False) -> Placement:
        """Place ``pod`` on node ``node_index`` taking ``gpu_indices`` (default: :meth:`default_gpu_choice`).

        Raises AssignError, changing nothing, when the pod is already placed or does not fit. ``force``
        skips the fit check (for a backend mirroring a placement the real cluster already made; the caller
        then answers for the invariants).
        """
        if pod.uid in self.placements:
            raise AssignError(f"pod {pod.key} is already placed on {self.placements[pod.uid].node_name}")
        n = node_index
        gpus = tuple(int(g) for g in gpu_indices) if gpu_indices is not None else \
            self.default_gpu_choice(pod, n)
        if not force:
            problem = self.can_assign(pod, n, gpus)
            if problem:
                name = self.nodes[n].name if 0 <= n < self.num_nodes else str(n)
                raise AssignError(f"cannot place pod {pod.key} on node {name}: {problem}")
        ncpu, nmem = nonzero_requests(pod)
        ext = {k: v for k, v in pod.extended.items() if v}
        placement = Placement(pod.uid, self.nodes[n].name, pod.cpu_milli, pod.memory_mib, ncpu, nmem, gpus,
                              pod.gpu_milli if gpus else 0, ext)
        self.cpu_free_milli[n] -= pod.cpu_milli
        self.memory_free_mib[n] -= pod.memory_mib
        self.pods_count[n] += 1
        self.nonzero_cpu_requested[n] += ncpu
        self.nonzero_memory_requested[n] += nmem
        for k, v in ext.items():
            col = self.scalar_index.get(k)
            if col is not None:
                self.scalar_free[n, col] -= v
        for g in gpus:
            self.gpu_free_milli[n, g] -= placement.gpu_milli
        if gpus:
            self.gpu_pod_kind_count[n, gpu_pod_kind(placement)] += 1
        self.placements[pod.uid] = placement
        self.pods[pod.uid] = pod
        self.node_pods[n][pod.uid] = pod
        for kv in pod.labels.items():
            self._pod_label_index.setdefault(kv, set()).add(pod.uid)
        self.generation += 1
        return placement

    def release(self, pod_uid: str) -> Placement:
        """Give back exactly what :meth:`assign` took for this pod, and return that placement."""
        placement = self.placements.pop(pod_uid, None)
        if placement is None:
            raise AssignError(f"pod uid {pod_uid} is not placed")
        pod = self.pods.pop(pod_uid)
        n = self.node_index[placement.node_name]
        self.cpu_free_milli[n] += placement.cpu_milli
        self.memory_free_mib[n] += placement.memory_mib
        self.pods_count[n] -= 1
        self.nonzero_cpu_requested[n] -= placement.nonzero_cpu_milli
        self.nonzero_memory_requested[n] -= placement.nonzero_memory_mib
        for k, v in placement.extended.items():
            col = self.scalar_index.get(k)
            if col is not None:
                self.scalar_free[n, col] += v
        for g in placement.gpu_indices:
            self.gpu_free_milli[n, g] += placement.gpu_milli
        if placement.gpu_indices:
            self.gpu_pod_kind_count[n, gpu_pod_kind(placement)] -= 1
        del self.node_pods[n][pod_uid]
        for kv in pod.labels.items():
            bucket = self._pod_label_index.get(kv)
            if bucket is not None:
                bucket.discard(pod_uid)
                if not bucket:
                    del self._pod_label_index[kv]
        self.generation += 1
        return placement

    # ------------------------------------------------------------------ totals and checks
    @property
    def gpu_total_milli(self) -> int:
        return int(self.gpu_capacity_milli.sum())

    @property
    def gpu_allocated_milli(self) -> int:
        return int(self.gpu_capacity_milli.sum() - self.gpu_free_milli.sum())

    def check_invariants(self) -> None:
        """Raise AssertionError if any free amount is out of bounds or disagrees with the placements."""
        assert (self.cpu_free_milli >= 0).all(), "cpu over-committed"
        assert (self.memory_free_mib >= 0).all(), "memory over-committed"
        assert (self.pods_count <= self.pods_capacity).all(), "too many pods"
        assert (self.scalar_free >= 0).all(), "extended resource over-committed"
        assert (self.gpu_free_milli >= 0).all(), "GPU above 1000 milli allocated"
        assert (self.gpu_free_milli <= self.gpu_capacity_milli).all(), "GPU free above capacity"
        assert (self.gpu_free_milli[~self.gpu_exists] == 0).all(), "padded GPU slot has free milli"
        cpu = self.cpu_capacity_milli.copy()
        mem = self.memory_capacity_mib.copy()
        gpu = self.gpu_capacity_milli.astype(np.int64)
        for p in self.placements.values():
            n = self.node_index[p.node_name]
            cpu[n] -= p.cpu_milli
            mem[n] -= p.memory_mib
            for g in p.gpu_indices:
                gpu[n, g] -= p.gpu_milli
        assert (cpu == self.cpu_free_milli).all(), "cpu accounting drifted"
        assert (mem == self.memory_free_mib).all(), "memory accounting drifted"
        assert (gpu == self.gpu_free_milli).all(), "GPU accounting drifted"
        pods = np.zeros(self.num_nodes, dtype=np.int64)
        ncpu = np.zeros(self.num_nodes, dtype=np.int64)
        nmem = np.zeros(self.num_nodes, dtype=np.int64)
        scalar = self.scalar_capacity.copy()
        for p in self.placements.values():
            n = self.node_index[p.node_name]
            pods[n] += 1
            ncpu[n] += p.nonzero_cpu_milli
            nmem[n] += p.nonzero_memory_mib
            for k, v in p.extended.items():
                if k in self.scalar_index:
                    scalar[n, self.scalar_index[k]] -= v
        assert (pods == self.pods_count).all(), "pod count drifted"
        assert (ncpu == self.nonzero_cpu_requested).all(), "non-zero cpu accounting drifted"
        assert (nmem == self.nonzero_memory_requested).all(), "non-zero memory accounting drifted"
        assert (scalar == self.scalar_free).all(), "extended resource accounting drifted"
        assert sum(len(d) for d in self.node_pods) == len(self.placements) == len(self.pods), \
            "pod indexes drifted"

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of every mutable column (tests compare before/after)."""
        return {k: getattr(self, k).copy() for k in (
            "cpu_free_milli", "memory_free_mib", "pods_count", "nonzero_cpu_requested",
            "nonzero_memory_requested", "gpu_free_milli", "scalar_free", "gpu_pod_kind_count")}
