"""The catalog agrees with its sources (catalog.yaml header): pci.ids, NVIDIA's mig-parted and
vgpu-device-manager configs, the MIG user guide, and ``nvidia-smi mig -lgipp`` output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpufleet.devices import load_catalog, load_config_file
from gpufleet.shared_data import shared_path

SHARED = shared_path("data", "nvidia")


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"missing {path} (set GPUFLEET_SHARED or check out ../shared)")
    return path


# pciutils/pciids pci.ids, vendor 10de (commit 006181e2), the lines as written there.
PCI_IDS = {
    "A10": "2236  GA102GL [A10]", "A30": "20b7  GA100GL [A30 PCIe]",
    "A100-40GB": "20f1  GA100 [A100 PCIe 40GB]", "A100-80GB": "20b5  GA100 [A100 PCIe 80GB]",
    "H100-80GB": "2331  GH100 [H100 PCIe]", "H200": "233b  GH100 [H200 NVL]", "L4": "27b8  AD104GL [L4]",
    "T4": "1eb8  TU104GL [Tesla T4]", "V100-16GB": "1db4  GV100GL [Tesla V100 PCIe 16GB]",
    "V100-32GB": "1db6  GV100GL [Tesla V100 PCIe 32GB]",
}


@pytest.mark.parametrize("model", sorted(PCI_IDS))
def test_pci_device_id_and_name_as_in_pci_ids(model):
    m = load_catalog().find(model)
    assert f"{m.pci_device_id[2:].lower()}  {m.pci_name}" == PCI_IDS[model]


# `nvidia-smi mig -lgipp` on an H100 80GB (IDs 19, 20, 15, 14, 9, 5, 0), start slices and size.
LGIPP_H100 = {"1g.10gb": ((0, 1, 2, 3, 4, 5, 6), 1), "1g.10gb+me": ((0, 1, 2, 3, 4, 5, 6), 1),
              "1g.20gb": ((0, 2, 4, 6), 2), "2g.20gb": ((0, 2, 4), 2), "3g.40gb": ((0, 4), 4),
              "4g.40gb": ((0,), 4), "7g.80gb": ((0,), 8)}


def test_h100_placements_as_nvidia_smi_lists_them():
    profiles = load_catalog().find("H100-80GB").mig.profiles
    assert {p: (v.placements, v.memory) for p, v in profiles.items()} == LGIPP_H100


def test_a100_40gb_placements_as_nvidia_smi_lists_them():
    profiles = load_catalog().find("A100-40GB").mig.profiles
    seen = {"1g.5gb": ((0, 1, 2, 3, 4, 5, 6), 1), "2g.10gb": ((0, 2, 4), 2), "3g.20gb": ((0, 4), 4),
            "4g.20gb": ((0,), 4), "7g.40gb": ((0,), 8)}  # IDs 19, 14, 9, 5, 0 of an A100-SXM4-40GB
    assert {p: (profiles[p].placements, profiles[p].memory) for p in seen} == seen


def test_mig_maxima_agree_with_nvidias_mig_backed_vgpu_types():
    """vgpu-device-manager lists each MIG-backed type `<board>-<c>-<mem>C[ME]` at the profile's maximum."""
    f = load_config_file(shared("vgpu-device-manager_config-example.yaml"))
    checked = 0
    for m in load_catalog().models.values():
        if not m.mig:
            continue
        for name, prof in m.mig.profiles.items():
            c, mem = re.fullmatch(r"(\d)g\.(\d+)gb(\+me)?", name).group(1, 2)
            vgpu_type = f"{m.vgpu_prefix}-{c}-{mem}C{'ME' if name.endswith('+me') else ''}"
            (entry,) = f.configs[vgpu_type]
            assert entry.vgpu_devices == {vgpu_type: prof.max_instances}, (m.name, name)
            checked += 1
    assert checked == 5 + 7 * 4  # A30 and the A100/H100/H200 tables, every profile


def test_mig_maxima_agree_with_mig_parted_all_profile_configs():
    """mig-parted's `all-<profile>` configs create the maximum count on every GPU they match."""
    f = load_config_file(shared("mig-parted_config-default.yaml"))
    checked = 0
    for m in load_catalog().models.values():
        if not m.mig:
            continue
        for name, prof in m.mig.profiles.items():
            config = f.configs.get("all-" + name.replace("+me", ".me"))
            for entry in config or []:
                if entry.device_filter and m.device_filter not in entry.device_filter:
                    continue
                assert entry.mig_devices == {name: prof.max_instances}, (m.name, name)
                checked += 1
                break
    assert checked >= 30


def test_mig_user_guide_tables():
    """MIG user guide, Supported MIG Profiles: the A30 and A100-SXM4-40GB tables ("Number of Instances")."""
    cat = load_catalog()
    a30 = {p: v.max_instances for p, v in cat.find("A30").mig.profiles.items()}
    assert a30 == {"1g.6gb": 4, "1g.6gb+me": 1, "2g.12gb": 2, "2g.12gb+me": 1, "4g.24gb": 1}
    a100 = {p: v.max_instances for p, v in cat.find("A100-40GB").mig.profiles.items()}
    assert {p: a100[p] for p in ("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb")} == \
        {"1g.5gb": 7, "1g.5gb+me": 1, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2}


def test_unverified_numbers_are_marked():
    cat = load_catalog()
    assert cat.find("L4").unverified == ("sm_count",)
    assert "sm_count" in cat.find("H200").unverified
    assert cat.find("H100-80GB").unverified == () and cat.find("A10").unverified == ()
