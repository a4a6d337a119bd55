"""The objects every room speaks: Resources, GPU devices, Node, Pod, PodGroup, taints and affinity.

Field meanings follow Kubernetes' core/v1 API (Node, Pod, Taint, Toleration, NodeSelectorRequirement)
and the coscheduling PodGroup (scheduling.x-k8s.io/v1alpha1). GPU sharing follows the openb trace's
model (Alibaba cluster-trace-gpu-v2023): a pod asks for ``num_gpu`` GPUs and, on each, ``gpu_milli``
thousandths of the GPU (1000 = the whole GPU; below 1000 only makes sense for one GPU).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Mapping

GPU_RESOURCE = "nvidia.com/gpu"
GPU_MILLI_RESOURCE = "gpufleet.io/gpu-milli"
GPU_MODELS_ANNOTATION = "gpufleet.io/gpu-models"
GPU_INDEX_ANNOTATION = "gpufleet.io/gpu-index"
GPU_MODEL_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
LEGACY_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone"
LEGACY_REGION_LABEL = "failure-domain.beta.kubernetes.io/region"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
DEFAULT_SCHEDULER_NAME = "default-scheduler"
MILLI_PER_GPU = 1000

_uid_counter = itertools.count(1)


def _next_uid() -> str:
    return f"uid-{next(_uid_counter)}"


@dataclass(frozen=True)
class Resources:
    """Schedulable amounts: CPU in millicores, memory in MiB, extended resources by name."""

    cpu_milli: int = 0
    memory_mib: int = 0
    extended: Mapping[str, int] = field(default_factory=dict)

    def __add__(self, other: "Resources") -> "Resources":
        ext = dict(self.extended)
        for k, v in other.extended.items():
            ext[k] = ext.get(k, 0) + v
        return Resources(self.cpu_milli + other.cpu_milli, self.memory_mib + other.memory_mib, ext)


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # NoSchedule | PreferNoSchedule | NoExecute

    def __str__(self) -> str:
        return f"{{{self.key}: {self.value}}}"


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""  # empty matches every effect

    def tolerates(self, taint: Taint) -> bool:
        """core/v1 Toleration.ToleratesTaint: effect, then key (empty key + Exists matches all), then value."""
        if self.effect and self.effect != taint.effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass(frozen=True)
class NodeSelectorRequirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSelectorTerm:
    """All requirements must hold (AND); the terms of a selector are ORed."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()


@dataclass(frozen=True)
class GpuDevice:
    """One physical GPU of a node. ``kind`` leaves room for partitioned devices (MIG, vGPU)."""

    index: int
    model: str
    memory_mib: int = 0
    kind: str = "whole"  # whole | mig | vgpu
    profile: str = ""  # MIG or vGPU profile name when partitioned


@dataclass
class Node:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: list[GpuDevice] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    extended: dict[str, int] = field(default_factory=dict)
    max_pods: int = 110
    unschedulable: bool = False

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def gpu_model(self) -> str:
        return self.gpus[0].model if self.gpus else ""

    @staticmethod
    def with_gpus(name: str, cpu_milli: int, memory_mib: int, gpu_count: int = 0, gpu_model: str = "",
                  gpu_memory_mib: int = 0, **kwargs) -> "Node":
        gpus = [GpuDevice(i, gpu_model, gpu_memory_mib) for i in range(gpu_count)]
        labels = dict(kwargs.pop("labels", {}) or {})
        if gpu_count and gpu_model:
            labels.setdefault(GPU_MODEL_LABEL, gpu_model)
        return Node(name, cpu_milli, memory_mib, gpus, labels=labels, **kwargs)


@dataclass(frozen=True)
class OwnerReference:
    kind: str
    name: str


@dataclass
class Pod:
    name: str
    cpu_milli: int = 0
    memory_mib: int = 0
    num_gpu: int = 0
    gpu_milli: int = 0  # per GPU; 1000 = whole GPU
    gpu_models: tuple[str, ...] = ()  # allowed GPU models; empty = any
    extended: dict[str, int] = field(default_factory=dict)
    namespace: str = "default"
    priority: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    required_node_affinity: tuple[NodeSelectorTerm, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    owner: OwnerReference | None = None
    pod_group: str | None = None
    node_name: str | None = None  # requested node (spec.nodeName) before binding; the chosen node after
    creation_time: float = 0.0
    deletion_time: float | None = None
    uid: str = field(default_factory=_next_uid)
    # Set when bound: the node and the indices of the GPUs the pod got on it.
    gpu_indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.num_gpu and not self.gpu_milli:
            self.gpu_milli = MILLI_PER_GPU
        if self.pod_group is None and POD_GROUP_LABEL in self.labels:
            self.pod_group = self.labels[POD_GROUP_LABEL]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def gpu_request_milli(self) -> int:
        """Total GPU milli the pod asks for (num_gpu x gpu_milli)."""
        return self.num_gpu * self.gpu_milli

    @property
    def is_fractional(self) -> bool:
        return self.num_gpu > 0 and self.gpu_milli < MILLI_PER_GPU

    @property
    def requests(self) -> Resources:
        return Resources(self.cpu_milli, self.memory_mib, dict(self.extended))


@dataclass
class PodGroup:
    """A gang: none of its pods binds until ``min_member`` of them have a place (coscheduling)."""

    name: str
    min_member: int
    namespace: str = "default"
    schedule_timeout_seconds: float = 60.0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
