"""Shared helpers for the sim tests: where the openb trace lives, and tiny clusters and pods."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpufleet.cluster import Node, Pod
from gpufleet.scheduler import builtin_profile
from gpufleet.shared_data import shared_path

OPENB = shared_path("data", "openb")


@pytest.fixture
def openb() -> Path:
    if not OPENB.is_dir():
        pytest.skip(f"openb trace not found at {OPENB} (set GPUFLEET_SHARED)")
    return OPENB


def profiles(policy: str):
    return [dataclasses.replace(builtin_profile(policy), percentage_of_nodes_to_score=100)]


def gpu_node(name: str, gpus: int, model: str = "V100", cpu_milli: int = 64000, memory_mib: int = 262144) -> Node:
    return Node.with_gpus(name, cpu_milli, memory_mib, gpus, model)


def gpu_pod(name: str, num_gpu: int = 1, gpu_milli: int = 1000, cpu_milli: int = 1000, **kwargs) -> Pod:
    return Pod(name, cpu_milli, 1024, num_gpu, gpu_milli if num_gpu else 0, **kwargs)
