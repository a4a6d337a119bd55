"""The model every other room speaks: resources, GPU devices, nodes, pods, pod groups, ClusterState, specs.

This room imports nothing else of gpufleet.
"""

from .errors import AssignError, GpufleetError, SpecError
from .model import (DEFAULT_SCHEDULER_NAME, GPU_INDEX_ANNOTATION, GPU_MILLI_RESOURCE, GPU_MODEL_LABEL,
                    GPU_RESOURCE, MILLI_PER_GPU, ZONE_LABEL, GpuDevice, Node, NodeSelectorRequirement,
                    NodeSelectorTerm, OwnerReference, Pod, PodGroup, Resources, Taint, Toleration)
from .state import ClusterState, Placement
from .spec import ClusterSpec, WorkloadSpec, load_cluster, load_workload

__all__ = [
    "AssignError", "GpufleetError", "SpecError", "DEFAULT_SCHEDULER_NAME", "GPU_INDEX_ANNOTATION",
    "GPU_MILLI_RESOURCE", "GPU_MODEL_LABEL", "GPU_RESOURCE", "MILLI_PER_GPU", "ZONE_LABEL", "GpuDevice",
    "Node", "NodeSelectorRequirement", "NodeSelectorTerm", "OwnerReference", "Pod", "PodGroup", "Resources",
    "Taint", "Toleration", "ClusterState", "Placement", "ClusterSpec", "WorkloadSpec", "load_cluster",
    "load_workload",
]
