"""gpufleet.devices: the seed's examples, NVIDIA's MIG tables, the shipped NVIDIA configs, clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gpufleet.cli import main
from gpufleet.shared_data import shared_path
from gpufleet.cluster import GpuDevice, Node, SpecError, load_cluster
from gpufleet.devices import configure_cluster, load_catalog, load_config_file, place_mig, resolve_mig, resolve_vgpu
from gpufleet.devices.configs import parse_config_text
from gpufleet.devices.kubevirt import kubevirt_patch, vmi_manifest
from gpufleet.devices.workload import OperatorSettings, configure_node

SHARED = shared_path("data", "nvidia")
MIG_DEFAULT = SHARED / "mig-parted_config-default.yaml"
MIG_EXAMPLES = SHARED / "mig-parted_examples_config.yaml"
VGPU_EXAMPLE = SHARED / "vgpu-device-manager_config-example.yaml"


def shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"missing {path} (set GPUFLEET_SHARED or check out ../shared)")
    return path


def gpus(model: str, n: int) -> list[tuple[int, object]]:
    return [(i, load_catalog().find(model)) for i in range(n)]


def vm_node(name: str, model: str, n: int, **labels) -> Node:
    return Node(name, 32000, 131072, [GpuDevice(i, model) for i in range(n)],
                labels={k.replace("__", "/").replace("_", "."): v for k, v in labels.items()})


VGPU = OperatorSettings(sandbox_enabled=True, default_workload="vm-vgpu")


# ---------------------------------------------------------------------------- the seed (GPU Operator + KubeVirt)
def test_seed_default_two_a10_node_advertises_four_a10_12q():
    nd = configure_node(vm_node("cnt-server-2", "A10", 2), VGPU)
    assert nd.advertised == {"nvidia.com/NVIDIA_A10-12Q": 4}
    assert [g.vgpu.count for g in nd.gpus] == [2, 2]
    assert nd.components == ["nvidia-vgpu-manager", "nvidia-vgpu-device-manager", "nvidia-sandbox-device-plugin"]


@pytest.mark.parametrize("config,per_gpu", [("A10-4Q", 6), ("A10-8Q", 3), ("A10-12Q", 2), ("A10-24Q", 1)])
def test_seed_vgpu_config_label_sets_count_per_gpu(config, per_gpu):
    node = vm_node("cnt-server-2", "A10", 2, nvidia__com__vgpu_config=config)
    node.labels = {"nvidia.com/vgpu.config": config}
    nd = configure_node(node, VGPU)
    assert nd.advertised == {f"nvidia.com/NVIDIA_{config}": 2 * per_gpu}


def test_seed_defaults_for_v100_and_t4_are_two_half_memory_q_devices():
    for model, vgpu in (("V100-16GB", "V100-8Q"), ("T4", "T4-8Q"), ("A10", "A10-12Q")):
        assert load_catalog().find(model).default_vgpu == (vgpu, 2)


def test_shipped_vgpu_file_gives_the_seed_counts():
    f = load_config_file(shared(VGPU_EXAMPLE))
    assert {i: (l.type_name, l.count) for i, l in resolve_vgpu(f, "default", gpus("A10", 2), "n").items()} == \
        {0: ("A10-12Q", 2), 1: ("A10-12Q", 2)}
    assert sum(l.count for l in resolve_vgpu(f, "A10-4Q", gpus("A10", 2), "n").values()) == 12


def test_passthrough_resource_named_as_the_sandbox_device_plugin_names_it():
    nd = configure_node(vm_node("b", "A10", 2), OperatorSettings(sandbox_enabled=True, default_workload="vm-passthrough"))
    assert nd.advertised == {"nvidia.com/GA102GL_A10": 2}
    assert nd.components == ["nvidia-vfio-manager", "nvidia-sandbox-device-plugin"]


def test_container_node_components_and_resources():
    nd = configure_node(vm_node("a", "T4", 4), OperatorSettings(sandbox_enabled=True))
    assert nd.workload == "container" and nd.advertised == {"nvidia.com/gpu": 4}
    assert "nvidia-device-plugin" in nd.components and "nvidia-container-toolkit" in nd.components


# ---------------------------------------------------------------------------- NVIDIA's MIG tables
A100_40 = {"1g.5gb": 7, "1g.5gb+me": 1, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1}
G80 = {"1g.10gb": 7, "1g.10gb+me": 1, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1}


@pytest.mark.parametrize("model,table", [("A100-40GB", A100_40), ("A100-80GB", G80), ("H100-80GB", G80)])
def test_every_mig_profile_count_of_the_a100_and_h100_tables(model, table):
    m = load_catalog().find(model)
    assert {p: prof.max_instances for p, prof in m.mig.profiles.items()} == table
    for p, n in table.items():
        assert place_mig(m, {p: n}) is not None  # the maximum count has a valid placement
        assert len(place_mig(m, {p: n})) == n


def test_mig_geometry_a100_and_a30():
    a100, a30 = load_catalog().find("A100-40GB"), load_catalog().find("A30")
    assert (a100.mig.compute_slices, a100.mig.memory_slices) == (7, 8)
    assert a100.mig.profiles["3g.20gb"].placements == (0, 4)
    assert {p: v.max_instances for p, v in a30.mig.profiles.items()} == \
        {"1g.6gb": 4, "1g.6gb+me": 1, "2g.12gb": 2, "2g.12gb+me": 1, "4g.24gb": 1}


def test_catalog_facts():
    cat = load_catalog()
    assert set(cat.names()) == {"A10", "A30", "A100-40GB", "A100-80GB", "H100-80GB", "H200", "L4", "T4",
                                "V100-16GB", "V100-32GB"}
    a10 = cat.find("NVIDIA-A10")
    assert (a10.memory_mib, a10.sm_count, a10.pci_vendor_selector) == (24576, 72, "10DE:2236")
    assert {p: v.max_per_gpu for p, v in a10.vgpu.items() if p.endswith("Q")} == \
        {"A10-1Q": 24, "A10-2Q": 12, "A10-3Q": 8, "A10-4Q": 6, "A10-6Q": 4, "A10-8Q": 3, "A10-12Q": 2, "A10-24Q": 1}


# ---------------------------------------------------------------------------- the shipped NVIDIA configs
@pytest.mark.parametrize("path", [MIG_DEFAULT, MIG_EXAMPLES, VGPU_EXAMPLE], ids=lambda p: p.name)
def test_every_shipped_nvidia_config_parses(path):
    f = load_config_file(shared(path))
    assert f.configs and all(entries for entries in f.configs.values())


def test_shipped_all_balanced_places_on_each_mig_model():
    f = load_config_file(shared(MIG_DEFAULT))
    want = {"A100-40GB": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}, "A100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
            "H100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}, "A30": {"1g.6gb": 2, "2g.12gb": 1},
            "H200": {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1}}
    for model, counts in want.items():
        layouts = resolve_mig(f, "all-balanced", gpus(model, 2), "n")
        assert all(l.enabled and l.counts() == counts for l in layouts.values()), model


def test_shipped_vgpu_counts_agree_with_the_catalog():
    """NVIDIA's example config lists every type at its maximum per GPU; the catalog cites the vGPU docs."""
    f = load_config_file(shared(VGPU_EXAMPLE))
    checked = 0
    for model in load_catalog().models.values():
        for t, prof in model.vgpu.items():
            if t in f.configs:
                (entry,) = f.configs[t]
                assert entry.vgpu_devices == {t: prof.max_per_gpu}
                checked += 1
        layouts = resolve_vgpu(f, "default", [(0, model)], "n")
        assert (layouts[0].type_name, layouts[0].count) == model.default_vgpu, model.name
    assert checked > 60


