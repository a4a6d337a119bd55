"""Node workload configs as the NVIDIA GPU Operator defines them, and what each node advertises.

Rules (GPU Operator with KubeVirt, shared seed 004; GPU Operator docs on MIG, time-slicing and vGPU):

* A GPU node runs one kind of GPU workload, named by its label ``nvidia.com/gpu.workload.config``:
  ``container``, ``vm-passthrough`` or ``vm-vgpu``; never a mix. Without the label the cluster-wide
  default applies (ClusterPolicy ``sandboxWorkloads.defaultWorkload``, itself ``container``). The label is
  read only when ``sandboxWorkloads.enabled`` is true; otherwise every node is a container node.
* Components: container -> NVIDIA datacenter driver, container toolkit, Kubernetes device plugin, DCGM,
  DCGM exporter (and the MIG manager where MIG is configured); vm-passthrough -> VFIO manager, sandbox
  device plugin; vm-vgpu -> vGPU manager, vGPU device manager, sandbox device plugin.
* Advertised resources: container -> ``nvidia.com/gpu`` per GPU; with MIG (label ``nvidia.com/mig.config``,
  mig-parted configs) under strategy ``single`` every MIG instance is one ``nvidia.com/gpu`` (all MIG
  GPUs must have one and the same profile), under ``mixed`` ``nvidia.com/mig-<profile>`` per instance and
  ``nvidia.com/gpu`` for the GPUs without MIG; with time-slicing (device plugin config ``sharing.timeSlicing``
  chosen by ``nvidia.com/device-plugin.config``) each GPU counts ``replicas`` times, as ``nvidia.com/gpu``
  or, with ``renameByDefault``, ``nvidia.com/gpu.shared``. vm-passthrough -> one PCI resource per GPU named
  by the sandbox device plugin (``nvidia.com/GA102GL_A10``). vm-vgpu -> the vGPU devices the node's vgpu
  config creates (label ``nvidia.com/vgpu.config``, default ``default``: two A10-12Q per A10), one
  ``nvidia.com/NVIDIA_<type>`` each.

gpufleet addition, for MIG-aware scheduling: a container node labelled ``gpufleet.io/mig.dynamic=true`` has
its MIG GPUs enabled with no instances (mig config ``all-enabled``) and gets instances created where the
scheduler places MIG pods (plugin MigPlacement). It advertises each profile's largest possible count (an
upper bound the fit filter checks; MigPlacement checks the real free slices), and labels carrying the slice
geometry: ``gpufleet.io/mig.gpus``, ``gpufleet.io/mig.slices`` (compute.memory) and one
``gpufleet.io/mig.<profile>`` = ``compute.memory.start-start-...`` per profile. Static MIG nodes carry
``gpufleet.io/mig.unusable-slices``: compute slices their layout leaves outside every instance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..cluster import GPU_RESOURCE, GpuDevice, Node, SpecError
from ..cluster.spec import ClusterSpec, Field
from .catalog import GpuModel, load_catalog
from .configs import DeviceConfigFile, MigLayout, VgpuLayout, load_config_file, resolve_mig, resolve_vgpu

WORKLOAD_LABEL = "nvidia.com/gpu.workload.config"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
VGPU_CONFIG_LABEL = "nvidia.com/vgpu.config"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MIG_DYNAMIC_LABEL = "gpufleet.io/mig.dynamic"
MIG_GPUS_LABEL = "gpufleet.io/mig.gpus"
MIG_SLICES_LABEL = "gpufleet.io/mig.slices"
MIG_PROFILE_LABEL_PREFIX = "gpufleet.io/mig."
MIG_UNUSABLE_LABEL = "gpufleet.io/mig.unusable-slices"
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"

CONTAINER, VM_PASSTHROUGH, VM_VGPU = "container", "vm-passthrough", "vm-vgpu"
WORKLOADS = (CONTAINER, VM_PASSTHROUGH, VM_VGPU)
MIG_STRATEGIES = ("single", "mixed")

COMPONENTS = {
    CONTAINER: ["nvidia-driver (datacenter driver)", "nvidia-container-toolkit", "nvidia-device-plugin",
                "nvidia-dcgm", "nvidia-dcgm-exporter"],
    VM_PASSTHROUGH: ["nvidia-vfio-manager", "nvidia-sandbox-device-plugin"],
    VM_VGPU: ["nvidia-vgpu-manager", "nvidia-vgpu-device-manager", "nvidia-sandbox-device-plugin"],
}


@dataclass(frozen=True)
class TimeSlicing:
    replicas: int
    rename_by_default: bool = False


@dataclass
class OperatorSettings:
    """The ClusterPolicy settings gpufleet models (``spec.gpuOperator`` of a Cluster spec)."""

    sandbox_enabled: bool = False
    default_workload: str = CONTAINER
    mig_strategy: str = "single"
    mig_configs: DeviceConfigFile | None = None
    default_mig_config: str = "all-disabled"
    vgpu_configs: DeviceConfigFile | None = None
    default_vgpu_config: str = "default"
    device_plugin_configs: dict[str, TimeSlicing | None] = field(default_factory=dict)
    default_device_plugin_config: str | None = None


def parse_operator(f: Field | None, base: str | Path = ".") -> OperatorSettings:
    """``spec.gpuOperator``, shaped like the GPU Operator's ClusterPolicy spec::

        gpuOperator:
          sandboxWorkloads: {enabled: true, defaultWorkload: container}
          mig: {strategy: mixed}
          migManager: {config: {file: mig-parted.yaml, default: all-disabled}}
          vgpuDeviceManager: {config: {file: vgpu-configs.yaml, default: default}}
          devicePlugin: {config: {default: ts4, configs: {ts4: {version: v1, sharing: {timeSlicing:
                         {renameByDefault: true, resources: [{name: nvidia.com/gpu, replicas: 4}]}}}}}}

    Config file paths are relative to the cluster spec's folder.
    """
    s = OperatorSettings()
    if f is None or f.value is None:
        return s
    _known(f, ("sandboxWorkloads", "mig", "migManager", "vgpuDeviceManager", "devicePlugin"))
    sandbox = f.get("sandboxWorkloads")
    _known(sandbox, ("enabled", "defaultWorkload"))
    s.sandbox_enabled = sandbox.get("enabled").boolean(False)
    s.default_workload = sandbox.get("defaultWorkload").string(CONTAINER)
    if s.default_workload not in WORKLOADS:
        raise sandbox.get("defaultWorkload").error(f"expected one of {', '.join(WORKLOADS)}, got "
                                                   f"{s.default_workload!r}")
    s.mig_strategy = f.get("mig").get("strategy").string("single")
    if s.mig_strategy not in MIG_STRATEGIES:
        raise f.get("mig").get("strategy").error(f"expected single or mixed, got {s.mig_strategy!r}")
    base = Path(base)
    for key, kind in (("migManager", "mig"), ("vgpuDeviceManager", "vgpu")):
        cfg = f.get(key).get("config")
        _known(cfg, ("file", "default"))
        default = cfg.get("default").value
        loaded = None
        if cfg.get("file").value is not None:
            path = Path(cfg.get("file").string())
            path = path if path.is_absolute() else base / path
            if not path.exists():
                raise cfg.get("file").error(f"no such file {str(path)!r} (expected a "
                                            f"{'mig-parted' if kind == 'mig' else 'vgpu-device-manager'} config)")
            loaded = load_config_file(path, kind)
        if kind == "mig":
            s.mig_configs = loaded
            s.default_mig_config = str(default) if default is not None else "all-disabled"
        else:
            s.vgpu_configs = loaded
            s.default_vgpu_config = str(default) if default is not None else "default"
        if loaded is not None and default is not None and str(default) not in loaded.configs:
            raise cfg.get("default").error(f"config {default!r} is not in {loaded.path}")
    dp = f.get("devicePlugin").get("config")
    _known(dp, ("default", "configs"))
    for name, c in dp.get("configs").keys_fields():
        s.device_plugin_configs[name] = _time_slicing(c)
    if dp.get("default").value is not None:
        s.default_device_plugin_config = dp.get("default").string()
        if s.default_device_plugin_config not in s.device_plugin_configs:
            raise dp.get("default").error(f"expected one of the configs ({', '.join(s.device_plugin_configs)}), "
                                          f"got {s.default_device_plugin_config!r}")
    return s


def _known(f: Field, keys: tuple[str, ...]) -> None:
    for k, sub in f.keys_fields():
        if k not in keys:
            raise sub.error(f"unknown field (expected {', '.join(keys)})")


def _time_slicing(c: Field) -> TimeSlicing | None:
    """A k8s-device-plugin config's sharing.timeSlicing (None: no sharing)."""
    ts = c.get("sharing").get("timeSlicing")
    if ts.value is None:
        return None
    resources = ts.require("resources").items()
    replicas = None
    for r in resources:
        if r.require("name").string() != GPU_RESOURCE:
            raise r.get("name").error(f"expected {GPU_RESOURCE} (gpufleet models time-slicing of whole GPUs)")
        replicas = r.require("replicas").integer(minimum=2)
    if replicas is None:
        raise ts.get("resources").error(f"expected one entry {{name: {GPU_RESOURCE}, replicas: N}}")
    return TimeSlicing(replicas, ts.get("renameByDefault").boolean(False))


