"""The router: admission, SLO-aware queues and dynamic batching in front of the partition workers.

One asyncio event loop (the HTTP server's) owns all queues; each planned partition has one dispatcher
task and one worker process (:mod:`.worker`). Rules:

* **Routing.** A model served by several partitions goes to the one with the fewest queued requests per
  planned request rate (the plan's split of the model's rate).
* **Admission** (answered at once, nothing is queued): 503 + ``Retry-After`` when the model already has
  ``max_queue`` requests queued (the queue never grows past it, so memory is bounded), or when the
  estimated completion time (the work queued ahead in that partition plus this request's batch) is
  already past the SLO.
* **Earliest deadline first.** Every request carries ``deadline = arrival + SLO``. A partition that
  time-shares several models always serves the model whose oldest request has the earliest deadline.
* **Dynamic batching** (Nexus/GPULet duty cycles, Shen et al. SOSP'19 Sec. 6; Choi et al. ATC'22 Sec. 5):
  a model's batch is dispatched when its planned batch size is queued, or when waiting longer would cost
  the oldest request its SLO (``now >= deadline - l(B)``), or after one planned duty cycle, whichever
  comes first; at most the planned batch size goes in one batch.
* **Dropping.** A queued request that can no longer finish in time (``now + l(1) > deadline``) is
  answered 503 and never run (SLO-aware load shedding: its compute would be wasted).

``l(b)`` is the profiled latency ``L(b, partition %)`` times 1.1 (the planners' ratio) times a
correction learned at run time: an exponential average of measured / profiled compute time, so a
machine slower or faster than the profile's is estimated from what it actually does.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import ServingError
from ..plan import LATENCY_RATIO, Plan
from ..profiles import ProfileSet
from .metrics import RuntimeMetrics
from .models import ARCHS
from .worker import WorkerConfig, core_shares, worker_main

CORRECTION_ALPHA = 0.2
CORRECTION_RANGE = (0.05, 200.0)


class Rejected(Exception):
    """A request answered without a result: HTTP status, a reason a user can read, Retry-After seconds."""

    def __init__(self, status: int, reason: str, message: str, retry_after: int | None = None,
                 queue_ms: float = 0.0):
        super().__init__(message)
        self.status, self.reason, self.message, self.retry_after = status, reason, message, retry_after
        self.queue_ms = queue_ms


@dataclass(order=True)
class _Queued:
    deadline: float
    seq: int
    arrival: float = field(compare=False)
    inputs: np.ndarray = field(compare=False)
    future: asyncio.Future = field(compare=False)


@dataclass
class ModelSlot:
    """One model on one partition: its planned batch, duty cycle and rate, and its EDF queue."""

    model: str
    arch: str
    slo_ms: float
    batch: int
    duty_ms: float
    planned_rps: float
    queue: list = field(default_factory=list)  # heap of _Queued


class PartitionRuntime:
    """A planned partition: its models' queues, its dispatcher task and its worker process."""

    def __init__(self, router: "Router", pid: str, gpu: int, percent: int, slots: dict[str, ModelSlot],
                 config: WorkerConfig):
        self.router, self.id, self.gpu, self.percent, self.slots = router, pid, gpu, percent, slots
        self.config = config
        self.process = None
        self.conn = None
        self.alive = False
        self.correction = 1.0
        self.busy_until = 0.0
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"partition-{pid}")
        self.batch_ids = itertools.count()

    # -- estimates
    def estimate_ms(self, model: str, n: int) -> float:
        prof = self.router.profiles[model]
        n = max(1, min(n, prof.max_batch))
        return prof.latency(n, self.percent) * LATENCY_RATIO * self.correction

    def estimate_completion_ms(self, model: str, extra: int = 1) -> float:
        """Time from now until a new request for ``model`` would be answered (rough, EDF ignored)."""
        now = time.perf_counter()
        slot = self.slots[model]
        n = len(slot.queue) + extra
        batches = math.ceil(n / slot.batch)
        others = sum(self.estimate_ms(s.model, min(len(s.queue), s.batch))
                     for s in self.slots.values() if s is not slot and s.queue)
        last = n - (batches - 1) * slot.batch
        return (max(0.0, self.busy_until - now) * 1000.0 + others
                + (batches - 1) * (self.estimate_ms(model, slot.batch) + others) + self.estimate_ms(model, last))

    def queued(self) -> int:
        return sum(len(s.queue) for s in self.slots.values())

    # -- the dispatcher
    def _drop_hopeless(self, now: float) -> None:
        for slot in self.slots.values():
            while slot.queue:
                head = slot.queue[0]
                if head.future.done():  # the client went away
                    heapq.heappop(slot.queue)
                    self.router.dequeued(slot.model, 1)
                    continue
                if now + self.estimate_ms(slot.model, 1) / 1000.0 <= head.deadline:
                    break
                heapq.heappop(slot.queue)
                self.router.dequeued(slot.model, 1)
                waited = (now - head.arrival) * 1000.0
                head.future.set_exception(Rejected(
                    503, "slo_expired", f"dropped after {waited:.1f} ms in the queue: the {slot.slo_ms:g} ms SLO "
                    "can no longer be met (server over capacity)", retry_after=1, queue_ms=waited))

    def _next_slot(self) -> ModelSlot | None:
        ready = [s for s in self.slots.values() if s.queue]
        return min(ready, key=lambda s: s.queue[0].deadline) if ready else None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.alive:
            now = time.perf_counter()
            self._drop_hopeless(now)
            slot = self._next_slot()
            if slot is None:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if len(slot.queue) < slot.batch:
                head = slot.queue[0]
                fire_at = min(head.arrival + slot.duty_ms / 1000.0,
                              head.deadline - self.estimate_ms(slot.model, slot.batch) / 1000.0)
                if now < fire_at:
                    self.wakeup.clear()
                    try:
                        await asyncio.wait_for(self.wakeup.wait(), fire_at - now)
                    except asyncio.TimeoutError:
                        pass
                    continue
            batch = [heapq.heappop(slot.queue) for _ in range(min(slot.batch, len(slot.queue)))]
            self.router.dequeued(slot.model, len(batch))
            batch = [r for r in batch if not r.future.done()]
            if batch:
                await self._execute(loop, slot, batch)

    def _roundtrip(self, message):
        self.conn.send(message)
        return self.conn.recv()

    async def _execute(self, loop, slot: ModelSlot, batch: list[_Queued]) -> None:
        n = len(batch)
        x = np.stack([r.inputs for r in batch])
        start = time.perf_counter()
        self.busy_until = start + self.estimate_ms(slot.model, n) / 1000.0
        try:
            reply = await loop.run_in_executor(self.executor, self._roundtrip,
                                               ("run", next(self.batch_ids), slot.model, x))
        except (EOFError, OSError, BrokenPipeError):
            reply = ("error", None, "worker process exited")
            self.alive = False
        done = time.perf_counter()
        self.busy_until = 0.0
        if reply[0] != "done":
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(Rejected(503 if not self.alive else 500, "worker_error",
                                                    f"partition {self.id}: {reply[2]}", retry_after=1))
            if not self.alive:
                self.fail_all("worker process exited")
            return
        _, _, outputs, compute_ms = reply
        predicted = self.router.profiles[slot.model].latency(min(n, self.router.profiles[slot.model].max_batch),
                                                             self.percent) * LATENCY_RATIO
        if predicted > 0 and math.isfinite(predicted):
            ratio = min(max(compute_ms / predicted, CORRECTION_RANGE[0]), CORRECTION_RANGE[1])
            self.correction = (1 - CORRECTION_ALPHA) * self.correction + CORRECTION_ALPHA * ratio
        self.router.metrics.batch(slot.model, n, compute_ms)
        for i, r in enumerate(batch):
            if r.future.done():
                continue
            queue_ms = (start - r.arrival) * 1000.0
            total_ms = (done - r.arrival) * 1000.0
            r.future.set_result({
                "outputs": outputs[i].tolist(), "batch_size": n, "partition": self.id,
                "queue_ms": queue_ms, "compute_ms": compute_ms,
                "overhead_ms": max(0.0, total_ms - queue_ms - compute_ms), "total_ms": total_ms,
                "deadline_met": done <= r.deadline})

    def fail_all(self, why: str) -> None:
        self.alive = False
        for slot in self.slots.values():
            while slot.queue:
                r = heapq.heappop(slot.queue)
                self.router.dequeued(slot.model, 1)
                if not r.future.done():
                    r.future.set_exception(Rejected(503, "worker_down", f"partition {self.id}: {why}", retry_after=5))
        self.wakeup.set()


