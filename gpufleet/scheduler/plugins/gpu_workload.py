"""GpuWorkloadType: a node serves one GPU workload type only, and a pod goes to a node of its type.

Rule (NVIDIA GPU Operator with KubeVirt, "Assumptions, constraints and dependencies"; shared seed 004):
"a GPU worker node can run GPU workloads of a particular type -- containers, VMs with GPU passthrough or
VMs with vGPU -- but not a combination". The node's type is its ``nvidia.com/gpu.workload.config`` label,
or the cluster default (args ``defaultWorkload``, the operator's ``sandboxWorkloads.defaultWorkload``,
``container``) when absent. The pod's type follows from the GPU resources it asks for, named as NVIDIA's
device plugins name them:

* container: ``nvidia.com/gpu``, ``gpufleet.io/gpu-milli``, ``nvidia.com/gpu.shared`` (time-slicing),
  ``nvidia.com/mig-<profile>`` (MIG, mixed strategy);
* vm-vgpu: ``nvidia.com/NVIDIA_<vGPU type>`` (sandbox device plugin: the mdev type name, spaces to ``_``);
* vm-passthrough: any other ``nvidia.com/<PCI device name>`` (sandbox device plugin: the pci.ids name).

The facts come from the resource names and the node label, so the plugin needs nothing from the GPU
catalog (gpufleet.devices writes the effective label on every GPU node it configures). A pod asking for
no GPU resource passes everywhere; a pod asking for resources of two types fits nowhere.
"""

from __future__ import annotations

import numpy as np

from ...cluster import GPU_MILLI_RESOURCE, GPU_RESOURCE
from ..framework import FilterResult, Plugin

WORKLOAD_LABEL = "nvidia.com/gpu.workload.config"
WORKLOADS = ("container", "vm-passthrough", "vm-vgpu")
WRONG_TYPE = "node(s) serve another GPU workload type"
MIXED_TYPES = "pod asks for GPU resources of more than one workload type"


def resource_workload(name: str) -> str | None:
    """The workload type a GPU resource belongs to; None for a resource that is not a GPU resource."""
    if name in (GPU_RESOURCE, GPU_MILLI_RESOURCE, "nvidia.com/gpu.shared") or name.startswith("nvidia.com/mig-"):
        return "container"
    if name.startswith("nvidia.com/NVIDIA_"):
        return "vm-vgpu"
    if name.startswith("nvidia.com/") and "." not in name.split("/", 1)[1].split("-")[0]:
        return "vm-passthrough"
    return None


def pod_workload(pod) -> set[str]:
    kinds = {resource_workload(k) for k, v in pod.extended.items() if v}
    if pod.num_gpu:
        kinds.add("container")
    kinds.discard(None)
    return kinds


class GpuWorkloadType(Plugin):
    name = "GpuWorkloadType"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        self.default_workload = self.args.get("defaultWorkload", "container")
        if self.default_workload not in WORKLOADS:
            raise ValueError(f"defaultWorkload: expected one of {', '.join(WORKLOADS)}, got {self.default_workload!r}")

    def filter(self, state, pod, cluster, nodes):
        kinds = pod_workload(pod)
        if not kinds:
            return FilterResult.all_pass(len(nodes))
        if len(kinds) > 1:
            return FilterResult.from_failures(len(nodes), [(MIXED_TYPES, np.ones(len(nodes), dtype=bool))],
                                              unresolvable=True)
        (kind,) = kinds
        codes, vocab = cluster.label_codes(WORKLOAD_LABEL)
        node_codes = codes[nodes]
        ok = node_codes == vocab.get(kind, -2)
        if kind == self.default_workload:
            ok |= node_codes == -1
        return FilterResult.from_failures(len(nodes), [(WRONG_TYPE, ~ok)])
