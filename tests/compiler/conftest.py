"""Shared helpers for the compiler tests: where the upstream Toy tests live."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("GPUFLEET_SHARED") or REPO_ROOT.parent / "shared").resolve()


@pytest.fixture
def toy_tests() -> Path:
    path = shared_dir() / "toy-tests"
    if not path.is_dir():
        pytest.skip(f"upstream Toy tests not found: {path} (set GPUFLEET_SHARED)")
    return path