# ---------------------------------------------------------------------------- clear errors
def test_profile_not_on_the_gpu_model():
    f = load_config_file(shared(MIG_DEFAULT))
    with pytest.raises(SpecError, match=r"mig-parted_config-default.yaml:\d+: .*MIG profile 1g.5gb does not exist on "
                                        r"GPU model H100-80GB"):
        resolve_mig(f, "all-1g.5gb", gpus("H100-80GB", 1), "h1")
    with pytest.raises(SpecError, match="vGPU type T4-8Q does not exist on GPU model A10"):
        resolve_vgpu(load_config_file(shared(VGPU_EXAMPLE)), "T4-8Q", gpus("A10", 1), "a1")


def test_more_instances_than_fit():
    f = parse_config_text("version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n"
                          "      mig-devices: {1g.10gb: 8}\n", "bad.yaml")
    with pytest.raises(SpecError, match=r"bad.yaml:6: .*more instances than fit: 8 x 1g.10gb on H100-80GB \(at most 7\)"):
        resolve_mig(f, "x", gpus("H100-80GB", 1), "h1")
    v = parse_config_text("version: v1\nvgpu-configs:\n  x:\n    - devices: all\n      vgpu-devices: {A10-12Q: 3}\n")
    with pytest.raises(SpecError, match=r"3 x A10-12Q on A10 \(at most 2 per GPU\)"):
        resolve_vgpu(v, "x", gpus("A10", 1), "a1")


def test_invalid_mig_layout():
    # 2 x 3g.20gb take memory slices 0-3 and 4-7; no slice is left for the 1g.5gb (7 compute slices would fit)
    f = parse_config_text("version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n"
                          "      mig-devices: {3g.20gb: 2, 1g.5gb: 1}\n", "bad.yaml")
    with pytest.raises(SpecError, match="invalid MIG layout 2 x 3g.20gb \\+ 1 x 1g.5gb on A100-40GB: no valid placement"):
        resolve_mig(f, "x", gpus("A100-40GB", 1), "a1")


