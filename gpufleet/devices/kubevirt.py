"""KubeVirt manifests for a cluster's GPUs: the KubeVirt CR patch and a VirtualMachineInstance.

Rules (GPU Operator with KubeVirt, "Add GPU resources to the KubeVirt CR" and "Create a virtual machine
with GPU"; shared seed 004; KubeVirt user guide, "Host Devices Assignment"):

* every passthrough GPU and vGPU type must be listed under ``spec.configuration.permittedHostDevices``
  before a VM may use it: ``pciHostDevices`` entries with ``pciVendorSelector`` (``10DE:2236``) and
  ``resourceName`` (``nvidia.com/GA102GL_A10``), ``mediatedDevices`` entries with ``mdevNameSelector``
  (``NVIDIA A10-24Q``) and ``resourceName`` (``nvidia.com/NVIDIA_A10-24Q``); ``externalResourceProvider:
  true`` because the GPU Operator's sandbox device plugin advertises them, not KubeVirt;
* feature gates ``GPU`` and ``DisableMDEVConfiguration`` (the vGPU device manager creates the mdevs);
* a VM gets a GPU through ``spec.domain.devices.gpus[]`` with ``deviceName`` (the resource) and ``name``.
"""

from __future__ import annotations

from ..cluster import GpufleetError
from .workload import VM_PASSTHROUGH, VM_VGPU, NodeDevices

FEATURE_GATES = ["GPU", "DisableMDEVConfiguration"]


def kubevirt_patch(nodes: list[NodeDevices]) -> dict:
    """The KubeVirt CR (partial) permitting every passthrough GPU and vGPU type the cluster advertises."""
    pci: dict[str, dict] = {}
    mdev: dict[str, dict] = {}
    for nd in nodes:
        for gpu in nd.gpus:
            if nd.workload == VM_PASSTHROUGH and gpu.model is not None:
                m = gpu.model
                pci.setdefault(m.passthrough_resource, {
                    "externalResourceProvider": True, "pciVendorSelector": m.pci_vendor_selector,
                    "resourceName": m.passthrough_resource})
            elif nd.workload == VM_VGPU and gpu.vgpu is not None and gpu.vgpu.type_name:
                prof = gpu.model.vgpu[gpu.vgpu.type_name]
                mdev.setdefault(prof.resource, {
                    "externalResourceProvider": True, "mdevNameSelector": prof.mdev_name,
                    "resourceName": prof.resource})
    if not pci and not mdev:
        raise GpufleetError("the cluster has no vm-passthrough or vm-vgpu node with GPUs, so there is nothing to "
                            "permit (label nodes nvidia.com/gpu.workload.config=vm-passthrough or vm-vgpu and set "
                            "spec.gpuOperator.sandboxWorkloads.enabled: true)")
    permitted: dict = {}
    if pci:
        permitted["pciHostDevices"] = [pci[k] for k in sorted(pci)]
    if mdev:
        permitted["mediatedDevices"] = [mdev[k] for k in sorted(mdev)]
    return {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
            "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
            "spec": {"configuration": {"developerConfiguration": {"featureGates": list(FEATURE_GATES)},
                                       "permittedHostDevices": permitted}}}


def vm_resources(nodes: list[NodeDevices]) -> dict[str, int]:
    """GPU resources VMs can ask for, summed over the cluster."""
    out: dict[str, int] = {}
    for nd in nodes:
        if nd.workload in (VM_PASSTHROUGH, VM_VGPU):
            for k, v in nd.advertised.items():
                out[k] = out.get(k, 0) + v
    return out


def vmi_manifest(name: str, resource: str, nodes: list[NodeDevices], count: int = 1, memory: str = "8Gi") -> dict:
    """A VirtualMachineInstance asking for ``count`` GPUs of ``resource`` (which some VM node must advertise)."""
    available = vm_resources(nodes)
    if resource not in available:
        raise GpufleetError(f"--gpu {resource}: no vm-passthrough or vm-vgpu node advertises it (expected one of "
                            f"{', '.join(sorted(available)) or 'none: the cluster has no VM GPU nodes'})")
    if count < 1:
        raise GpufleetError(f"--count: expected at least 1, got {count}")
    gpus = [{"deviceName": resource, "name": f"gpu{i + 1}"} for i in range(count)]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name},
            "spec": {"domain": {"devices": {"gpus": gpus}, "resources": {"requests": {"memory": memory}}}}}
