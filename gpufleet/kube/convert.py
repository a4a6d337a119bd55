"""Kubernetes Node and Pod objects (the API's JSON, as dicts) to gpufleet's Node and Pod.

The shapes are core/v1's (https://kubernetes.io/docs/reference/kubernetes-api/): a node's schedulable
capacity is ``status.allocatable`` (cpu, memory, pods, ``nvidia.com/gpu`` from NVIDIA's device plugin,
MIG resources such as ``nvidia.com/mig-1g.5gb`` and vGPU resources such as ``nvidia.com/GRID_T4-2Q`` kept
as extended resources); labels come along whole (``topology.kubernetes.io/zone``, GPU feature
discovery's ``nvidia.com/gpu.product`` and ``nvidia.com/gpu.memory``, the GPU operator's
``nvidia.com/gpu.workload.config``). Parsing reuses :mod:`gpufleet.cluster.spec` (``parse_node`` and
``parse_pod`` over a :class:`Field`), so a file and the API read alike.

A pod keeps its API ``metadata.uid``. A pod is terminal when ``status.phase`` is Succeeded or Failed
(kube-scheduler's informer drops those: pkg/scheduler/eventhandlers.go). A bound pod's GPUs are read from
the ``gpufleet.io/gpu-index`` annotation ("0,3") that gpufleet writes before binding.
"""

from __future__ import annotations

from ..cluster import GPU_INDEX_ANNOTATION, Node, Pod
from ..cluster.spec import Field, parse_node, parse_pod

TERMINAL_PHASES = ("Succeeded", "Failed")


def object_key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")


def node_from_k8s(obj: dict) -> Node:
    """A core/v1 Node as gpufleet's Node; SpecError naming the node and field when it cannot be read."""
    return parse_node(Field(obj, "", f"node {object_key(obj)}", None))


def pod_from_k8s(obj: dict) -> Pod:
    """A core/v1 Pod as gpufleet's Pod, with the API's uid; ``node_name`` is spec.nodeName."""
    pod = parse_pod(Field(obj, "", f"pod {object_key(obj)}", None))
    meta = obj.get("metadata") or {}
    if meta.get("uid"):
        pod.uid = meta["uid"]
    pod.deletion_time = 0.0 if meta.get("deletionTimestamp") else None
    return pod


def is_terminal(obj: dict) -> bool:
    return ((obj.get("status") or {}).get("phase")) in TERMINAL_PHASES


def is_being_deleted(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def bound_node(obj: dict) -> str:
    return (obj.get("spec") or {}).get("nodeName") or ""


def gpu_indices_from_annotation(pod: Pod) -> tuple[int, ...] | None:
    """The GPU indices recorded on a pod ("0,3"), or None when absent or unreadable."""
    text = pod.annotations.get(GPU_INDEX_ANNOTATION, "").strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        return None
