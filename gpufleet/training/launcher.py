"""The launcher (agent): start the workers with torchrun's environment contract, watch them, restart them.

Modelled on torch.distributed.elastic's LocalElasticAgent and torchrun
(https://pytorch.org/docs/stable/elastic/run.html, "Environment Variables"; torch/distributed/elastic/
agent/server/api.py): the agent owns the worker processes, the rendezvous gives every worker its place,
and the environment is the only interface to the worker. Each worker gets

=============================  ============================================================
``RANK``                       ``node_rank * nproc_per_node + local_rank`` (the global rank)
``LOCAL_RANK``                 ``0 .. nproc_per_node - 1`` on its node
``WORLD_SIZE``                 ``nnodes * nproc_per_node``
``LOCAL_WORLD_SIZE``           ``nproc_per_node``
``GROUP_RANK``, ``NODE_RANK``  the node's rank (torchrun: GROUP_RANK; the launchers before it: NODE_RANK)
``ROLE_RANK``, ``ROLE_WORLD_SIZE``, ``ROLE_NAME``, ``GROUP_WORLD_SIZE``  as torchrun (one role, "default")
``MASTER_ADDR``, ``MASTER_PORT``  where rank 0 hosts the c10d TCPStore (a free port, new every attempt)
``TORCHELASTIC_RESTART_COUNT``  how many times the workers were restarted so far
``TORCHELASTIC_MAX_RESTARTS``  the job's max_restarts
``TORCHELASTIC_RUN_ID``        the job's run id
``OMP_NUM_THREADS``            1 unless set (as torchrun does with more than one process per node)
``GPUFLEET_CHECKPOINT_DIR``    the job's checkpoint directory, when it has one
=============================  ============================================================

Every node group (one per node rank) runs on this machine unless ``node_ranks`` names a subset (one pod of
a multi-node job). Logs: each line a worker writes is printed with a ``[rankN]:`` prefix (stdout to
stdout, stderr to stderr), like torchrun's ``--tee`` prefixes.

Failure policy (torchrun's): the agent polls its workers; when one exits non-zero (or is killed) every
worker is stopped (SIGTERM to its process group, SIGKILL after ``stop_grace_seconds``) and all of them
are started again with TORCHELASTIC_RESTART_COUNT + 1 and a new master port, at most ``max_restarts``
times; a training script resumes from its latest checkpoint. When restarts run out the launcher returns
the failed worker's exit code (128 + signal for a killed one). The workers never outlive the launcher:
it stops them on any exit, SIGINT and SIGTERM included.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Callable

from .spec import TrainingJob

DEFAULT_MONITOR_INTERVAL = 0.05
DEFAULT_STOP_GRACE = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (bound with port 0 and released, as torchrun's get_free_port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class WorkerSpec:
    """What the agent needs: the command, the shape of the job, and where rank 0 listens."""

    command: list[str]
    nnodes: int = 1
    nproc_per_node: int = 1
    max_restarts: int = 0
    run_id: str = field(default_factory=lambda: f"gpufleet-{uuid.uuid4().hex[:8]}")
    env: dict[str, str] = field(default_factory=dict)
    checkpoint_dir: str | None = None
    master_addr: str = "127.0.0.1"
    master_port: int | None = None  # None: a free port, chosen again for every attempt
    node_ranks: list[int] | None = None  # None: every node on this machine
    monitor_interval: float = DEFAULT_MONITOR_INTERVAL
    stop_grace_seconds: float = DEFAULT_STOP_GRACE
    cwd: str | None = None

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    @staticmethod
    def from_job(job: TrainingJob, **overrides) -> "WorkerSpec":
        spec = WorkerSpec(command=job.full_command(), nnodes=job.nnodes, nproc_per_node=job.nproc_per_node,
                          max_restarts=job.max_restarts, run_id=job.name, env=dict(job.env),
                          checkpoint_dir=job.checkpoint_dir)
        for key, value in overrides.items():
            if value is not None:
                setattr(spec, key, value)
        return spec


def worker_env(spec: WorkerSpec, node_rank: int, local_rank: int, restart_count: int, master_port: int,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of one worker: ``base`` (the launcher's), the job's env, then torchrun's contract."""
    env = dict(os.environ if base is None else base)
    env.update(spec.env)
    rank = node_rank * spec.nproc_per_node + local_rank
    env.update({
        "RANK": str(rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(spec.world_size),
        "LOCAL_WORLD_SIZE": str(spec.nproc_per_node), "GROUP_RANK": str(node_rank), "NODE_RANK": str(node_rank),
        "GROUP_WORLD_SIZE": str(spec.nnodes), "ROLE_RANK": str(rank), "ROLE_WORLD_SIZE": str(spec.world_size),
        "ROLE_NAME": "default", "MASTER_ADDR": spec.master_addr, "MASTER_PORT": str(master_port),
        "TORCHELASTIC_RESTART_COUNT": str(restart_count), "TORCHELASTIC_MAX_RESTARTS": str(spec.max_restarts),
        "TORCHELASTIC_RUN_ID": spec.run_id, "PYTHON_EXEC": sys.executable,
    })
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if spec.checkpoint_dir:
        env["GPUFLEET_CHECKPOINT_DIR"] = spec.checkpoint_dir
    return env


@dataclass
class Worker:
    rank: int
    local_rank: int
    node_rank: int
    process: subprocess.Popen
    readers: list[threading.Thread]


@dataclass
class AttemptResult:
    ok: bool
    failed_rank: int | None = None
    exit_code: int = 0


class _Output:
    """Serialises prefixed lines from many reader threads onto the launcher's stdout / stderr."""

    def __init__(self, stdout: IO[str], stderr: IO[str]):
        self.stdout, self.stderr = stdout, stderr
        self.lock = threading.Lock()

    def pump(self, pipe: IO[bytes], prefix: str, to_stderr: bool) -> None:
        target = self.stderr if to_stderr else self.stdout
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace")
            if not line.endswith("\n"):
                line += "\n"
            with self.lock:
                try:
                    target.write(prefix + line)
                    target.flush()
                except (ValueError, OSError):
                    pass
        pipe.close()


class Terminated(Exception):
    """The launcher got SIGTERM: stop the workers and exit 143."""


class Agent:
    """Runs one job's workers on this machine, restarting all of them when one fails."""

    def __init__(self, spec: WorkerSpec, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                 log: Callable[[str], None] | None = None):
        self.spec = spec
        self.output = _Output(stdout or sys.stdout, stderr or sys.stderr)
        self.log = log or (lambda msg: print(f"gpufleet train: {msg}", file=sys.stderr, flush=True))
        self.workers: list[Worker] = []
        self.restart_count = 0
        self.on_started: list[Callable[[list[Worker]], None]] = []  # tests and the bench watch starts

    # ------------------------------------------------------------------ one attempt
    def start_workers(self, restart_count: int) -> None:
        spec = self.spec
        port = spec.master_port or free_port(spec.master_addr if spec.master_addr != "localhost" else "127.0.0.1")
        node_ranks = spec.node_ranks if spec.node_ranks is not None else list(range(spec.nnodes))
        self.workers = []
        base = dict(os.environ)
        for node_rank in node_ranks:
            for local_rank in range(spec.nproc_per_node):
                env = worker_env(spec, node_rank, local_rank, restart_count, port, base)
                rank = int(env["RANK"])
                proc = subprocess.Popen(spec.command, env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
                readers = []
                for pipe, to_err in ((proc.stdout, False), (proc.stderr, True)):
                    t = threading.Thread(target=self.output.pump, args=(pipe, f"[rank{rank}]: ", to_err),
                                         daemon=True)
                    t.start()
                    readers.append(t)
                self.workers.append(Worker(rank, local_rank, node_rank, proc, readers))
        for cb in self.on_started:
            cb(self.workers)

    def monitor(self) -> AttemptResult:
        """Wait until every worker succeeded or one failed."""
        while True:
            running = False
            for w in self.workers:
                code = w.process.poll()
                if code is None:
                    running = True
                elif code != 0:
                    return AttemptResult(False, w.rank, code if code > 0 else 128 - code)
            if not running:
                return AttemptResult(True)
            time.sleep(self.spec.monitor_interval)

    def stop_workers(self) -> None:
        """SIGTERM every worker's process group, SIGKILL what is left after the grace period."""
        alive = [w for w in self.workers if w.process.poll() is None]
        for w in alive:
            _signal_group(w.process, signal.SIGTERM)
        deadline = time.monotonic() + self.spec.stop_grace_seconds
        for w in alive:
            try:
                w.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                pass
        for w in self.workers:
            _signal_group(w.process, signal.SIGKILL)  # stragglers, and any child a worker left behind
            try:
                w.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for w in self.workers:
            for t in w.readers:
                t.join(timeout=2)

    # ------------------------------------------------------------------ the job
    def run(self) -> int:
        """Run to completion; 0 on success, else the failed worker's exit code once restarts run out."""
        previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() \
            else None
        if previous is not None:
            signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            while True:
                self.start_workers(self.restart_count)
                result = self.monitor()
                self.stop_workers()
                if result.ok:
                    return 0
                if self.restart_count >= self.spec.max_restarts:
                    self.log(f"worker rank {result.failed_rank} exited with code {result.exit_code}; "
                             f"restarts exhausted ({self.restart_count} of {self.spec.max_restarts}): job failed")
                    return result.exit_code or 1
                self.restart_count += 1
                self.log(f"worker rank {result.failed_rank} exited with code {result.exit_code}; stopping every "
                         f"worker and restarting all ({self.restart_count} of {self.spec.max_restarts})")
        except Terminated:
            self.log("terminated: stopping every worker")
            return 143
        except KeyboardInterrupt:
            self.log("interrupted: stopping every worker")
            return 130
        finally:
            self.stop_workers()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum, frame):
    raise Terminated()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch(spec: WorkerSpec, **kwargs) -> int:
    return Agent(spec, **kwargs).run()