# ---------------------------------------------------------------------------- per node
@dataclass
class PhysicalGpu:
    index: int
    model_name: str
    model: GpuModel | None
    mode: str  # whole | time-sliced | mig | mig-dynamic | passthrough | vgpu
    mig: MigLayout | None = None
    vgpu: VgpuLayout | None = None
    replicas: int = 1

    @property
    def layout(self) -> str:
        if self.mode == "mig":
            parts = [f"{p}@{s}" for p, s in self.mig.instances] if self.mig else []
            return "MIG " + (", ".join(parts) if parts else "enabled, no instances")
        if self.mode == "mig-dynamic":
            return "MIG on demand (gpufleet dynamic)"
        if self.mode == "vgpu":
            return f"{self.vgpu.count} x {self.vgpu.type_name}" if self.vgpu and self.vgpu.type_name else "no vGPU"
        if self.mode == "time-sliced":
            return f"time-sliced x{self.replicas}"
        return self.mode

    @property
    def unusable_compute_slices(self) -> int:
        """Compute slices a static MIG layout leaves outside every instance (e.g. 4 x 1g.10gb on A100-40GB)."""
        if self.mode != "mig" or not self.mig or not self.model or not self.model.mig or not self.mig.instances:
            return 0
        used = sum(self.model.mig.profiles[p].compute for p, _ in self.mig.instances)
        return self.model.mig.compute_slices - used


