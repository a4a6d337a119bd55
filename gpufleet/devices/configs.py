"""Parsers for NVIDIA's partitioning configs and their application to a node's GPUs.

Formats (version v1), as NVIDIA's tools read them:

* mig-parted (NVIDIA/mig-parted, ``nvidia.com/mig.config`` selects one on a node)::

    version: v1
    mig-configs:
      NAME:
        - devices: all | [0, 1]          # GPU indices on the node
          device-filter: "0x20B010DE"    # optional: PCI device+vendor id(s) the entry applies to
          mig-enabled: true
          mig-devices: {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}

* vgpu-device-manager (NVIDIA/vgpu-device-manager, ``nvidia.com/vgpu.config`` selects one)::

    version: v1
    vgpu-configs:
      NAME:
        - devices: all
          device-filter: "0x223610DE"
          vgpu-devices: {"A10-12Q": 2}

Parsing checks the shape only (a file lists profiles of many GPU models); applying a config to a node
checks it against the catalog: the profile exists on the GPU model, no more instances than the model allows
(the MIG table's "Number of Instances Available", the vGPU table's "Maximum vGPUs per GPU"), the MIG
instances have a valid placement together, and the config's entries match at least one GPU of the node.
Within one config the first entry that matches a GPU (its indices and its device-filter) applies to it;
GPUs no entry matches keep MIG disabled and get no vGPU devices, as mig-parted and vgpu-device-manager
leave them.

Without a file, gpufleet builds NVIDIA's default configs from the catalog: mig ``all-disabled``,
``all-enabled``, ``all-balanced``, ``all-<profile>`` (the profile's maximum count; ``.me`` stands for
``+me``) and vgpu ``default`` (two vGPUs of half the frame buffer) and ``<type>`` (the type's maximum).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..cluster import SpecError
from ..cluster.spec import Field, load_yaml_documents, parse_yaml_documents
from .catalog import GpuModel, MigProfile, load_catalog

_DEVICE_FILTER = re.compile(r"^0x[0-9A-Fa-f]{8}$")
_MIG_PROFILE = re.compile(r"^\d+g\.\d+gb([+-][a-z.]+)*$")
_VGPU_TYPE = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_MIG_BACKED_VGPU = re.compile(r"^[A-Za-z0-9]+-\d+-\d+C(ME)?$")


@dataclass
class ConfigEntry:
    devices: str | tuple[int, ...]  # "all" or GPU indices
    device_filter: tuple[str, ...]  # 0xDDDDVVVV, upper-case digits; empty = any device
    where: Field
    mig_enabled: bool = False
    mig_devices: dict[str, int] = field(default_factory=dict)
    vgpu_devices: dict[str, int] = field(default_factory=dict)

    def matches(self, index: int, model: GpuModel | None) -> bool:
        if self.devices != "all" and index not in self.devices:
            return False
        if self.device_filter:
            return model is not None and model.device_filter in self.device_filter
        return True


@dataclass
class DeviceConfigFile:
    """A parsed mig-configs or vgpu-configs file: config name -> entries."""

    kind: str  # "mig" or "vgpu"
    path: str
    configs: dict[str, list[ConfigEntry]]
    lines: dict[str, Field] = field(default_factory=dict)


def load_config_file(path: str | Path, kind: str | None = None) -> DeviceConfigFile:
    """Parse a mig-parted or vgpu-device-manager config file (kind guessed from its top-level key)."""
    docs = load_yaml_documents(path)
    return _parse(docs, str(path), kind)


def parse_config_text(text: str, filename: str = "<string>", kind: str | None = None) -> DeviceConfigFile:
    return _parse(parse_yaml_documents(text, filename), filename, kind)


def _parse(docs: list, path: str, kind: str | None) -> DeviceConfigFile:
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise SpecError("expected one YAML mapping with version: v1 and mig-configs or vgpu-configs", file=path)
    doc = Field(docs[0], "", path, getattr(docs[0], "line", 1))
    version = doc.get("version").value
    if version != "v1":
        raise doc.get("version").error(f"expected v1, got {version!r}")
    found = [k for k in ("mig-configs", "vgpu-configs") if k in doc.value]
    if kind is not None:
        want = f"{kind}-configs"
        if want not in found:
            raise doc.error(f"missing {want} (expected a {'mig-parted' if kind == 'mig' else 'vgpu-device-manager'}"
                            " config file)")
        found = [want]
    if len(found) != 1:
        raise doc.error("expected exactly one of mig-configs (mig-parted) or vgpu-configs (vgpu-device-manager)")
    for key in doc.value:
        if key not in ("version", found[0]):
            raise doc.get(key).error(f"unknown field (expected version and {found[0]})")
    kind = found[0].split("-")[0]
    body = doc.get(found[0])
    configs: dict[str, list[ConfigEntry]] = {}
    lines: dict[str, Field] = {}
    for name, f in body.keys_fields():
        entries = f.items()
        if not entries:
            raise f.error("expected a list of entries (devices, mig-enabled, mig-devices)" if kind == "mig"
                          else "expected a list of entries (devices, vgpu-devices)")
        configs[name] = [_entry(e, kind) for e in entries]
        lines[name] = f
    if not configs:
        raise body.error("no configs defined")
    return DeviceConfigFile(kind, path, configs, lines)


def _entry(f: Field, kind: str) -> ConfigEntry:
    allowed = {"devices", "device-filter"} | ({"mig-enabled", "mig-devices"} if kind == "mig" else {"vgpu-devices"})
    for key, sub in f.keys_fields():
        if key not in allowed:
            raise sub.error(f"unknown field (expected {', '.join(sorted(allowed))})")
    devices_f = f.require("devices")
    if devices_f.value == "all":
        devices: str | tuple[int, ...] = "all"
    elif isinstance(devices_f.value, list):
        devices = tuple(d.integer(minimum=0) for d in devices_f.items())
        if not devices:
            raise devices_f.error("expected all or a non-empty list of GPU indices")
    else:
        raise devices_f.error(f"expected all or a list of GPU indices, got {devices_f.value!r}")
    filt_f = f.get("device-filter")
    raw = filt_f.value
    filters: list[str] = []
    if raw is not None:
        items = filt_f.items() if isinstance(raw, list) else [filt_f]
        for item in items:
            text = item.string()
            if not _DEVICE_FILTER.match(text):
                raise item.error(f"expected a PCI device id such as 0x20B010DE (device then vendor), got {text!r}")
            filters.append("0x" + text[2:].upper())
        if not filters:
            raise filt_f.error("expected at least one PCI device id")
    entry = ConfigEntry(devices, tuple(filters), f)
    if kind == "mig":
        entry.mig_enabled = f.require("mig-enabled").boolean()
        mig = f.get("mig-devices")
        for name, sub in mig.keys_fields():
            if not _MIG_PROFILE.match(name):
                raise sub.error("expected a MIG profile name such as 1g.10gb or 1g.10gb+me")
            entry.mig_devices[name] = sub.integer(minimum=0)
        if entry.mig_devices and not entry.mig_enabled:
            raise mig.error("mig-devices given with mig-enabled: false (expected mig-enabled: true)")
    else:
        vg = f.require("vgpu-devices")
        for name, sub in vg.keys_fields():
            if not _VGPU_TYPE.match(name):
                raise sub.error("expected a vGPU type name such as A10-12Q")
            entry.vgpu_devices[name] = sub.integer(minimum=0)
    return entry


# ---------------------------------------------------------------------------- results of applying a config
@dataclass
class MigLayout:
    """One GPU's MIG state: enabled or not, and its GPU instances as (profile, start memory slice)."""

    enabled: bool
    instances: list[tuple[str, int]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p, _ in self.instances:
            out[p] = out.get(p, 0) + 1
        return out


@dataclass
class VgpuLayout:
    type_name: str | None  # None: no vGPU devices on this GPU
    count: int = 0


def place_mig(model: GpuModel, counts: dict[str, int]) -> list[tuple[str, int]] | None:
    """A valid placement of the instances ``counts`` on one GPU of ``model``; None when there is none.

    Instances are placed largest first, each at a start its profile allows where its memory slices are
    free (backtracking). The compute slices taken may not exceed the GPU's.
    """
    geo = model.mig
    assert geo is not None
    wanted: list[MigProfile] = []
    for name, n in counts.items():
        wanted += [geo.profiles[name]] * n
    if sum(p.compute for p in wanted) > geo.compute_slices:
        return None
    wanted.sort(key=lambda p: (-p.memory, -p.compute, p.name))
    out: list[tuple[str, int]] = []

    def go(i: int, used: int) -> bool:
        if i == len(wanted):
            return True
        p = wanted[i]
        for start in p.placements:
            mask = p.slot_mask(start)
            if start + p.memory <= geo.memory_slices and not used & mask:
                out.append((p.name, start))
                if go(i + 1, used | mask):
                    return True
                out.pop()
        return False

    return sorted(out, key=lambda x: x[1]) if go(0, 0) else None


def _profile_list(model: GpuModel) -> str:
    return ", ".join(model.mig.profiles) if model.mig else "none"


def _select(config: list[ConfigEntry], gpus: list[tuple[int, GpuModel | None]], name: str, node: str,
            source: str) -> dict[int, ConfigEntry]:
    """GPU index -> the first entry of ``config`` that matches it; SpecError when nothing matches."""
    chosen: dict[int, ConfigEntry] = {}
    indices = {i for i, _ in gpus}
    for entry in config:
        if entry.devices != "all":
            missing = [d for d in entry.devices if d not in indices]
            if missing:
                raise entry.where.get("devices").error(
                    f"config {name!r} on node {node}: devices {list(entry.devices)} match nothing for GPU "
                    f"indices {missing} (the node has GPUs 0..{len(gpus) - 1})")
        for i, model in gpus:
            if i not in chosen and entry.matches(i, model):
                chosen[i] = entry
    if not chosen and gpus:
        filters = sorted({f for e in config for f in e.device_filter})
        have = ", ".join(sorted({f"{m.name} {m.device_filter}" if m else "unknown model" for _, m in gpus}))
        raise config[0].where.error(
            f"config {name!r} ({source}) on node {node}: device-filter {filters} matches none of the node's "
            f"GPUs ({have}) (expected a filter naming one of them, or no filter)")
    return chosen


def resolve_mig(file: DeviceConfigFile | None, name: str, gpus: list[tuple[int, GpuModel | None]],
                node: str) -> dict[int, MigLayout]:
    """Apply mig config ``name`` (from ``file``, else the built-in defaults) to a node's GPUs."""
    if file is None:
        return {i: _builtin_mig(name, m, node) for i, m in gpus}
    if name not in file.configs:
        raise SpecError(f"node {node}: mig config {name!r} is not in {file.path} (expected one of "
                        f"{', '.join(file.configs)})", field="nvidia.com/mig.config")
    chosen = _select(file.configs[name], gpus, name, node, file.path)
    out: dict[int, MigLayout] = {}
    for i, model in gpus:
        entry = chosen.get(i)
        if entry is None or not entry.mig_enabled:
            out[i] = MigLayout(False)
            continue
        out[i] = _layout(model, {k: v for k, v in entry.mig_devices.items() if v}, entry.where, name, node, i)
    return out


def _layout(model: GpuModel | None, counts: dict[str, int], where: Field, name: str, node: str,
            index: int) -> MigLayout:
    label = f"config {name!r} on node {node} GPU {index}"
    if model is None:
        raise where.error(f"{label}: the GPU model is not in the catalog, so MIG cannot be checked "
                          f"(known models: {', '.join(load_catalog().names())})")
    if model.mig is None:
        raise where.error(f"{label}: GPU model {model.name} does not support MIG (MIG-capable models: "
                          f"{', '.join(m for m, g in load_catalog().models.items() if g.mig)})")
    for p, n in counts.items():
        prof = model.mig.profiles.get(p)
        if prof is None:
            raise where.get("mig-devices").error(
                f"{label}: MIG profile {p} does not exist on GPU model {model.name} (expected one of "
                f"{_profile_list(model)})")
        if n > prof.max_instances:
            raise where.get("mig-devices").error(
                f"{label}: more instances than fit: {n} x {p} on {model.name} (at most {prof.max_instances})")
    placed = place_mig(model, counts)
    if placed is None:
        want = " + ".join(f"{n} x {p}" for p, n in counts.items())
        compute = sum(model.mig.profiles[p].compute * n for p, n in counts.items())
        memory = sum(model.mig.profiles[p].memory * n for p, n in counts.items())
        raise where.get("mig-devices").error(
            f"{label}: invalid MIG layout {want} on {model.name}: no valid placement (needs {compute}/"
            f"{model.mig.compute_slices} compute and {memory}/{model.mig.memory_slices} memory slices; the "
            "instances' allowed start slices overlap)")
    return MigLayout(True, placed)


def _builtin_mig(name: str, model: GpuModel | None, node: str) -> MigLayout:
    where = Field(None, "nvidia.com/mig.config", "", None)
    if name == "all-disabled":
        return MigLayout(False)
    if model is None or model.mig is None:
        what = model.name if model else "an unknown model"
        raise SpecError(f"node {node}: mig config {name!r} asks for MIG on {what}, which does not support MIG",
                        field="nvidia.com/mig.config")
    if name == "all-enabled":
        return MigLayout(True)
    if name == "all-balanced":
        return _layout(model, dict(model.mig.balanced), where, name, node, 0)
    profile = name[4:].replace(".me", "+me") if name.startswith("all-") else None
    if profile not in model.mig.profiles:
        known = ["all-disabled", "all-enabled", "all-balanced"] + \
            [f"all-{p.replace('+me', '.me')}" for p in model.mig.profiles]
        raise SpecError(f"node {node}: mig config {name!r} does not exist for {model.name} (expected one of "
                        f"{', '.join(known)}, or name a migManager config file)", field="nvidia.com/mig.config")
    prof = model.mig.profiles[profile]
    return _layout(model, {profile: prof.max_instances}, where, name, node, 0)


def resolve_vgpu(file: DeviceConfigFile | None, name: str, gpus: list[tuple[int, GpuModel | None]],
                 node: str) -> dict[int, VgpuLayout]:
    """Apply vgpu config ``name`` (from ``file``, else the built-in defaults) to a node's GPUs."""
    if file is None:
        return {i: _builtin_vgpu(name, m, node) for i, m in gpus}
    if name not in file.configs:
        raise SpecError(f"node {node}: vgpu config {name!r} is not in {file.path} (expected one of "
                        f"{', '.join(list(file.configs)[:8])}, ...)", field="nvidia.com/vgpu.config")
    chosen = _select(file.configs[name], gpus, name, node, file.path)
    out: dict[int, VgpuLayout] = {}
    for i, model in gpus:
        entry = chosen.get(i)
        if entry is None:
            out[i] = VgpuLayout(None)
            continue
        out[i] = _vgpu_layout(model, {k: v for k, v in entry.vgpu_devices.items() if v},
                              entry.where.get("vgpu-devices"), name, node, i)
    return out


def _vgpu_layout(model: GpuModel | None, counts: dict[str, int], where: Field, name: str, node: str,
                 index: int) -> VgpuLayout:
    label = f"config {name!r} on node {node} GPU {index}"
    if not counts:
        return VgpuLayout(None)
    if model is None:
        raise where.error(f"{label}: the GPU model is not in the catalog, so vGPU types cannot be checked "
                          f"(known models: {', '.join(load_catalog().names())})")
    for t, n in counts.items():
        if _MIG_BACKED_VGPU.match(t):
            raise where.error(f"{label}: {t} is a MIG-backed vGPU type; the GPU Operator does not support "
                              "MIG-backed vGPU (expected a time-sliced type such as "
                              f"{next(iter(model.vgpu), 'none')})")
        prof = model.vgpu.get(t)
        if prof is None:
            raise where.error(f"{label}: vGPU type {t} does not exist on GPU model {model.name} (expected one of "
                              f"{', '.join(model.vgpu) or 'none: the model has no vGPU support'})")
        if n > prof.max_per_gpu:
            raise where.error(f"{label}: more instances than fit: {n} x {t} on {model.name} (at most "
                              f"{prof.max_per_gpu} per GPU)")
    if len(counts) > 1:
        raise where.error(f"{label}: one GPU takes one time-sliced vGPU type at a time, got "
                          f"{', '.join(counts)} (expected a single type per GPU)")
    (t, n), = counts.items()
    return VgpuLayout(t, n)


def _builtin_vgpu(name: str, model: GpuModel | None, node: str) -> VgpuLayout:
    where = Field(None, "nvidia.com/vgpu.config", "", None)
    if model is None or not model.vgpu:
        what = model.name if model else "an unknown GPU model"
        raise SpecError(f"node {node}: vgpu config {name!r}: {what} has no vGPU types in the catalog "
                        f"(known models: {', '.join(load_catalog().names())})", field="nvidia.com/vgpu.config")
    if name == "default":
        assert model.default_vgpu is not None
        t, n = model.default_vgpu
        return VgpuLayout(t, n)
    if name in model.vgpu:
        return _vgpu_layout(model, {name: model.vgpu[name].max_per_gpu}, where, name, node, 0)
    if _MIG_BACKED_VGPU.match(name):
        return _vgpu_layout(model, {name: 1}, where, name, node, 0)
    raise SpecError(f"node {node}: vgpu config {name!r} does not exist for {model.name} (expected default or one "
                    f"of {', '.join(model.vgpu)}, or name a vgpuDeviceManager config file)",
                    field="nvidia.com/vgpu.config")
