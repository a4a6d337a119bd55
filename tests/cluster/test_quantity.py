"""Kubernetes quantities converted to gpufleet units: CPU millicores and memory MiB (rounded up)."""

import math

import pytest

from gpufleet.cluster import quantity


@pytest.mark.parametrize("text, milli", [
    ("500m", 500), ("4", 4000), (4, 4000), ("1.5", 1500), ("0.1", 100), ("250m", 250), (0, 0),
    ("1e3m", 1000), ("2k", 2_000_000),
    ("1.0005", 1001),  # 1000.5 millicores: rounded up, as the API server does
])
def test_cpu_to_milli(text, milli):
    assert quantity.cpu_to_milli(text) == milli


@pytest.mark.parametrize("text, mib", [
    ("16Gi", 16 * 1024), ("128Mi", 128), ("1Ti", 1024 * 1024), ("1Ki", 1),  # 1 KiB rounds up to 1 MiB
    ("1.5G", 1431),  # 1.5e9 bytes / 1048576 = 1430.51 MiB, rounded up
    ("1G", 954),  # 1e9 / 1048576 = 953.67
    ("1048576", 1), ("0", 0), (2 ** 21, 2), ("1.5Mi", 2),
])
def test_memory_to_mib(text, mib):
    assert quantity.memory_to_mib(text) == mib


def test_count_accepts_whole_numbers_only():
    assert quantity.count("8") == 8
    assert quantity.count(2) == 2
    assert quantity.count("1k") == 1000
    with pytest.raises(ValueError, match="whole number"):
        quantity.count("1.5")
    with pytest.raises(ValueError, match="whole number"):
        quantity.count("500m")


@pytest.mark.parametrize("bad", ["abc", "4 cores", "16GB", "1.2.3", "", "Gi", True, None, [4], math.nan,
                                 math.inf, "--4"])
def test_bad_quantities_raise_value_error_naming_what_was_expected(bad):
    with pytest.raises(ValueError, match="expected"):
        quantity.parse_quantity(bad)
