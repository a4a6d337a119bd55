"""Shared helpers: hand-made linear profiles and where the GPULet reference data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.serving.profiles import LatencyProfile, ProfileSet
from gpufleet.shared_data import shared_path

GPULET = shared_path("data", "gpulet")


@pytest.fixture
def gpulet_data() -> Path:
    if not GPULET.is_dir():
        pytest.skip(f"GPULet reference data not found at {GPULET} (set GPUFLEET_SHARED)")
    return GPULET


def linear_profile(name: str, per_partition: dict[int, tuple[float, float]]) -> LatencyProfile:
    """L(b, p) = a + c * b for b in 1..32 (exact at 1 and 32, linear between)."""
    return LatencyProfile.from_points(name, [(b, p, a + c * b) for p, (a, c) in per_partition.items() for b in (1, 32)])


def profiles(**models: dict[int, tuple[float, float]]) -> ProfileSet:
    return ProfileSet({name: linear_profile(name, parts) for name, parts in models.items()})