class Router:
    """All partitions of a plan, their workers, and the admission rules; lives in the server's event loop."""

    def __init__(self, service, plan: Plan, profiles: ProfileSet, device: str = "cpu",
                 max_queue: int | None = None, startup_timeout_s: float = 120.0):
        self.service, self.plan, self.profiles, self.device = service, plan, profiles, device
        self.max_queue = max_queue or service.runtime.max_queue
        self.startup_timeout_s = startup_timeout_s
        self.specs = {m.name: m for m in service.models}
        self.metrics = RuntimeMetrics([m.name for m in service.models], self.max_queue)
        self.queued_by_model = {m.name: 0 for m in service.models}
        self.seq = itertools.count()
        self.partitions: list[PartitionRuntime] = []
        self.by_model: dict[str, list[tuple[PartitionRuntime, float]]] = {m.name: [] for m in service.models}
        self._build()

    def _build(self) -> None:
        gpus = [[p for p in g if p.allocations] for g in self.plan.gpus]
        gpus = [g for g in gpus if g]
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        shares = core_shares([[p.percent for p in g] for g in gpus], cpus)
        for gi, gpu in enumerate(gpus):
            for k, part in enumerate(gpu):
                pid = f"gpu{gi}-p{k}-{part.percent}pct"
                slots = {}
                for a in part.allocations:
                    spec = self.specs[a.model]
                    slots[a.model] = ModelSlot(a.model, spec.arch, spec.slo_ms, max(1, a.batch),
                                               max(part.duty_cycle_ms, 0.0), a.rate_rps)
                config = WorkerConfig(pid, gi, part.percent,
                                      [(m, s.arch, self.specs[m].seed, s.batch) for m, s in slots.items()],
                                      self.device, shares[(gi, k)] if self.device == "cpu" else [])
                runtime = PartitionRuntime(self, pid, gi, part.percent, slots, config)
                self.partitions.append(runtime)
                for m, s in slots.items():
                    self.by_model[m].append((runtime, max(s.planned_rps, 1e-6)))
        missing = [m for m, parts in self.by_model.items() if not parts]
        if missing:
            raise ServingError(f"the {self.plan.planner} plan places no partition for model(s) {', '.join(missing)}; "
                               "raise spec.gpus or lower the rates")

    # -- lifecycle
    async def start(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        loop = asyncio.get_running_loop()
        try:
            for part in self.partitions:
                parent_conn, child_conn = ctx.Pipe()
                part.process = ctx.Process(target=worker_main, args=(child_conn, part.config),
                                           name=f"gpufleet-worker-{part.id}", daemon=True)
                part.process.start()
                child_conn.close()
                part.conn = parent_conn
            for part in self.partitions:
                ok = await loop.run_in_executor(part.executor, part.conn.poll, self.startup_timeout_s)
                if not ok:
                    raise ServingError(f"worker {part.id} did not start within {self.startup_timeout_s:g} s")
                msg = part.conn.recv()
                if msg[0] != "ready":
                    raise ServingError(f"worker {part.id} failed to start: {msg}")
                part.alive = True
                self.metrics.worker_up(part.id, True)
        except (EOFError, OSError) as exc:
            await self.stop()
            raise ServingError(f"a worker process exited during start-up ({exc})") from None
        except BaseException:
            await self.stop()
            raise
        for part in self.partitions:
            part.task = asyncio.create_task(part.run(), name=f"dispatch-{part.id}")

    async def stop(self) -> None:
        for part in self.partitions:
            part.fail_all("server shutting down")
            if part.task is not None:
                part.task.cancel()
        for part in self.partitions:
            if part.task is not None:
                try:
                    await part.task
                except (asyncio.CancelledError, Exception):
                    pass
            if part.conn is not None:
                try:
                    part.conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
        for part in self.partitions:
            if part.process is not None:
                part.process.join(5)
                if part.process.is_alive():
                    part.process.terminate()
                    part.process.join(2)
                if part.process.is_alive():
                    part.process.kill()
                    part.process.join(1)
            if part.conn is not None:
                part.conn.close()
            part.executor.shutdown(wait=False, cancel_futures=True)
            self.metrics.worker_up(part.id, False)

    # -- health
    def health(self) -> dict:
        workers = {}
        for part in self.partitions:
            up = part.alive and part.process is not None and part.process.is_alive()
            if part.alive and not up:
                part.fail_all("worker process exited")
            workers[part.id] = up
            self.metrics.worker_up(part.id, up)
        return {"status": "ok" if workers and all(workers.values()) else "degraded", "workers": workers,
                "queued": dict(self.queued_by_model)}

    # -- requests
    def dequeued(self, model: str, n: int) -> None:
        self.queued_by_model[model] -= n
        self.metrics.queue_length(model, self.queued_by_model[model])

    def _choose(self, model: str) -> PartitionRuntime | None:
        live = [(p, w) for p, w in self.by_model[model] if p.alive]
        if not live:
            return None
        return min(live, key=lambda pw: (len(pw[0].slots[model].queue) + 1) / pw[1])[0]

    async def submit(self, model: str, inputs: np.ndarray, arrival: float, timeout_s: float | None = None) -> dict:
        spec = self.specs[model]
        if self.queued_by_model[model] >= self.max_queue:
            raise Rejected(503, "queue_full", f"model {model!r} already has {self.max_queue} requests queued "
                           "(spec.runtime.maxQueue); retry later", retry_after=1)
        part = self._choose(model)
        if part is None:
            raise Rejected(503, "worker_down", f"no live worker serves model {model!r}", retry_after=5)
        expected = part.estimate_completion_ms(model)
        if expected > spec.slo_ms:
            raise Rejected(503, "slo_unreachable", f"model {model!r}: the queued work ahead needs about "
                           f"{expected:.1f} ms, past the {spec.slo_ms:g} ms SLO; retry later",
                           retry_after=max(1, math.ceil(expected / 1000.0)))
        future = asyncio.get_running_loop().create_future()
        slot = part.slots[model]
        heapq.heappush(slot.queue, _Queued(arrival + spec.slo_ms / 1000.0, next(self.seq), arrival, inputs, future))
        self.queued_by_model[model] += 1
        self.metrics.queue_length(model, self.queued_by_model[model])
        part.wakeup.set()
        timeout_s = timeout_s if timeout_s is not None else max(10.0, 5 * spec.slo_ms / 1000.0)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            raise Rejected(504, "timeout", f"no answer from partition {part.id} within {timeout_s:g} s") from None


def input_shape(arch: str) -> tuple[int, ...]:
    return ARCHS[arch]