@dataclass
class NodeDevices:
    """One node as the GPU Operator would configure it."""

    node: Node  # as the spec wrote it
    workload: str | None  # None for a node without GPUs
    components: list[str]
    gpus: list[PhysicalGpu]
    advertised: dict[str, int]  # nvidia.com/* allocatable, as kubectl shows it
    mig_strategy: str = "single"
    sandbox_enabled: bool = False
    config_names: dict[str, str] = field(default_factory=dict)  # label -> config applied
    scheduler_node: Node | None = None


def _model_of(name: str) -> GpuModel | None:
    return load_catalog().find(name) if name else None


def configure_node(node: Node, settings: OperatorSettings) -> NodeDevices:
    """What the operator deploys on ``node`` and what the node then advertises."""
    labels = node.labels
    if not node.gpus:
        return NodeDevices(node, None, [], [], {}, scheduler_node=node)
    workload = labels.get(WORKLOAD_LABEL)
    if workload is not None and workload not in WORKLOADS:
        raise SpecError(f"node {node.name}: label {WORKLOAD_LABEL}={workload!r} (expected one of "
                        f"{', '.join(WORKLOADS)})", field=f"metadata.labels[{WORKLOAD_LABEL}]")
    if not settings.sandbox_enabled:
        if workload not in (None, CONTAINER):
            raise SpecError(f"node {node.name} is labelled {WORKLOAD_LABEL}={workload} but "
                            "spec.gpuOperator.sandboxWorkloads.enabled is false: the GPU Operator ignores the "
                            "label and runs containers (expected sandboxWorkloads.enabled: true)",
                            field="spec.gpuOperator.sandboxWorkloads.enabled")
        workload = CONTAINER
    elif workload is None:
        workload = settings.default_workload
    gpu_models = [(g.index, _model_of(g.model)) for g in node.gpus]
    if workload != CONTAINER:
        unknown = sorted({g.model for g, (_, m) in zip(node.gpus, gpu_models) if m is None})
        if unknown:
            raise SpecError(f"node {node.name}: GPU model {unknown[0]!r} is not in the catalog, so its "
                            f"{workload} resources are unknown (expected one of {', '.join(load_catalog().names())})",
                            field="gpuModel")
    out = NodeDevices(node, workload, list(COMPONENTS[workload]), [], {}, settings.mig_strategy,
                      settings.sandbox_enabled)
    adv: dict[str, int] = {}

    def add(resource: str, n: int) -> None:
        if n:
            adv[resource] = adv.get(resource, 0) + n

    if workload == VM_PASSTHROUGH:
        for g, (_, m) in zip(node.gpus, gpu_models):
            out.gpus.append(PhysicalGpu(g.index, g.model, m, "passthrough"))
            add(m.passthrough_resource, 1)
    elif workload == VM_VGPU:
        name = labels.get(VGPU_CONFIG_LABEL, settings.default_vgpu_config)
        out.config_names[VGPU_CONFIG_LABEL] = name
        layouts = resolve_vgpu(settings.vgpu_configs, name, gpu_models, node.name)
        for g, (i, m) in zip(node.gpus, gpu_models):
            lay = layouts[i]
            out.gpus.append(PhysicalGpu(g.index, g.model, m, "vgpu", vgpu=lay))
            if lay.type_name:
                add(m.vgpu[lay.type_name].resource, lay.count)
    else:
        _configure_container(node, settings, gpu_models, out, add)
    out.advertised = adv
    out.scheduler_node = _scheduler_node(out)
    return out


