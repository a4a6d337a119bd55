"""Measure a latency profile ``L(batch, partition %)`` for a PyTorch model on the current device.

* CPU: a partition of p % is ``round(p / 100 x cores)`` of this process's CPUs (at least one): the
  process is pinned to them with ``os.sched_setaffinity`` (Linux) and ``torch.set_num_threads`` uses as
  many threads; the previous affinity and thread count are restored afterwards.
* NVIDIA GPU with MPS: a partition is an MPS active-thread percentage, which a CUDA context takes from
  ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` when it is created; so every partition is measured in a fresh
  subprocess (``python -m gpufleet.serving.profiler --worker``) with that variable set. This path needs
  an MPS control daemon (``nvidia-cuda-mps-control -d``) and is not tested here (no GPU in CI).

Each point is the median of ``repeats`` timed runs after ``warmup`` untimed ones (GPULet profiles offline
in the same way, Choi et al. ATC'22 Sec. 4.1).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable

from .profiles import LatencyProfile


def cpu_share(partition_pct: float, cpus: list[int]) -> list[int]:
    """The CPUs a partition of ``partition_pct`` % gets: the first round(p/100 x n), at least one."""
    n = max(1, round(partition_pct / 100.0 * len(cpus)))
    return sorted(cpus)[:n]


@contextmanager
def cpu_partition(partition_pct: float):
    import torch

    has_affinity = hasattr(os, "sched_getaffinity")
    cpus = sorted(os.sched_getaffinity(0)) if has_affinity else list(range(os.cpu_count() or 1))
    share = cpu_share(partition_pct, cpus)
    threads = torch.get_num_threads()
    try:
        if has_affinity:
            os.sched_setaffinity(0, share)
        torch.set_num_threads(len(share))
        yield share
    finally:
        if has_affinity:
            os.sched_setaffinity(0, cpus)
        torch.set_num_threads(threads)


def time_batches(model, input_shape: tuple[int, ...], batches, warmup: int = 2, repeats: int = 5,
                 device: str = "cpu") -> dict[int, float]:
    """Median latency (ms) of one forward pass per batch size."""
    import torch

    out = {}
    with torch.inference_mode():
        for b in batches:
            x = torch.randn((b, *input_shape), device=device)
            for _ in range(warmup):
                model(x)
            samples = []
            for _ in range(repeats):
                if device != "cpu":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model(x)
                if device != "cpu":
                    torch.cuda.synchronize()
                samples.append((time.perf_counter() - t0) * 1000.0)
            out[b] = statistics.median(samples)
    return out


def profile_cpu(name: str, model_factory: Callable[[], object], input_shape: tuple[int, ...],
                batches=(1, 2, 4, 8, 16, 32), partitions=(50, 100), warmup: int = 2,
                repeats: int = 5) -> LatencyProfile:
    """Profile on CPU, one partition (core share) at a time."""
    model = model_factory()
    points = []
    for p in partitions:
        with cpu_partition(p):
            for b, ms in time_batches(model, input_shape, batches, warmup, repeats).items():
                points.append((b, p, ms))
    return LatencyProfile.from_points(name, points)


def profile_mps(name: str, arch: str, batches=(1, 2, 4, 8, 16, 32), partitions=(20, 40, 50, 60, 80, 100),
                warmup: int = 5, repeats: int = 20) -> LatencyProfile:
    """Profile a built-in arch on the GPU under MPS, one subprocess per active-thread percentage."""
    points = []
    for p in partitions:
        env = dict(os.environ, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=str(p))
        cmd = [sys.executable, "-m", "gpufleet.serving.profiler", "--worker", arch,
               ",".join(map(str, batches)), str(warmup), str(repeats)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        for b, ms in json.loads(done.stdout.strip().splitlines()[-1]).items():
            points.append((int(b), p, float(ms)))
    return LatencyProfile.from_points(name, points)


def _worker(argv: list[str]) -> None:  # runs inside the MPS-limited subprocess
    from .runtime.models import ARCHS, build_model

    arch, batches, warmup, repeats = argv[0], [int(b) for b in argv[1].split(",")], int(argv[2]), int(argv[3])
    model = build_model(arch).to("cuda")
    print(json.dumps(time_batches(model, ARCHS[arch], batches, warmup, repeats, device="cuda")))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    _worker(sys.argv[2:])
