"""The GPU catalog (package data ``catalog.yaml``): memory, SMs, PCI identity, MIG and vGPU profiles.

Every number in ``catalog.yaml`` names its source (pci.ids, NVIDIA's MIG user guide, mig-parted and
vgpu-device-manager configs, go-nvml, spec databases; see the sources block at its top); numbers no stored
source confirmed are listed per model under ``unverified`` (field paths, e.g. ``sm_count``,
``mig.placements``). This module only loads and looks up.

Resource names follow the NVIDIA components that advertise them:

* passthrough (sandbox device plugin, NVIDIA/kubevirt-gpu-device-plugin ``getDeviceName``): the PCI
  device's pci.ids name, upper-cased, ``/`` and ``.`` to ``_``, whitespace runs to ``_``, everything but
  ``[A-Za-z0-9_.]`` dropped: ``GA102GL [A10]`` -> ``nvidia.com/GA102GL_A10``;
* vGPU (same plugin): the mdev type name with whitespace to ``_``: ``NVIDIA A10-12Q`` ->
  ``nvidia.com/NVIDIA_A10-12Q``;
* MIG under the mixed strategy (k8s-device-plugin): ``nvidia.com/mig-<profile>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from ..cluster import SpecError

NVIDIA_VENDOR_ID = "10DE"
RESOURCE_PREFIX = "nvidia.com/"


@dataclass(frozen=True)
class MigProfile:
    name: str  # "1g.10gb" or "1g.10gb+me"
    compute: int  # compute slices (GPCs)
    memory: int  # memory slices
    max_instances: int
    placements: tuple[int, ...]  # valid start memory slices

    @property
    def resource(self) -> str:
        return f"{RESOURCE_PREFIX}mig-{self.name}"

    def slot_mask(self, start: int) -> int:
        """Bit mask of the memory slices an instance starting at ``start`` covers."""
        return ((1 << self.memory) - 1) << start


@dataclass(frozen=True)
class MigGeometry:
    compute_slices: int
    memory_slices: int
    profiles: dict[str, MigProfile]
    balanced: dict[str, int]


@dataclass(frozen=True)
class VgpuProfile:
    name: str  # full vGPU type name, "A10-12Q"
    framebuffer_gb: int
    series: str  # Q (virtual workstation) or C (compute)
    max_per_gpu: int

    @property
    def framebuffer_mib(self) -> int:
        return self.framebuffer_gb * 1024

    @property
    def mdev_name(self) -> str:
        return f"NVIDIA {self.name}"

    @property
    def resource(self) -> str:
        return RESOURCE_PREFIX + re.sub(r"\s+", "_", self.mdev_name)


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_mib: int
    sm_count: int
    product: str
    aliases: tuple[str, ...]
    pci_device_id: str  # "0x2236"
    pci_name: str  # "GA102GL [A10]"
    vgpu_prefix: str
    mig: MigGeometry | None
    vgpu: dict[str, VgpuProfile] = field(default_factory=dict)  # full type name -> profile
    default_vgpu: tuple[str, int] | None = None
    unverified: tuple[str, ...] = ()  # catalog fields no stored public source confirmed (catalog.yaml)

    @property
    def device_filter(self) -> str:
        """The id as mig-parted and vgpu-device-manager write it: 0x<device><vendor>, e.g. 0x223610DE."""
        return f"0x{self.pci_device_id[2:].upper()}{NVIDIA_VENDOR_ID}"

    @property
    def pci_vendor_selector(self) -> str:
        """KubeVirt's pciVendorSelector, ``VENDOR:DEVICE``: 10DE:2236."""
        return f"{NVIDIA_VENDOR_ID}:{self.pci_device_id[2:].upper()}"

    @property
    def passthrough_resource(self) -> str:
        return RESOURCE_PREFIX + sandbox_device_name(self.pci_name)

    @property
    def mig_capable(self) -> bool:
        return self.mig is not None


def sandbox_device_name(pci_name: str) -> str:
    """The sandbox device plugin's resource name for a PCI device name (see the module docstring)."""
    name = pci_name.strip().upper().replace("/", "_").replace(".", "_")
    name = re.sub(r"\s+", "_", name)
    return re.sub(r"[^a-zA-Z0-9_.]+", "", name)


class Catalog:
    def __init__(self, models: dict[str, GpuModel]):
        self.models = models
        self._by_key: dict[str, GpuModel] = {}
        for m in models.values():
            for key in (m.name, m.product, *m.aliases):
                self._by_key[_norm(key)] = m
        self._by_filter = {m.device_filter: m for m in models.values()}

    def find(self, name: str) -> GpuModel | None:
        """A model by catalog name, GPU feature discovery product label, or alias (case-insensitive)."""
        return self._by_key.get(_norm(name))

    def by_device_filter(self, device_filter: str) -> GpuModel | None:
        return self._by_filter.get(device_filter.upper().replace("0X", "0x"))

    def names(self) -> list[str]:
        return list(self.models)


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", "-", str(name).strip()).upper()


def _model(name: str, d: dict) -> GpuModel:
    mig = None
    if d.get("mig"):
        m = d["mig"]
        profiles = {p: MigProfile(p, v["compute"], v["memory"], v["max"], tuple(v["placements"]))
                    for p, v in m["profiles"].items()}
        mig = MigGeometry(m["compute_slices"], m["memory_slices"], profiles, dict(m.get("balanced", {})))
    pci = d["pci"]
    vgpu: dict[str, VgpuProfile] = {}
    for series, table in d.get("vgpu", {}).get("series", {}).items():
        for fb, count in table.items():
            type_name = f"{pci['vgpu_prefix']}-{fb}{series}"
            vgpu[type_name] = VgpuProfile(type_name, int(fb), series, int(count))
    default = None
    if d.get("default_vgpu"):
        default = (f"{pci['vgpu_prefix']}-{d['default_vgpu']['type']}", int(d["default_vgpu"]["count"]))
    unverified = tuple(d.get("unverified") or ())
    for path in unverified:
        _check_field_path(d, path)
    return GpuModel(name, int(d["memory_mib"]), int(d["sm_count"]), d["product"], tuple(d.get("aliases", [])),
                    pci["device_id"], pci["name"], pci["vgpu_prefix"], mig, vgpu, default, unverified)


def _check_field_path(d: dict, path: str) -> None:
    """``unverified`` entries name catalog fields: ``sm_count``, ``mig.placements`` (every profile's),
    ``mig.profiles.<profile>.placements``."""
    parts = path.split(".")
    if parts[:2] == ["mig", "profiles"] and len(parts) > 3:  # profile names contain dots
        parts = ["mig", "profiles", ".".join(parts[2:-1]), parts[-1]]
    node = d
    for i, part in enumerate(parts):
        if part == "placements" and i == 1 and parts[0] == "mig":
            return
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"unverified entry {path!r} names no catalog field")
        node = node[part]


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The shipped catalog (package data), loaded once."""
    text = resources.files(__package__).joinpath("catalog.yaml").read_text()
    data = yaml.safe_load(text)
    try:
        return Catalog({name: _model(name, d) for name, d in data["models"].items()})
    except (KeyError, TypeError, ValueError) as exc:  # a broken package, not a user error
        raise SpecError(f"broken GPU catalog: {exc!r}", file="gpufleet/devices/catalog.yaml") from None