def _configure_container(node: Node, settings: OperatorSettings, gpu_models, out: NodeDevices, add) -> None:
    labels = node.labels
    dynamic = labels.get(MIG_DYNAMIC_LABEL, "false").lower() == "true"
    mig_name = labels.get(MIG_CONFIG_LABEL, "all-enabled" if dynamic else settings.default_mig_config)
    if dynamic and settings.mig_strategy != "mixed":
        raise SpecError(f"node {node.name}: {MIG_DYNAMIC_LABEL}=true needs spec.gpuOperator.mig.strategy: mixed "
                        "(each MIG profile is its own resource)", field="spec.gpuOperator.mig.strategy")
    mig_layouts: dict[int, MigLayout] = {}
    if mig_name != "all-disabled" or settings.mig_configs is not None:
        mig_layouts = resolve_mig(settings.mig_configs, mig_name, gpu_models, node.name)
        out.config_names[MIG_CONFIG_LABEL] = mig_name
    if dynamic and mig_name != "all-enabled":
        raise SpecError(f"node {node.name}: {MIG_DYNAMIC_LABEL}=true needs {MIG_CONFIG_LABEL}=all-enabled (MIG on, "
                        f"no instances), got {mig_name!r}", field=f"metadata.labels[{MIG_CONFIG_LABEL}]")
    dp_name = labels.get(DEVICE_PLUGIN_CONFIG_LABEL, settings.default_device_plugin_config)
    sharing = None
    if dp_name is not None:
        if dp_name not in settings.device_plugin_configs:
            raise SpecError(f"node {node.name}: device plugin config {dp_name!r} is not defined (expected one of "
                            f"{', '.join(settings.device_plugin_configs) or 'none: define spec.gpuOperator.devicePlugin.config.configs'})",
                            field=f"metadata.labels[{DEVICE_PLUGIN_CONFIG_LABEL}]")
        sharing = settings.device_plugin_configs[dp_name]
        out.config_names[DEVICE_PLUGIN_CONFIG_LABEL] = dp_name
    any_mig = any(l.enabled for l in mig_layouts.values())
    if any_mig:
        out.components.append("nvidia-mig-manager")
    single_profiles = set()
    for g, (i, m) in zip(node.gpus, gpu_models):
        lay = mig_layouts.get(i)
        if lay is not None and lay.enabled:
            mode = "mig-dynamic" if dynamic else "mig"
            out.gpus.append(PhysicalGpu(g.index, g.model, m, mode, mig=lay))
            for p, n in lay.counts().items():
                single_profiles.add(p)
        elif sharing is not None and not any_mig:
            out.gpus.append(PhysicalGpu(g.index, g.model, m, "time-sliced", replicas=sharing.replicas))
        else:
            out.gpus.append(PhysicalGpu(g.index, g.model, m, "whole"))
    if any_mig and settings.mig_strategy == "single":
        if any(p.mode != "mig" for p in out.gpus) or len(single_profiles) > 1:
            raise SpecError(f"node {node.name}: mig config {mig_name!r} under the single strategy needs every GPU in "
                            f"MIG mode with one and the same profile, got {sorted(single_profiles) or 'none'} "
                            "(expected an all-<profile> config, or mig.strategy: mixed)",
                            field=f"metadata.labels[{MIG_CONFIG_LABEL}]")
    for gpu in out.gpus:
        if gpu.mode == "whole":
            add(GPU_RESOURCE, 1)
        elif gpu.mode == "time-sliced":
            add(SHARED_GPU_RESOURCE if sharing and sharing.rename_by_default else GPU_RESOURCE, gpu.replicas)
        elif gpu.mode == "mig":
            for p, n in gpu.mig.counts().items():
                add(GPU_RESOURCE if settings.mig_strategy == "single" else gpu.model.mig.profiles[p].resource, n)
        elif gpu.mode == "mig-dynamic":
            for prof in gpu.model.mig.profiles.values():
                if "+" not in prof.name:
                    add(prof.resource, prof.max_instances)


