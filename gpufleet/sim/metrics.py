"""Metrics: GPU allocation ratio, FGD's fragmentation and fragmentation ratio, queueing-delay percentiles.

* GPU allocation ratio = allocated GPU milli / total GPU milli of the cluster (FGD paper, Sec. 6).
* Fragmentation (FGD paper Sec. 3, "Beware of Fragmentation", USENIX ATC'23, and its simulator):
  the *typical pods* are the distinct request shapes (cpu_milli, num_gpu, gpu_milli, allowed GPU models)
  of the workload, sorted by how many pods have them, kept until they cover 95% of the pods, with their
  frequencies ``p_m`` renormalised to sum to 1. For node n and typical pod m, ``frag(n, m)`` in GPU milli:
  if m asks for no GPU, or cannot fit on n at all (not enough free CPU, fewer than num_gpu GPUs with
  gpu_milli free each, or a GPU model m does not allow), every free GPU milli of n is fragment; otherwise
  only the free milli of the GPUs with less than m's gpu_milli free is. Memory is not part of the shape
  and is not checked. ``F_n = sum_m p_m * frag(n, m)``; cluster fragment = sum_n F_n;
  fragmentation ratio = cluster fragment / total idle (free) GPU milli.
  Computed over all nodes and GPU slots at once with numpy; only the few typical pods are looped over.
* Queueing delay = bind time - creation time; percentiles by numpy's linear interpolation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..cluster import ClusterState, Pod

TYPICAL_POD_COVERAGE = 0.95


@dataclass(frozen=True)
class PodShape:
    cpu_milli: int
    num_gpu: int
    gpu_milli: int
    gpu_models: tuple[str, ...] = ()  # empty = any model


@dataclass(frozen=True)
class TypicalPod:
    shape: PodShape
    frequency: float  # renormalised over the typical pods: they sum to 1


def pod_shape(pod: Pod) -> PodShape:
    return PodShape(pod.cpu_milli, pod.num_gpu, pod.gpu_milli if pod.num_gpu else 0, tuple(pod.gpu_models))


def typical_pods(pods: Iterable[Pod], coverage: float = TYPICAL_POD_COVERAGE) -> list[TypicalPod]:
    """The most frequent shapes covering ``coverage`` of the pods (ties: smaller shape first)."""
    counts = Counter(pod_shape(p) for p in pods)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].num_gpu, kv[0].gpu_milli, kv[0].cpu_milli,
                                                     kv[0].gpu_models))
    return _covering(ranked, coverage * total)


def _covering(ranked: list[tuple[PodShape, int]], enough: float) -> list[TypicalPod]:
    """The shapes of ``ranked`` (most frequent first) added one by one while fewer than ``enough`` pods are
    covered, with frequencies renormalised over the kept shapes."""
    kept, covered = [], 0
    for shape, count in ranked:
        if covered >= enough:
            break
        kept.append((shape, count))
        covered += count
    return [TypicalPod(shape, count / covered) for shape, count in kept]


def fgd_typical_pods(pods: Iterable[Pod], coverage: float = TYPICAL_POD_COVERAGE) -> list[TypicalPod]:
    """Typical pods exactly as the FGD simulator derives them (pkg/utils/frag.go GetTypicalPods with the
    experiment's typicalPodsConfig: CPU pods included, popularity threshold 95%, step 1, no GPU weighting).

    Shapes are (CPU milli as kube's non-zero request: 100 when 0, GPU count, milli per GPU, allowed models as
    the trace's ``gpu_spec`` string); sorted by count, ties in the simulator's order (sort.Reverse of
    PodResource.Less: larger CPU, then larger milli, GPU count, model string first); shapes are added one by
    one while the covered pods are fewer than ``coverage`` of all; frequencies renormalised over the kept ones.
    """
    counts = Counter(PodShape(p.cpu_milli or 100, p.num_gpu, p.gpu_milli if p.num_gpu else 0,
                              tuple(p.gpu_models)) for p in pods)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0].cpu_milli, kv[0].gpu_milli, kv[0].num_gpu,
                                                    "|".join(kv[0].gpu_models)), reverse=True)
    return _covering(ranked, coverage * total)


def typical_pods_args(typical: Sequence[TypicalPod]) -> list[dict]:
    """Typical pods as the ``typicalPods`` plugin arg of the fragmentation plugins (scheduler.fragmentation)."""
    return [{"cpuMilli": m.shape.cpu_milli, "numGpu": m.shape.num_gpu, "gpuMilli": m.shape.gpu_milli,
             "gpuModels": list(m.shape.gpu_models), "frequency": m.frequency} for m in typical]


def node_fragmentation(cluster: ClusterState, typical: Sequence[TypicalPod]) -> np.ndarray:
    """F_n per node, in GPU milli (float)."""
    free = cluster.gpu_free_milli.astype(np.int64)
    free_total = free.sum(axis=1)
    fragment = np.zeros(cluster.num_nodes)
    for m in typical:
        shape = m.shape
        if shape.num_gpu == 0:
            fragment += m.frequency * free_total
            continue
        enough = free >= shape.gpu_milli
        fits = (np.count_nonzero(enough, axis=1) >= shape.num_gpu) & (cluster.cpu_free_milli >= shape.cpu_milli)
        if shape.gpu_models:
            ids = [i for i, name in enumerate(cluster.gpu_model_names) if name in shape.gpu_models]
            fits &= np.isin(cluster.gpu_model_id, ids)
        partial = np.where(enough, 0, free).sum(axis=1)
        fragment += m.frequency * np.where(fits, partial, free_total)
    return fragment


def cluster_fragmentation(cluster: ClusterState, typical: Sequence[TypicalPod]) -> tuple[float, float]:
    """(total fragment in GPU milli, fragmentation ratio = fragment / idle GPU milli; 0 when nothing idle)."""
    fragment = float(node_fragmentation(cluster, typical).sum())
    idle = int(cluster.gpu_free_milli.sum())
    return fragment, fragment / idle if idle else 0.0


def allocation_ratio(cluster: ClusterState) -> float:
    total = cluster.gpu_total_milli
    return cluster.gpu_allocated_milli / total if total else 0.0


def delay_percentiles(delays: Sequence[float], quantiles=(50, 90, 99)) -> dict[str, float | None]:
    """{"p50": ..., "p90": ..., "p99": ...} in seconds; None when no pod was bound."""
    if not len(delays):
        return {f"p{q}": None for q in quantiles}
    values = np.percentile(np.asarray(delays, dtype=float), quantiles)
    return {f"p{q}": float(v) for q, v in zip(quantiles, values)}
