"""GPU devices: the catalog, NVIDIA's partitioning configs, node workload configs, KubeVirt manifests.

Builds on ``cluster`` only (``cluster`` never imports this room). See docs/devices.md.
"""

from .catalog import Catalog, GpuModel, MigProfile, VgpuProfile, load_catalog, sandbox_device_name
from .configs import DeviceConfigFile, MigLayout, VgpuLayout, load_config_file, place_mig, resolve_mig, resolve_vgpu
from .workload import (NodeDevices, OperatorSettings, configure_cluster, configure_node, parse_operator,
                       scheduler_nodes)

__all__ = ["Catalog", "GpuModel", "MigProfile", "VgpuProfile", "load_catalog", "sandbox_device_name",
           "DeviceConfigFile", "MigLayout", "VgpuLayout", "load_config_file", "place_mig", "resolve_mig",
           "resolve_vgpu", "NodeDevices", "OperatorSettings", "configure_cluster", "configure_node",
           "parse_operator", "scheduler_nodes"]
