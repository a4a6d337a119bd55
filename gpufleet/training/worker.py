"""What a training script imports: ``init()``, a DistributedSampler helper and a ``Checkpointer``.

* ``init()`` reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, ...;
  https://pytorch.org/docs/stable/elastic/run.html), picks ``nccl`` when CUDA is available and ``gloo``
  otherwise (torch.distributed docs, "Which backend to use?"), sets the device (``cuda:LOCAL_RANK`` or
  the CPU), waits until MASTER_ADDR resolves (on Kubernetes the master pod's DNS record appears only once
  that pod runs: retrying beats failing with "host not found"), then ``init_process_group("env://")``.
* ``distributed_sampler`` builds torch's DistributedSampler for this rank; ``epochs`` calls
  ``set_epoch`` before every epoch so the shuffle differs per epoch and agrees across ranks (the sampler
  seeds its permutation with ``seed + epoch``).
* ``Checkpointer``: rank 0 saves ``{"step", "model", "optimizer", "lr_scheduler", "extra"}`` with the
  model unwrapped from DDP (no ``module.`` prefix), atomically (written to a temporary file in the same
  directory, fsynced, then ``os.replace``: a reader never sees a torn file), keeping the last N; every
  rank loads the latest with ``map_location`` = its own device (a checkpoint saved on cuda:1 loads on the
  CPU or cuda:0) and ``weights_only=True`` (no arbitrary unpickling).

Background: rank = node_rank * nproc_per_node + local_rank; DDP broadcasts rank 0's parameters at
construction and all-reduces gradients, so all ranks hold the same parameters and one copy is saved.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist

CHECKPOINT_RE = re.compile(r"^ckpt-(\d{8,})\.pt$")


class WorkerEnvError(RuntimeError):
    """The process was not started by gpufleet train or torchrun (a required variable is missing)."""


@dataclass
class WorkerContext:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    restart_count: int
    max_restarts: int
    run_id: str
    backend: str
    device: torch.device
    checkpoint_dir: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise WorkerEnvError(f"{name} is not set: start this script with 'gpufleet train' or torchrun")
        return default
    try:
        return int(value)
    except ValueError:
        raise WorkerEnvError(f"{name} must be an integer, got {value!r}") from None


def context_from_env(backend: str | None = None) -> WorkerContext:
    rank = _env_int("RANK")
    world_size = _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1)) if cuda else torch.device("cpu")
    return WorkerContext(
        rank=rank, world_size=world_size, local_rank=local_rank,
        local_world_size=_env_int("LOCAL_WORLD_SIZE", 1),
        node_rank=_env_int("GROUP_RANK", _env_int("NODE_RANK", 0)),
        restart_count=_env_int("TORCHELASTIC_RESTART_COUNT", 0),
        max_restarts=_env_int("TORCHELASTIC_MAX_RESTARTS", 0),
        run_id=os.environ.get("TORCHELASTIC_RUN_ID", "none"), backend=backend, device=device,
        checkpoint_dir=os.environ.get("GPUFLEET_CHECKPOINT_DIR"))


def wait_for_master(host: str, timeout: float = 600.0, interval: float = 1.0) -> None:
    """Retry resolving ``host`` until it resolves or ``timeout`` seconds pass (then raise)."""
    deadline = time.monotonic() + timeout
    delay = min(interval, 0.1)
    warned = False
    while True:
        try:
            socket.getaddrinfo(host, None)
            return
        except socket.gaierror as exc:
            if time.monotonic() >= deadline:
                raise WorkerEnvError(f"MASTER_ADDR {host!r} did not resolve within {timeout:g}s: {exc}") from None
            if not warned:
                print(f"waiting for MASTER_ADDR {host!r} to resolve ({exc.strerror})", file=sys.stderr, flush=True)
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, interval * 5)


def init(backend: str | None = None, timeout: float = 300.0, master_timeout: float = 600.0) -> WorkerContext:
    """Join the job's process group from the environment; returns this worker's context."""
    ctx = context_from_env(backend)
    if ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise WorkerEnvError("MASTER_ADDR and MASTER_PORT are not set: start this script with 'gpufleet train' "
                             "or torchrun")
    wait_for_master(os.environ["MASTER_ADDR"], master_timeout)
    if not dist.is_initialized():
        dist.init_process_group(ctx.backend, init_method="env://", rank=ctx.rank, world_size=ctx.world_size,
                                timeout=timedelta(seconds=timeout))
    return ctx


def shutdown(timeout_s: float = 30.0) -> None:
    """Leave the process group cleanly, rank 0 last.

    A barrier first, so no rank tears its group down while another is still in the last collective; then
    every other rank destroys its group and says so in the rendezvous TCPStore, and rank 0, which hosts
    that store, waits for them before destroying its own group and exiting. Without this ordering gloo can
    abort a late rank at exit ("terminate called without an active exception", exit code 134) when the
    store host is already gone.
    """
    if not dist.is_initialized():
        return
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        dist.barrier()
    except Exception:  # noqa: BLE001 - a broken group still has to be destroyed
        dist.destroy_process_group()
        return
    store = _store_client(timeout_s)
    if rank != 0 or world == 1 or store is None:
        dist.destroy_process_group()
        if store is not None and rank != 0:
            store.set(f"gpufleet/left/{rank}", "1")
        return
    try:
        store.wait([f"gpufleet/left/{r}" for r in range(1, world)], timedelta(seconds=timeout_s))
    except Exception:  # noqa: BLE001 - a rank that died meanwhile must not keep rank 0 forever
        pass
    dist.destroy_process_group()


def _store_client(timeout_s: float):
    """A client of the rendezvous TCPStore (MASTER_ADDR:MASTER_PORT, hosted by rank 0), or None."""
    host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not host or not port:
        return None
    try:
        return dist.TCPStore(host, int(port), is_master=False, timeout=timedelta(seconds=timeout_s))
    except Exception:  # noqa: BLE001
        return None


def distributed_sampler(dataset, ctx: WorkerContext | None = None, shuffle: bool = True, seed: int = 0,
                        drop_last: bool = False):
    """torch's DistributedSampler for this rank (each rank sees 1/world_size of the data)."""
    from torch.utils.data.distributed import DistributedSampler

    if ctx is None:
        ctx = context_from_env()
    return DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed,
                              drop_last=drop_last)