def test_device_filter_matching_nothing():
    f = load_config_file(shared(MIG_DEFAULT))
    with pytest.raises(SpecError, match=r"device-filter \['0x233510DE', '0x31C210DE'\] matches none of the node's "
                                        r"GPUs \(A100-40GB 0x20F110DE\)"):
        resolve_mig(f, "all-1g.35gb", gpus("A100-40GB", 2), "a1")
    with pytest.raises(SpecError, match=r"devices \[0, 1, 2, 3\] match nothing for GPU indices \[2, 3\]"):
        resolve_mig(load_config_file(shared(MIG_EXAMPLES)), "custom-config", gpus("A100-40GB", 2), "a1")


def test_bad_config_shape_names_line_and_field():
    with pytest.raises(SpecError, match=r"x.yaml:4: mig-configs.a\[0\].device-filter: expected a PCI device id"):
        parse_config_text("version: v1\nmig-configs:\n  a:\n    - device-filter: 2236\n      devices: all\n"
                          "      mig-enabled: false\n", "x.yaml")


def test_mig_backed_vgpu_is_refused():
    with pytest.raises(SpecError, match="MIG-backed vGPU"):
        resolve_vgpu(load_config_file(shared(VGPU_EXAMPLE)), "A100-1-5C", gpus("A100-40GB", 1), "a1")


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_cli_show_and_errors_exit_2(tmp_path, capsys):
    ok = write(tmp_path, """\
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        spec:
          gpuOperator: {sandboxWorkloads: {enabled: true}}
          nodePools:
            - {name: cnt-server, count: 1, cpu: 32, memory: 64Gi, gpus: 2, gpuModel: A10,
               labels: {nvidia.com/gpu.workload.config: vm-vgpu, nvidia.com/vgpu.config: A10-4Q}}
        """)
    assert main(["devices", "show", str(ok), "--json"]) == 0
    assert '"nvidia.com/NVIDIA_A10-4Q": "12"' in capsys.readouterr().out
    bad = write(tmp_path, """\
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        spec:
          gpuOperator: {sandboxWorkloads: {enabled: true}}
          nodePools:
            - {name: n, count: 1, cpu: 8, memory: 8Gi, gpus: 1, gpuModel: A10,
               labels: {nvidia.com/gpu.workload.config: vm-gpu}}
        """, "bad.yaml")
    assert main(["devices", "show", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.yaml" in err and "expected one of container, vm-passthrough, vm-vgpu" in err
    disabled = write(tmp_path, """\
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        spec:
          nodePools:
            - {name: n, count: 1, cpu: 8, memory: 8Gi, gpus: 1, gpuModel: A10,
               labels: {nvidia.com/gpu.workload.config: vm-vgpu}}
        """, "disabled.yaml")
    assert main(["devices", "show", str(disabled)]) == 2
    assert "sandboxWorkloads.enabled is false" in capsys.readouterr().err


def test_kubevirt_patch_and_vmi_as_in_the_seed(tmp_path):
    spec = write(tmp_path, """\
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        spec:
          gpuOperator: {sandboxWorkloads: {enabled: true}}
          nodePools:
            - {name: b, count: 1, cpu: 8, memory: 8Gi, gpus: 1, gpuModel: A10, labels: {nvidia.com/gpu.workload.config: vm-passthrough}}
            - {name: c, count: 1, cpu: 8, memory: 8Gi, gpus: 1, gpuModel: A10,
               labels: {nvidia.com/gpu.workload.config: vm-vgpu, nvidia.com/vgpu.config: A10-24Q}}
        """)
    nodes = configure_cluster(load_cluster(spec))
    permitted = kubevirt_patch(nodes)["spec"]["configuration"]["permittedHostDevices"]
    assert permitted == {
        "pciHostDevices": [{"externalResourceProvider": True, "pciVendorSelector": "10DE:2236",
                            "resourceName": "nvidia.com/GA102GL_A10"}],
        "mediatedDevices": [{"externalResourceProvider": True, "mdevNameSelector": "NVIDIA A10-24Q",
                             "resourceName": "nvidia.com/NVIDIA_A10-24Q"}]}
    vmi = vmi_manifest("vm1", "nvidia.com/GA102GL_A10", nodes)
    assert vmi["kind"] == "VirtualMachineInstance"
    assert vmi["spec"]["domain"]["devices"]["gpus"] == [{"deviceName": "nvidia.com/GA102GL_A10", "name": "gpu1"}]
    assert main(["devices", "kubevirt", str(spec), "--vmi", "vm1", "--gpu", "nvidia.com/NVIDIA_T4-8Q"]) == 2