def _scheduler_node(nd: NodeDevices) -> Node:
    """The node as the scheduler sees it: devices the pod gets through nvidia.com/gpu in ``gpus``, every
    other advertised resource as an extended resource, the effective workload label, and MIG facts."""
    node = nd.node
    labels = dict(node.labels)
    extended = {k: v for k, v in node.extended.items() if not k.startswith("nvidia.com/")}
    gpus: list[GpuDevice] = []
    for g in nd.gpus:
        if g.mode == "whole":
            gpus.append(GpuDevice(len(gpus), g.model_name, node.gpus[0].memory_mib, "whole"))
        elif g.mode == "time-sliced" and GPU_RESOURCE in nd.advertised:
            for _ in range(g.replicas):
                gpus.append(GpuDevice(len(gpus), g.model_name, node.gpus[0].memory_mib, "whole", "time-sliced"))
        elif g.mode == "mig" and nd.mig_strategy == "single":
            for p, _ in g.mig.instances:
                prof = g.model.mig.profiles[p]
                mem = g.model.memory_mib * prof.memory // g.model.mig.memory_slices
                gpus.append(GpuDevice(len(gpus), g.model_name, mem, "mig", p))
    for k, v in nd.advertised.items():
        if k != GPU_RESOURCE:
            extended[k] = v
    if nd.workload is not None and nd.sandbox_enabled:
        labels[WORKLOAD_LABEL] = nd.workload  # the effective type, for the GpuWorkloadType filter
    dynamic = [g for g in nd.gpus if g.mode == "mig-dynamic"]
    if dynamic:
        geo = dynamic[0].model.mig
        labels[MIG_GPUS_LABEL] = str(len(dynamic))
        labels[MIG_SLICES_LABEL] = f"{geo.compute_slices}.{geo.memory_slices}"
        for prof in geo.profiles.values():
            if "+" not in prof.name:
                labels[MIG_PROFILE_LABEL_PREFIX + prof.name] = \
                    f"{prof.compute}.{prof.memory}." + "-".join(str(s) for s in prof.placements)
    unusable = sum(g.unusable_compute_slices for g in nd.gpus)
    if unusable:
        labels[MIG_UNUSABLE_LABEL] = str(unusable)
    return dataclasses.replace(node, gpus=gpus, labels=labels, extended=extended)


def configure_cluster(spec: ClusterSpec) -> list[NodeDevices]:
    """Every node of a Cluster spec as the GPU Operator would configure it (spec.gpuOperator applies)."""
    base = Path(spec.source).parent if spec.source else Path(".")
    settings = parse_operator(spec.gpu_operator, base)
    out = []
    for node in spec.nodes:
        try:
            out.append(configure_node(node, settings))
        except SpecError as exc:
            if exc.file is None and spec.source:
                raise SpecError(exc.message, file=spec.source, field=exc.field) from None
            raise
    return out


def scheduler_nodes(spec: ClusterSpec) -> list[Node]:
    """The nodes of ``spec`` as the scheduler sees them once the operator configured them."""
    return [nd.scheduler_node for nd in configure_cluster(spec)]
