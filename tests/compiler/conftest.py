"""Shared helpers for the compiler tests: where the upstream Toy tests live."""

from pathlib import Path

import pytest

from gpufleet.shared_data import shared_dir as gpufleet_shared_dir

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return gpufleet_shared_dir().resolve()


@pytest.fixture
def toy_tests() -> Path:
    path = shared_dir() / "toy-tests"
    if not path.is_dir():
        pytest.skip(f"upstream Toy tests not found: {path} (set GPUFLEET_SHARED)")
    return path
