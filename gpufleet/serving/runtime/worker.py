"""Partition workers: one process per planned partition, running its models' batches one at a time.

A worker is started with the ``spawn`` method (a fresh interpreter: no CUDA context or thread pool is
inherited from the router) and talks to the router over one ``multiprocessing`` pipe:

    router -> worker   ("run", batch_id, model, float32 array of shape (n, *input_shape))  |  None (stop)
    worker -> router   ("ready", pid)  once, after the models are built and warmed up
                       ("done", batch_id, outputs array, compute_ms)  |  ("error", batch_id, message)

Its share of the device is set before the framework starts:

* CPU: a partition of p % of a GPU group is a contiguous run of that group's cores
  (:func:`core_shares`); the worker pins itself there (``os.sched_setaffinity``) and runs
  ``torch.set_num_threads(len(cores))``;
* NVIDIA GPU: ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = p`` and ``CUDA_VISIBLE_DEVICES = gpu`` are set in the
  worker's environment *before torch is imported* (MPS reads the percentage when the CUDA context is
  created). Needs an MPS control daemon (``nvidia-cuda-mps-control -d``); not exercised by the tests.

A worker whose router disappears (parent pid changes) exits by itself.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field


@dataclass
class WorkerConfig:
    """What one partition worker runs and where."""

    partition_id: str
    gpu: int
    percent: int
    models: list[tuple[str, str, int, int]]  # (name, arch, seed, max batch to warm up)
    device: str = "cpu"  # "cpu" or "cuda"
    cores: list[int] = field(default_factory=list)  # CPU only


def core_shares(gpus: list[list[int]], cpus: list[int]) -> dict[tuple[int, int], list[int]]:
    """Map partitions to CPU cores. ``gpus[g]`` lists the percentages of GPU group g's partitions.

    The machine's cores are split evenly over the GPU groups (all groups share all cores when there are
    fewer cores than groups); within a group, partition k of p % gets the next ``round(p/100 x n)``
    cores (at least one), wrapping around when rounding runs past the group's cores. Returns
    ``{(g, k): cores}``."""
    cpus = sorted(cpus) or [0]
    groups = len(gpus) or 1
    if len(cpus) >= groups:
        per = len(cpus) // groups
        group_cores = [cpus[g * per:(g + 1) * per] for g in range(groups)]
    else:
        group_cores = [cpus] * groups
    out = {}
    for g, parts in enumerate(gpus):
        cores = group_cores[g]
        start = 0
        for k, pct in enumerate(parts):
            n = min(len(cores), max(1, round(pct / 100.0 * len(cores))))
            out[(g, k)] = [cores[(start + i) % len(cores)] for i in range(n)]
            start += n
    return out


def _set_device_share(config: WorkerConfig) -> None:
    """Must run before ``import torch`` (MPS reads the environment at CUDA context creation)."""
    if config.device == "cuda":
        os.environ["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(int(config.percent))
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", str(config.gpu))
    elif config.cores:
        threads = str(len(config.cores))
        os.environ["OMP_NUM_THREADS"] = threads
        os.environ["MKL_NUM_THREADS"] = threads
        if hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(0, config.cores)
            except OSError:
                pass  # cores outside our cgroup: keep the inherited affinity


def worker_main(conn, config: WorkerConfig) -> None:
    """Entry point of a partition worker process."""
    parent = os.getppid()
    _set_device_share(config)
    import numpy as np
    import torch

    from .models import ARCHS, build_model

    if config.device == "cpu":
        torch.set_num_threads(max(1, len(config.cores) or 1))
    device = torch.device("cuda" if config.device == "cuda" else "cpu")
    models = {}
    with torch.inference_mode():
        for name, arch, seed, max_batch in config.models:
            model = build_model(arch, seed).to(device)
            for b in sorted({1, max(1, max_batch)}):  # warm up the shapes the router will send
                model(torch.zeros((b, *ARCHS[arch]), device=device))
            models[name] = model
    conn.send(("ready", os.getpid()))
    while True:
        try:
            if not conn.poll(1.0):
                if os.getppid() != parent:
                    return  # the router is gone
                continue
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        _, batch_id, name, array = msg
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                y = models[name](x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                compute_ms = (time.perf_counter() - t0) * 1000.0
                out = y.float().cpu().numpy()
            conn.send(("done", batch_id, out, compute_ms))
        except Exception as exc:  # report, keep serving the other batches
            try:
                conn.send(("error", batch_id, f"{type(exc).__name__}: {exc}"))
            except (EOFError, OSError):
                return