def epochs(sampler, stop: int, start: int = 0) -> Iterator[int]:
    """``for epoch in epochs(sampler, n)``: calls ``sampler.set_epoch(epoch)`` before each epoch."""
    for epoch in range(start, stop):
        sampler.set_epoch(epoch)
        yield epoch


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / DataParallel (their parameters start with 'module.')."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def _strip_module_prefix(state: dict[str, Any]) -> dict[str, Any]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


class Checkpointer:
    """Rank-0, atomic, last-N checkpoints of model, optimizer, LR scheduler and step."""

    def __init__(self, directory: str | os.PathLike | None = None, keep: int = 3, ctx: WorkerContext | None = None,
                 rank: int | None = None, device: torch.device | str | None = None):
        directory = directory or os.environ.get("GPUFLEET_CHECKPOINT_DIR")
        if not directory:
            raise ValueError("no checkpoint directory: pass one or set spec.checkpointDir (GPUFLEET_CHECKPOINT_DIR)")
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep
        self.rank = rank if rank is not None else (ctx.rank if ctx else int(os.environ.get("RANK", "0")))
        self.device = torch.device(device) if device is not None else (ctx.device if ctx else torch.device("cpu"))
        self.extra: dict[str, Any] = {}
        if self.rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first (temporary files are ignored)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            m = CHECKPOINT_RE.match(path.name)
            if m:
                found.append((int(m.group(1)), path))
        return sorted(found)

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save(self, step: int, model: torch.nn.Module, optimizer=None, lr_scheduler=None,
             extra: dict[str, Any] | None = None) -> Path | None:
        """On rank 0: write ``ckpt-STEP.pt`` atomically and drop all but the newest ``keep``; others: None."""
        if self.rank != 0:
            return None
        state = {"step": int(step), "model": unwrap(model).state_dict(),
                 "optimizer": optimizer.state_dict() if optimizer is not None else None,
                 "lr_scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else None,
                 "extra": dict(extra or {})}
        final = self.directory / f"ckpt-{int(step):08d}.pt"
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
        for _, old in self.checkpoints()[:-self.keep]:
            try:
                old.unlink()
            except OSError:
                pass
        return final

    def load(self, model: torch.nn.Module, optimizer=None, lr_scheduler=None, path: str | os.PathLike | None = None,
             map_location: torch.device | str | None = None) -> int:
        """Load the latest (or given) checkpoint into the unwrapped model, optimizer and scheduler.

        Returns the saved step, or 0 when there is no checkpoint yet. ``extra`` is left in ``self.extra``.
        """
        path = Path(path) if path is not None else self.latest()
        if path is None:
            return 0
        state = torch.load(path, map_location=map_location if map_location is not None else self.device,
                           weights_only=True)
        unwrap(model).load_state_dict(_strip_module_prefix(state["model"]))
        if optimizer is not None and state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
        if lr_scheduler is not None and state.get("lr_scheduler") is not None:
            lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.extra = dict(state.get("extra") or {})
        return int(state["step"])
