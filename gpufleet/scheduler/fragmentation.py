"""FGD's GPU fragmentation measure, vectorised over candidate node states, for the fragmentation plugins.

Rule (FGD paper, "Beware of Fragmentation", USENIX ATC'23, Sec. 3-4; its simulator
hkust-adsl/kubernetes-scheduler-simulator pkg/utils/frag.go NodeGpuShareFragAmount / GetNodePodFrag):

* The workload is summarised by *typical pods* m with frequencies p_m (sum 1): request shapes
  (cpu milli, GPU count, milli per GPU, allowed GPU models). The simulator passes them to the plugins; here they
  arrive as plugin args (``typicalPods``, see :meth:`TypicalPods.from_args`), computed once per experiment by
  the backend (gpufleet.sim.metrics.fgd_typical_pods).
* For node n and typical pod m, frag(n, m) in GPU milli:
  - m asks for no GPU (its milli is 0): every free GPU milli of n is fragment (FGD's "XL/XR" classes);
  - n's GPU model is not one m allows ("no access"), n's free CPU < m's CPU ("lack CPU"), or n has fewer than
    num_gpu GPUs with m's milli free each ("lack GPU"): every free GPU milli of n is fragment;
  - otherwise ("satisfied", Q3) only the free milli of the GPUs with less than m's milli free is fragment.
* F_n = sum_m p_m * frag(n, m).

:func:`TypicalPods.fragment` evaluates F for a batch of node states ``(free GPU milli [S, G], free CPU [S],
GPU model id [S])`` at once: one ``[S, G, U]`` comparison against the U distinct milli values of the typical
pods, then ``[S, T]`` masks. :class:`FragmentCache` keeps, per pod shape, a score and GPU choice per node
and recomputes only the nodes whose free CPU or GPU changed since (a scheduling cycle changes one node), so
a policy pays for the whole cluster only the first time it sees a shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

MILLI_PER_GPU = 1000


@dataclass(frozen=True)
class TypicalPods:
    """The typical pods as columns: cpu_milli, num_gpu, gpu_milli, allowed models (tuples) and frequency."""

    cpu_milli: np.ndarray
    num_gpu: np.ndarray
    gpu_milli: np.ndarray
    models: tuple[tuple[str, ...], ...]
    frequency: np.ndarray
    _allowed_cache: dict = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def from_args(items: Sequence[dict]) -> "TypicalPods":
        """From plugin args: a list of ``{cpuMilli, numGpu, gpuMilli, gpuModels (list), frequency}``.

        ValueError naming the entry when a field is missing or out of range.
        """
        if not isinstance(items, (list, tuple)) or not items:
            raise ValueError("typicalPods: expected a non-empty list of {cpuMilli, numGpu, gpuMilli, "
                             "gpuModels, frequency}")
        cpu, num, milli, models, freq = [], [], [], [], []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"typicalPods[{i}]: expected a mapping")
            try:
                c, k, g = int(item.get("cpuMilli", 0)), int(item.get("numGpu", 0)), int(item.get("gpuMilli", 0))
                p = float(item["frequency"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"typicalPods[{i}]: expected integer cpuMilli, numGpu, gpuMilli and a number "
                                 "frequency") from None
            if c < 0 or k < 0 or not 0 <= g <= MILLI_PER_GPU or (k > 0) != (g > 0) or not 0 <= p <= 1:
                raise ValueError(f"typicalPods[{i}]: expected cpuMilli >= 0, numGpu >= 0, gpuMilli in 1..1000 "
                                 "when numGpu > 0 (else 0), frequency in 0..1")
            ms = item.get("gpuModels") or ()
            if isinstance(ms, str):
                ms = tuple(m for m in ms.split("|") if m)
            cpu.append(c), num.append(k), milli.append(g), models.append(tuple(ms)), freq.append(p)
        return TypicalPods(np.array(cpu, dtype=np.int64), np.array(num, dtype=np.int64),
                           np.array(milli, dtype=np.int64), tuple(models), np.array(freq, dtype=np.float64))

    def to_args(self) -> list[dict]:
        return [{"cpuMilli": int(c), "numGpu": int(k), "gpuMilli": int(g), "gpuModels": list(m),
                 "frequency": float(p)}
                for c, k, g, m, p in zip(self.cpu_milli, self.num_gpu, self.gpu_milli, self.models,
                                         self.frequency)]

    def __len__(self) -> int:
        return len(self.frequency)

    # ------------------------------------------------------------------ evaluation
    def _prepared(self, model_names: Sequence[str]):
        key = tuple(model_names)
        cached = self._allowed_cache.get(key)
        if cached is None:
            gpu = self.num_gpu > 0
            idx = np.flatnonzero(gpu)
            thresholds, which = np.unique(self.gpu_milli[idx], return_inverse=True)
            # allowed[model id + 1, t]: row 0 is "node without GPUs" (model id -1).
            allowed = np.ones((len(model_names) + 1, len(idx)), dtype=bool)
            for j, t in enumerate(idx):
                if self.models[t]:
                    allowed[0, j] = False
                    for mi, name in enumerate(model_names):
                        allowed[mi + 1, j] = name in self.models[t]
            cached = (idx, thresholds.astype(np.int64), which, allowed, float(self.frequency[~gpu].sum()))
            self._allowed_cache[key] = cached
        return cached

    def fragment(self, gpu_free: np.ndarray, cpu_free: np.ndarray, model_id: np.ndarray,
                 model_names: Sequence[str]) -> np.ndarray:
        """F for each of S node states (GPU milli, float64): gpu_free [S, G], cpu_free [S], model_id [S]."""
        idx, thresholds, which, allowed, p_cpu_only = self._prepared(model_names)
        free = np.asarray(gpu_free, dtype=np.int64)
        total = free.sum(axis=1).astype(np.float64)
        out = p_cpu_only * total
        if len(idx) == 0:
            return out
        enough = free[:, :, None] >= thresholds[None, None, :]  # [S, G, U]
        count = enough.sum(axis=1)  # GPUs with at least u free
        short = total[:, None] - (free[:, :, None] * enough).sum(axis=1)  # milli on GPUs with less than u
        fits = (count[:, which] >= self.num_gpu[idx][None, :])
        fits &= np.asarray(cpu_free)[:, None] >= self.cpu_milli[idx][None, :]
        fits &= allowed[np.asarray(model_id) + 1]
        frag = np.where(fits, short[:, which], total[:, None])
        return out + frag @ self.frequency[idx]


def capacity_fragment(typical: TypicalPods, gpu_free: np.ndarray, cpu_free: np.ndarray, model_id: np.ndarray,
                      model_names: Sequence[str]) -> np.ndarray:
    """Capacity fragmentation (gpufleet's extension of FGD's measure, docs/fgd.md): for typical pod m, the free
    GPU milli of the node that a stream of copies of m could *not* consume,

        copies(n, m) = min(GPU copies, floor(free CPU / m.cpu)) where GPU copies = sum over GPUs of
                       floor(free_g / m.milli) for a one-GPU pod, floor(#fully free GPUs / m.num_gpu) else;
        frag_cap(n, m) = total free - copies * m.num_gpu * m.milli  (all of it when m needs no GPU or the
                       node's model is not allowed),

    F_cap = sum_m p_m frag_cap(n, m). FGD's frag asks whether *one* copy fits; this one counts how much the
    node's free CPU and GPU shapes let copies use, so taking CPU from a node whose GPUs still need it, or
    leaving a remainder too small for the common shares, shows up as growth.
    """
    idx, thresholds, which, allowed, p_cpu_only = typical._prepared(model_names)
    free = np.asarray(gpu_free, dtype=np.int64)
    total = free.sum(axis=1).astype(np.float64)
    out = p_cpu_only * total
    if len(idx) == 0:
        return out
    per_gpu = (free[:, :, None] // thresholds[None, None, :]).sum(axis=1)  # copies of a one-GPU share [S, U]
    full = np.count_nonzero(free >= MILLI_PER_GPU, axis=1)  # [S]
    num = typical.num_gpu[idx]
    milli = typical.gpu_milli[idx]
    gpu_copies = np.where(num[None, :] == 1, per_gpu[:, which], full[:, None] // np.maximum(num, 1)[None, :])
    cpu = typical.cpu_milli[idx]
    cpu_copies = np.asarray(cpu_free, dtype=np.int64)[:, None] // np.maximum(cpu, 1)[None, :]
    copies = np.minimum(gpu_copies, np.maximum(cpu_copies, 0))
    copies = np.where(allowed[np.asarray(model_id) + 1], copies, 0)
    frag = total[:, None] - copies * (num * milli)[None, :]
    return out + frag @ typical.frequency[idx]


def sigmoid_score(delta: np.ndarray, scale: float = 1000.0) -> np.ndarray:
    """FGD's score: floor(sigmoid((F_before - F_after) / scale) * 100) (Go's int64 truncation), int64;
    FGD's scale is 1000 milli."""
    return np.trunc(100.0 / (1.0 + np.exp(-np.asarray(delta, dtype=np.float64) / scale))).astype(np.int64)


def whole_gpu_take(gpu_free: np.ndarray, num_gpu: int) -> np.ndarray:
    """Bool [S, G]: the ``num_gpu`` lowest-index fully free GPUs (the simulator's AllocateExclusiveGpuId)."""
    full = gpu_free >= MILLI_PER_GPU
    return full & (np.cumsum(full, axis=1) <= num_gpu)


@dataclass
class Placements:
    """Candidate placements of one pod on a set of nodes: per node, per candidate slot c, the state after.

    ``gpu_free`` [D, C, G] and ``cpu_free`` [D] after placing; ``valid`` [D, C]; ``choice`` [D, C] the GPU
    index of a fractional pod's candidate (-1 for whole-GPU and CPU pods, which have C = 1).
    """

    gpu_free: np.ndarray
    cpu_free: np.ndarray
    valid: np.ndarray
    choice: np.ndarray


def candidate_placements(gpu_free: np.ndarray, cpu_free: np.ndarray, cpu_milli: int, num_gpu: int,
                         gpu_milli: int) -> Placements:
    """Every way the simulator considers placing the pod on each node (FGD's calculateGpuShareFragExtendScore):
    a fractional pod on any one GPU with enough free milli; whole GPUs on the lowest-index free ones."""
    d, g = gpu_free.shape
    after_cpu = cpu_free - cpu_milli
    if num_gpu == 1 and gpu_milli < MILLI_PER_GPU:
        eye = np.eye(g, dtype=np.int64) * gpu_milli  # candidate c takes gpu_milli from GPU c
        after = gpu_free[:, None, :] - eye[None, :, :]
        valid = gpu_free >= gpu_milli
        choice = np.broadcast_to(np.arange(g), (d, g))
        return Placements(after, after_cpu, valid, choice)
    after = gpu_free.copy()
    if num_gpu:
        after = after - whole_gpu_take(gpu_free, num_gpu) * MILLI_PER_GPU
    return Placements(after[:, None, :], after_cpu, np.ones((d, 1), dtype=bool), np.full((d, 1), -1))


class FragmentCache:
    """Per pod shape, a score and a GPU choice per node, recomputed only where the node changed.

    ``evaluate(cluster, nodes, shape) -> (score [D] int, gpu [D] int)`` is the plugin's rule for a batch of
    nodes; it must depend only on the nodes' free CPU, free GPU milli and GPU model (checked here).
    """

    def __init__(self, max_shapes: int = 512):
        self.max_shapes = max_shapes
        self._shapes: dict = {}
        self._layout = None

    def lookup(self, cluster, nodes: np.ndarray, shape, evaluate: Callable) -> tuple[np.ndarray, np.ndarray]:
        layout = (cluster.num_nodes, cluster.max_gpus, tuple(cluster.gpu_model_names), id(cluster.gpu_model_id))
        if layout != self._layout:
            self._shapes.clear()
            self._layout = layout
        entry = self._shapes.get(shape)
        if entry is None:
            if len(self._shapes) >= self.max_shapes:
                self._shapes.pop(next(iter(self._shapes)))
            n = cluster.num_nodes
            entry = {"cpu": np.full(n, -1, dtype=np.int64), "gpu": np.full((n, cluster.max_gpus), -1, np.int64),
                     "score": np.zeros(n, dtype=np.int64), "choice": np.full(n, -1, dtype=np.int64)}
            self._shapes[shape] = entry
        stale = (entry["cpu"][nodes] != cluster.cpu_free_milli[nodes]) | \
            (entry["gpu"][nodes] != cluster.gpu_free_milli[nodes]).any(axis=1)
        todo = nodes[stale]
        if len(todo):
            score, choice = evaluate(cluster, todo)
            entry["score"][todo] = score
            entry["choice"][todo] = choice
            entry["cpu"][todo] = cluster.cpu_free_milli[todo]
            entry["gpu"][todo] = cluster.gpu_free_milli[todo]
        return entry["score"][nodes], entry["choice"][nodes]


def pod_shape_key(pod) -> tuple:
    return (fgd_cpu_milli(pod), pod.num_gpu, pod.gpu_milli if pod.num_gpu else 0, tuple(pod.gpu_models))


def fgd_cpu_milli(pod) -> int:
    """The simulator's pod CPU (GetPodResource): kube's non-zero request, 100 millicores when it asks none."""
    return pod.cpu_milli if pod.cpu_milli else 100


def typical_pods_arg(args: dict | None, plugin: str) -> TypicalPods | None:
    """The ``typicalPods`` plugin arg parsed (None when absent: the backend must supply it before scoring)."""
    items = (args or {}).get("typicalPods")
    if items is None:
        return None
    try:
        return TypicalPods.from_args(items)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def typical_or_pod(typical: TypicalPods | None, pod) -> TypicalPods:
    """The workload's typical pods; without them (a profile used outside the simulator's experiment) the pod
    being placed stands for the workload: one typical pod with frequency 1."""
    if typical is not None:
        return typical
    return TypicalPods.from_args([{"cpuMilli": fgd_cpu_milli(pod), "numGpu": pod.num_gpu,
                                   "gpuMilli": pod.gpu_milli if pod.num_gpu else 0,
                                   "gpuModels": list(pod.gpu_models), "frequency": 1.0}])


class GpuChoice:
    """CycleState ``gpu_choice`` for a fractional pod as one array: node index -> (GPU index,), no Python loop
    over nodes. GpuFit.reserve reads it with ``.get(node_index)``."""

    def __init__(self, num_nodes: int, nodes: np.ndarray, choice: np.ndarray):
        self._gpu = np.full(num_nodes, -1, dtype=np.int64)
        self._gpu[nodes] = choice

    def get(self, node_index: int, default=None):
        g = int(self._gpu[node_index])
        return (g,) if g >= 0 else default

    def __contains__(self, node_index) -> bool:
        return self.get(node_index) is not None
