"""Training jobs in the simulator: job traces, gang-scheduled replay, queue policies, JCT and utilisation.

A job is ``workers`` pods of ``gpus_per_worker`` GPUs each that run together for ``duration`` seconds of
work: a PodGroup with ``minMember = workers``, scheduled by the real Scheduler with the Coscheduling
plugin (gang: all workers bind or none) over the base policy's scores. Virtual time comes from the event
loop (``events.EventLoop``), as in replay mode.

Queue policies (the order in which pending jobs are tried; each is pod priority plus the gang QueueSort,
so the same profile runs on Kubernetes):

* ``fifo``: every job priority 0; the QueueSort orders groups by submit time. A job that does not fit
  does not block smaller jobs behind it (kube-scheduler moves on; this is FIFO with backfill).
* ``sjf`` (shortest job first): priority = ``-ceil(duration)``, non-preemptive. It uses the trace's
  duration as an oracle, as the Tiresias paper's SRTF/SJF baselines do.
* ``las``: Tiresias' discretised two-dimensional least-attained-service (Gu et al., NSDI'19, Sec. 3.2):
  a job's attained service is GPUs x seconds run; thresholds (``--las-thresholds``, GPU-seconds, default
  3600 and 36000) split jobs into queues, priority = ``-queue``; within a queue FIFO by submit time. A
  running job that crosses a threshold is demoted at that moment, and PriorityPreemption (whole gangs
  only) lets a waiting job of a higher queue evict it; the evicted job keeps its attained service and
  remaining work and is queued again (Tiresias restarts it from its checkpoint; no restart cost is
  charged here). Tiresias' starvation guard (promotion after long waits) is not modelled.

Traces: YAML ``kind: JobTrace`` (``spec.jobs[]``: name, submitTime, workers, gpusPerWorker, duration,
optional cpu, memory, priority) or CSV with columns ``name,submit_time,workers,gpus_per_worker,duration``
and optional ``cpu_milli,memory_mib``. Errors name file, line and field.

Metrics: job completion time (JCT) = finish - submit; queueing delay = first start - submit; GPU
utilisation (allocated GPU milli / total) over time, time-weighted mean over [first submit, last finish];
preemptions; jobs that never ran (more GPUs than the cluster has, or still waiting when nothing else can
happen).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..cluster import ClusterState, Node, Pod, PodGroup, SpecError
from ..cluster import quantity
from ..cluster.spec import document_fields
from ..scheduler import ProfileConfig, Scheduler, builtin_profile
from ..scheduler.plugins.gang import with_gang
from .events import EventLoop
from .metrics import allocation_ratio, delay_percentiles

QUEUE_POLICIES = ("fifo", "sjf", "las")
DEFAULT_LAS_THRESHOLDS = (3600.0, 36000.0)
DEPARTURE, ARRIVAL, SCHEDULING_PASS = 0, 1, 2
IDLE_PASSES = 12  # wake-ups allowed once no arrival or completion is left (backoffs, denials expiring)


@dataclass(frozen=True)
class JobSpec:
    name: str
    submit_time: float
    workers: int
    gpus_per_worker: int
    duration: float  # seconds of work with all workers running
    cpu_milli: int = 1000
    memory_mib: int = 4096

    @property
    def gpus(self) -> int:
        return self.workers * self.gpus_per_worker


# ---------------------------------------------------------------------------- traces
def read_job_trace(path: str | Path) -> list[JobSpec]:
    """Jobs from a YAML JobTrace or a CSV (see the module docstring)."""
    path = Path(path)
    jobs = _read_csv(path) if path.suffix.lower() == ".csv" else _read_yaml(path)
    if not jobs:
        raise SpecError("no jobs in the trace", file=str(path))
    names = [j.name for j in jobs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise SpecError(f"duplicate job name {dup!r}", file=str(path))
    return sorted(jobs, key=lambda j: (j.submit_time, j.name))


def _read_yaml(path: Path) -> list[JobSpec]:
    jobs = []
    for doc in document_fields(path):
        if doc.get("kind").value != "JobTrace":
            raise doc.get("kind").error(f"expected kind JobTrace, got {doc.get('kind').value!r}")
        for i, f in enumerate(doc.require("spec").get("jobs").items()):
            cpu = f.get("cpu")
            mem = f.get("memory")
            jobs.append(JobSpec(
                name=f.get("name").string(f"job-{i}"), submit_time=f.get("submitTime").number(0.0, minimum=0),
                workers=f.require("workers").integer(minimum=1), gpus_per_worker=f.get("gpusPerWorker").integer(1, minimum=0),
                duration=f.require("duration").number(minimum=0),
                cpu_milli=cpu.convert(quantity.cpu_to_milli, "a CPU quantity") if cpu.value is not None else 1000,
                memory_mib=mem.convert(quantity.memory_to_mib, "a memory quantity") if mem.value is not None else 4096))
    return jobs


def _read_csv(path: Path) -> list[JobSpec]:
    required = ("name", "submit_time", "workers", "gpus_per_worker", "duration")
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    jobs = []
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecError(f"missing column(s) {', '.join(missing)} (expected {','.join(required)})",
                            file=str(path), line=1)
        for row in reader:
            line = reader.line_num

            def num(col, kind=float, minimum=0, default=None):
                raw = (row.get(col) or "").strip()
                if not raw and default is not None:
                    return default
                try:
                    value = kind(raw)
                except ValueError:
                    raise SpecError(f"expected {'an integer' if kind is int else 'a number'}, got {raw!r}",
                                    file=str(path), line=line, field=col) from None
                if value < minimum:
                    raise SpecError(f"must be >= {minimum}, got {raw}", file=str(path), line=line, field=col)
                return value
            jobs.append(JobSpec(row["name"].strip() or f"job-{line}", num("submit_time"), num("workers", int, 1),
                                num("gpus_per_worker", int), num("duration"),
                                num("cpu_milli", int, default=1000), num("memory_mib", int, default=4096)))
    return jobs


# ---------------------------------------------------------------------------- the run
@dataclass
class JobState:
    spec: JobSpec
    incarnation: int = 0
    pods: list[Pod] = field(default_factory=list)
    bound: int = 0
    running_since: float | None = None
    first_start: float | None = None
    finish: float | None = None
    attained: float = 0.0  # GPU-seconds
    done_work: float = 0.0  # seconds of the duration already run
    preemptions: int = 0


@dataclass
class JobsResult:
    queue: str
    policy: str
    seed: int
    jobs: int
    finished: int
    never_ran: int
    jct: dict[str, float | None]
    mean_jct: float | None
    queueing_delay: dict[str, float | None]
    mean_queueing_delay: float | None
    makespan: float
    mean_utilisation: float  # %
    preemptions: int
    utilisation_times: list[float]
    utilisation_series: list[float]
    per_job: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def queue_priority(queue: str, job: JobState, thresholds: Sequence[float]) -> int:
    if queue == "fifo":
        return 0
    if queue == "sjf":
        return -int(math.ceil(job.spec.duration))
    if queue == "las":
        return -int(np.searchsorted(np.asarray(thresholds), job.attained, side="right"))
    raise SpecError(f"unknown queue policy {queue!r} (expected one of {', '.join(QUEUE_POLICIES)})",
                    field="--queue")


def job_profile(base: str | ProfileConfig, queue: str) -> ProfileConfig:
    profile = builtin_profile(base) if isinstance(base, str) else base
    profile = dataclasses.replace(profile, percentage_of_nodes_to_score=profile.percentage_of_nodes_to_score or 100)
    return with_gang(profile, preemption=(queue == "las"))


class JobReplay:
    def __init__(self, nodes: Sequence[Node], jobs: Sequence[JobSpec], queue: str = "fifo",
                 policy: str | ProfileConfig = "binpack", seed: int = 0,
                 las_thresholds: Sequence[float] = DEFAULT_LAS_THRESHOLDS, timeout: float = 300.0):
        if queue not in QUEUE_POLICIES:
            raise SpecError(f"unknown queue policy {queue!r} (expected one of {', '.join(QUEUE_POLICIES)})",
                            field="--queue")
        self.queue, self.thresholds, self.timeout = queue, tuple(sorted(las_thresholds)), timeout
        self.loop = EventLoop()
        self.cluster = ClusterState(nodes)
        self.scheduler = Scheduler(self.cluster, [job_profile(policy, queue)], seed=seed, clock=self.loop.clock)
        self.scheduler.on_bound.append(self._bound)
        self.scheduler.on_evicted.append(self._evicted)
        self.jobs = {j.name: JobState(j) for j in jobs}
        self.by_uid: dict[str, JobState] = {}
        self.world_events = 0
        self.pass_times: set[float] = set()
        self.idle_passes = 0
        self.series_times: list[float] = []
        self.series_values: list[float] = []
        self.preemptions = 0
        total_gpus = int(self.cluster.gpu_count.sum())
        self.never_fits = {j.name for j in jobs if j.gpus > total_gpus}
        for j in jobs:
            if j.name not in self.never_fits:
                self._world(j.submit_time, lambda js=self.jobs[j.name]: self._submit(js), ARRIVAL)

    # ------------------------------------------------------------------ events
    def _world(self, when: float, action, priority: int) -> None:
        self.world_events += 1

        def run():
            self.world_events -= 1
            action()
        self.loop.at(when, run, priority)

    def _request_pass(self, when: float) -> None:
        if when not in self.pass_times:
            self.pass_times.add(when)
            self.loop.at(when, lambda: self._pass(when), SCHEDULING_PASS)

    def _submit(self, job: JobState) -> None:
        spec = job.spec
        key = f"default/{spec.name}"
        if job.incarnation == 0:
            self.scheduler.add_pod_group(PodGroup(spec.name, spec.workers, schedule_timeout_seconds=self.timeout))
        self.scheduler.handle.group_first_seen[key] = spec.submit_time  # FIFO by submit, also after preemption
        priority = queue_priority(self.queue, job, self.thresholds)
        job.pods = [Pod(f"{spec.name}-r{job.incarnation}-{w}", cpu_milli=spec.cpu_milli, memory_mib=spec.memory_mib,
                        num_gpu=spec.gpus_per_worker, priority=priority, pod_group=spec.name,
                        uid=f"{spec.name}-r{job.incarnation}-{w}")
                    for w in range(spec.workers)]
        job.bound = 0
        for p in job.pods:
            self.by_uid[p.uid] = job
            self.scheduler.add(p)
        self._request_pass(self.loop.now)

    def _bound(self, pod: Pod, node: str) -> None:
        job = self.by_uid[pod.uid]
        job.bound += 1
        if job.bound < job.spec.workers:
            return
        now = self.loop.now
        job.running_since = now
        if job.first_start is None:
            job.first_start = now
        incarnation = job.incarnation
        self._world(now + (job.spec.duration - job.done_work), lambda: self._complete(job, incarnation), DEPARTURE)
        if self.queue == "las":
            for threshold in self.thresholds:
                if job.attained < threshold and job.spec.gpus:
                    at = now + (threshold - job.attained) / job.spec.gpus
                    if at < now + job.spec.duration - job.done_work:
                        self.loop.at(at, lambda: self._demote(job, incarnation), DEPARTURE)

    def _account(self, job: JobState) -> None:
        now = self.loop.now
        if job.running_since is not None:
            ran = now - job.running_since
            job.done_work += ran
            job.attained += ran * job.spec.gpus
            job.running_since = now

    def _complete(self, job: JobState, incarnation: int) -> None:
        if incarnation != job.incarnation or job.running_since is None:
            return  # preempted meanwhile
        self._account(job)
        job.running_since = None
        job.finish = self.loop.now
        for p in job.pods:
            self.scheduler.pod_deleted(p)
        self._record()
        self._request_pass(self.loop.now)

    def _demote(self, job: JobState, incarnation: int) -> None:
        if incarnation != job.incarnation or job.running_since is None:
            return
        self._account(job)
        priority = queue_priority(self.queue, job, self.thresholds)
        for p in job.pods:
            p.priority = priority  # bound pods are out of the queue's heap: safe to change
        self.scheduler.cluster_changed("JobDemoted")
        self._request_pass(self.loop.now)

    def _evicted(self, pod: Pod, message: str) -> None:
        job = self.by_uid.get(pod.uid)
        if job is None or pod not in job.pods:
            return
        self._account(job)
        job.running_since = None
        job.preemptions += 1
        self.preemptions += 1
        old = job.pods
        job.incarnation += 1
        for p in old:
            self.scheduler.pod_deleted(p)
        self._submit(job)

    def _pass(self, when: float) -> None:
        self.pass_times.discard(when)
        before = self.scheduler.stats.scheduled
        while self.scheduler.schedule_one() is not None:
            pass
        self._record()
        progressed = self.scheduler.stats.scheduled > before
        self.idle_passes = 0 if (progressed or self.world_events) else self.idle_passes + 1
        pending = any(j.finish is None and j.running_since is None for n, j in self.jobs.items()
                      if n not in self.never_fits)
        if not pending or self.idle_passes > IDLE_PASSES:
            return
        queue = self.scheduler.queue
        wake = [t for t in [queue.next_backoff_expiry()] if t is not None]
        wake += [w.deadline for w in self.scheduler.handle.waiting_pods.values()]
        if queue.unschedulable:
            wake.append(min(qp.unschedulable_since for qp in queue.unschedulable.values())
                        + queue.max_unschedulable + 1.0)
        wake = [t for t in wake if t > self.loop.now]
        if wake:
            self._request_pass(min(wake))

    def _record(self) -> None:
        value = 100 * allocation_ratio(self.cluster)
        if self.series_times and self.series_times[-1] == self.loop.now:
            self.series_values[-1] = value
        elif not self.series_values or self.series_values[-1] != value:
            self.series_times.append(self.loop.now)
            self.series_values.append(value)

    # ------------------------------------------------------------------ result
    def run(self, policy_label: str = "", seed: int = 0) -> JobsResult:
        started = time.perf_counter()
        self.loop.run()
        finished = [j for j in self.jobs.values() if j.finish is not None]
        jct = [j.finish - j.spec.submit_time for j in finished]
        delays = [j.first_start - j.spec.submit_time for j in self.jobs.values() if j.first_start is not None]
        first = min((j.spec.submit_time for j in self.jobs.values()), default=0.0)
        end = max([j.finish for j in finished] + [self.series_times[-1] if self.series_times else first])
        times = np.array(self.series_times + [end])
        values = np.array(self.series_values)
        span = end - first
        mean_util = float((values * np.diff(times)).sum() / span) if span > 0 and len(values) else 0.0
        per_job = [{"name": j.spec.name, "submit": j.spec.submit_time, "workers": j.spec.workers,
                    "gpus_per_worker": j.spec.gpus_per_worker, "duration": j.spec.duration,
                    "first_start": j.first_start, "finish": j.finish, "preemptions": j.preemptions,
                    "jct": None if j.finish is None else j.finish - j.spec.submit_time}
                   for j in self.jobs.values()]
        return JobsResult(self.queue, policy_label, seed, len(self.jobs), len(finished),
                          sum(1 for j in self.jobs.values() if j.first_start is None), delay_percentiles(jct),
                          float(np.mean(jct)) if jct else None, delay_percentiles(delays),
                          float(np.mean(delays)) if delays else None, float(end - first), mean_util,
                          self.preemptions, self.series_times, self.series_values, per_job,
                          time.perf_counter() - started)


def run_jobs(nodes: Sequence[Node], jobs: Sequence[JobSpec], queue: str, policy: str = "binpack", seed: int = 0,
             las_thresholds: Sequence[float] = DEFAULT_LAS_THRESHOLDS) -> JobsResult:
    return JobReplay(nodes, jobs, queue, policy, seed, las_thresholds).run(policy, seed)


# ---------------------------------------------------------------------------- outputs
def plot_jobs(results: list[JobsResult], path: Path, title: str = "") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_util, ax_jct) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    end = max((r.utilisation_times[-1] for r in results if r.utilisation_times), default=1.0)
    scale, unit = (3600, "hours") if end > 3 * 3600 else (60, "minutes") if end > 600 else (1, "s")
    for r in results:
        t = np.array(r.utilisation_times + [r.makespan + (r.utilisation_times[0] if r.utilisation_times else 0)])
        v = np.array(r.utilisation_series + r.utilisation_series[-1:])
        ax_util.step(t / scale, v, where="post", label=f"{r.queue} (mean {r.mean_utilisation:.1f}%)")
        jct = np.sort([j["jct"] for j in r.per_job if j["jct"] is not None])
        if len(jct):
            ax_jct.step(jct / scale, np.arange(1, len(jct) + 1) / len(jct), where="post",
                        label=f"{r.queue} (mean {np.mean(jct) / scale:.2f} {unit})")
    ax_util.set_xlabel(f"virtual time ({unit})")
    ax_util.set_ylabel("GPU utilisation (% of GPUs allocated)")
    ax_util.set_ylim(0, 105)
    ax_jct.set_xlabel(f"job completion time ({unit})")
    ax_jct.set_ylabel("fraction of jobs")
    ax_jct.set_xscale("log")
    for ax in (ax_util, ax_jct):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_jobs_json(results: list[JobsResult], path: Path, meta: dict) -> Path:
    doc = {"experiment": meta, "runs": [dataclasses.asdict(r) for r in results]}
    path.write_text(json.dumps(doc, indent=1))
    return path
