"""KubeScheduler: gpufleet's Scheduler run against a Kubernetes API server, as a secondary scheduler.

kube-scheduler's two loops (pkg/scheduler/scheduler.go, eventhandlers.go, schedule_one.go): informers
(list and watch of Nodes and Pods, :mod:`.informer`) feed a cache and the queue; the scheduling loop pops a
pod, runs the profile's plugins over the ClusterState and binds. Here the informer threads only enqueue
events; one loop thread applies them (:class:`.cache.ClusterSync`) and schedules, so the ClusterState
and the queue have one writer. The loop waits until both informers have listed once (WaitForCacheSync)
and while this replica does not hold the Lease (:mod:`.leader`).

After a failed bind kube-scheduler looks at its informer's copy of the pod (handleSchedulingFailure): a
pod that already has a node is not re-queued (it is forgotten; the watch will count it where it is); any
other pod goes back to the queue with backoff. So a bind answered 409 because someone else bound the pod
is dropped, and a 409 for a pod that is still unbound is retried.

PodGroups (the gang seam): when a profile enables a plugin that reads PodGroups (Coscheduling, or any
plugin class with ``uses_pod_groups = True``), a third informer watches ``scheduling.x-k8s.io/v1alpha1``
podgroups and hands them to the scheduler as gpufleet :class:`~gpufleet.cluster.PodGroup` objects
(``Scheduler.add_pod_group`` / ``remove_pod_group``, the calls the simulator makes too). The plugin
never sees Kubernetes.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from kubernetes import client

from ..cluster import GPU_INDEX_ANNOTATION, ClusterState, GpufleetError, Pod, PodGroup
from ..cluster.spec import Field, parse_pod_group
from ..scheduler import ProfileConfig, Scheduler
from .binder import KubeBinder
from .cache import SYNC, ClusterSync
from .convert import bound_node
from .events import EventRecorder
from .informer import Reflector
from .leader import LeaseElector
from .metrics import MetricsServer, SchedulerMetrics

log = logging.getLogger("gpufleet.kube")

POD_GROUP_PLUGINS = ("Coscheduling",)  # plugins that read handle.pod_groups
EVICTING_PLUGINS = ("PriorityPreemption",)  # plugins that evict pods (the backend deletes them)
POD_GROUP_API = ("scheduling.x-k8s.io", "v1alpha1", "podgroups")


def default_identity() -> str:
    """client-go's default leader-election id: the hostname plus a unique suffix."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass
class KubeOptions:
    identity: str = ""
    leader_elect: bool = True
    lease_namespace: str = "gpufleet-system"
    lease_name: str = "gpufleet-scheduler"
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    metrics_address: str = "0.0.0.0"
    metrics_port: int | None = 10259  # None: no metrics server
    watch_timeout_s: int = 300
    informer_backoff_s: float = 0.8
    bind_workers: int = 4  # 0: bind on the scheduling loop
    seed: int = 0


def uses_pod_groups(plugin_class) -> bool:
    return plugin_class.name in POD_GROUP_PLUGINS or bool(getattr(plugin_class, "uses_pod_groups", False))


def evicts(plugin_class) -> bool:
    return plugin_class.name in EVICTING_PLUGINS or bool(getattr(plugin_class, "evicts_pods", False))


def needs_pod_delete(scheduler: Scheduler) -> bool:
    """Whether a profile enables a plugin that evicts pods (then victims are deleted through the API)."""
    return any(evicts(type(entry.plugin)) for fw in scheduler.frameworks.values()
               for entries in fw.profile.points.values() for entry in entries)


def needs_pod_groups(scheduler: Scheduler) -> bool:
    """Whether a profile enables a plugin that reads PodGroups (then podgroups are watched)."""
    return any(uses_pod_groups(type(entry.plugin)) for fw in scheduler.frameworks.values()
               for entries in fw.profile.points.values() for entry in entries)


class KubeScheduler:
    """Start with :meth:`start`, stop with :meth:`stop`; ``make_client()`` builds one ApiClient per thread."""

    def __init__(self, make_client: Callable[[], client.ApiClient], profiles: list[ProfileConfig],
                 options: KubeOptions | None = None):
        self.options = options or KubeOptions()
        self.identity = self.options.identity or default_identity()
        self._make_client = make_client
        self.cluster = ClusterState()
        self.binder = KubeBinder(self._client(), self.cluster, workers=self.options.bind_workers,
                                 on_bound=self._bound, on_failure=self._bind_failed)
        self._retries: list[tuple[float, Pod]] = []
        self._bind_failures: dict[str, int] = {}
        self.scheduler = Scheduler(self.cluster, profiles, seed=self.options.seed, binder=self.binder)
        self.sync = ClusterSync(self.scheduler)
        # Preemption victims are deleted through the API (kube-scheduler's preemption: DELETE of each victim
        # with its uid as a precondition, graceful); the ClusterState forgets them at once, and the watch's
        # DELETED event for a pod the cache no longer holds is a no-op.
        self._core = client.CoreV1Api(self._client())
        self.scheduler.on_evicted.append(self._delete_victim)
        self.metrics = SchedulerMetrics()
        self.events = EventRecorder(self._client(), self.identity)
        self.inbox: queue.Queue = queue.Queue()
        self.lost_leadership = threading.Event()
        self._stop = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, name="scheduling-loop", daemon=True)
        self._loop_alive = False
        core = client.CoreV1Api(self._client())
        sink = self._enqueue
        common = dict(watch_timeout_s=self.options.watch_timeout_s, initial_backoff_s=self.options.informer_backoff_s)
        self.reflectors = [Reflector("nodes", core.list_node, sink, **common),
                           Reflector("pods", core.list_pod_for_all_namespaces, sink, **common)]
        self.pod_groups: dict[str, PodGroup] = {}
        if needs_pod_groups(self.scheduler):
            custom = client.CustomObjectsApi(self._client())
            group, version, plural = POD_GROUP_API

            def list_groups(**kwargs):
                return custom.list_cluster_custom_object(group, version, plural, **kwargs)
            self.reflectors.append(Reflector("podgroups", list_groups, sink, **common))
        self.elector: LeaseElector | None = None
        if self.options.leader_elect:
            self.elector = LeaseElector(
                self._client(), self.options.lease_namespace, self.options.lease_name, self.identity,
                lease_duration_s=self.options.lease_duration_s, renew_deadline_s=self.options.renew_deadline_s,
                retry_period_s=self.options.retry_period_s,
                on_started=lambda: self.metrics.leader.set(1), on_stopped=self._leadership_stopped)
        else:
            self.metrics.leader.set(1)
        self.metrics_server: MetricsServer | None = None
        if self.options.metrics_port is not None:
            self.metrics_server = MetricsServer(self.metrics, self.healthy, self.options.metrics_address,
                                                self.options.metrics_port)

    def _client(self) -> client.ApiClient:
        api = self._make_client()
        api.user_agent = f"gpufleet-scheduler/{self.identity}"
        return api

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "KubeScheduler":
        if self.metrics_server is not None:
            self.metrics_server.start()
        self.events.start()
        for r in self.reflectors:
            r.start()
        if self.elector is not None:
            self.elector.start()
        self._loop_thread.start()
        return self

    def stop(self, release_lease: bool = True) -> None:
        """Stop scheduling, then the watches, the lease (released unless told not to), events and metrics."""
        self._stop.set()
        self.inbox.put(None)
        self._loop_thread.join(30)
        self.binder.stop()
        for r in self.reflectors:
            r.stop()
        if self.elector is not None:
            self.elector.stop(release=release_lease)
        self.events.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()

    def healthy(self) -> bool:
        return self._loop_alive and not self._stop.is_set()

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    @property
    def synced(self) -> bool:
        return {"nodes", "pods"} <= self.sync.synced

    def _leadership_stopped(self) -> None:
        self.metrics.leader.set(0)
        self.lost_leadership.set()

    # ------------------------------------------------------------------ the loop
    def _enqueue(self, kind: str, etype: str, obj) -> None:
        self.inbox.put((kind, etype, obj))

    def _drain(self, wait_s: float) -> None:
        batch = []
        try:
            item = self.inbox.get(timeout=wait_s) if wait_s > 0 else self.inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            batch.append(item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
        groups = [b for b in batch if b[0] == "podgroups"]
        if groups:
            self._apply_pod_groups(groups)
        self.sync.apply(b for b in batch if b[0] in ("nodes", "pods"))
        for _, pod, (node_name, exc) in (b for b in batch if b[0] == "bind-failed"):
            self._handle_bind_failure(pod, node_name, exc)
        if self._retries:
            self._requeue_due()

    def _loop(self) -> None:
        self._loop_alive = True
        last_gauge = 0.0
        try:
            while not self._stop.is_set():
                if self.lost_leadership.is_set():
                    log.error("leadership lost: the scheduling loop stops (restart to stand for election again)")
                    return
                ready = self.synced and self.is_leader
                self._drain(0.0 if ready else 0.1)
                if self._retries:
                    self._requeue_due()
                now = time.monotonic()
                if now - last_gauge > 0.5:
                    self.metrics.set_pending(self.scheduler.queue.pending())
                    last_gauge = now
                if not ready or self._stop.is_set():
                    continue
                started = time.perf_counter()
                outcome = self.scheduler.schedule_one()
                if outcome is None:
                    self._post_events()
                    self._drain(0.05)
                    continue
                elapsed = time.perf_counter() - started
                if outcome.status == "error" and self.sync.bound_in_cache(outcome.pod):
                    # handleSchedulingFailure: already bound (or gone) in the informer cache: forget it.
                    self.scheduler.queue.delete(outcome.pod)
                self.metrics.observe(outcome.status, outcome.pod.scheduler_name, elapsed)
                self._post_events()
        except Exception:  # noqa: BLE001 - a bug: log it, /healthz turns 500, the pod restarts
            log.exception("scheduling loop crashed")
        finally:
            self._loop_alive = False

    def _post_events(self) -> None:
        events = self.scheduler.handle.events
        if events:
            for reason, pod, message in events:
                if reason == "Scheduled" and self.options.bind_workers > 0:
                    continue  # recorded by the binder once the API has accepted the binding
                self.events.record(reason, pod, message)
            events.clear()

    # ------------------------------------------------------------------ the binding cycle's results
    def _delete_victim(self, pod: Pod, message: str) -> None:
        body = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=pod.uid))
        try:
            self._core.delete_namespaced_pod(pod.name, pod.namespace, body=body)
        except client.ApiException as exc:
            if exc.status not in (404, 409):  # already gone, or a new pod with the same name: nothing to do
                log.warning("could not delete preemption victim %s: %s", pod.key, exc.reason)

    def _bound(self, pod: Pod, node_name: str) -> None:
        self.events.record("Scheduled", pod, f"Successfully assigned {pod.key} to {node_name}")

    def _bind_failed(self, pod: Pod, node_name: str, exc: Exception) -> None:
        self.inbox.put(("bind-failed", pod, (node_name, exc)))

    def _handle_bind_failure(self, pod: Pod, node_name: str, exc: Exception) -> None:
        """kube's handleBindingCycleError then handleSchedulingFailure, on the loop thread."""
        placement = self.cluster.placements.get(pod.uid)
        cached = self.sync.pods.get(pod.uid)
        if placement is not None and placement.node_name == node_name and bound_node(cached or {}) != node_name:
            self.cluster.release(pod.uid)  # forget the assumed pod
        self.scheduler.queue.move_all_to_active_or_backoff("AssignedPodDelete")
        message = f"binding rejected: {exc}".replace("\n", " ")
        self.events.record("FailedScheduling", pod, message)
        self.metrics.observe("error", pod.scheduler_name, 0.0)
        if self.sync.bound_in_cache(pod):
            return  # already bound (or deleted): forget it, the watch counts it where it is
        pod.node_name, pod.gpu_indices = None, ()
        pod.annotations.pop(GPU_INDEX_ANNOTATION, None)
        failures = self._bind_failures.get(pod.uid, 0) + 1
        self._bind_failures[pod.uid] = failures
        backoff = self.scheduler.queue.backoff_duration(failures)
        self._retries.append((time.monotonic() + backoff, pod))

    def _requeue_due(self) -> None:
        now = time.monotonic()
        due = [p for t, p in self._retries if t <= now]
        self._retries = [(t, p) for t, p in self._retries if t > now]
        for pod in due:
            if not self.sync.bound_in_cache(pod) and pod.uid not in self.cluster.placements:
                self.scheduler.add(pod)

    def _apply_pod_groups(self, batch: list) -> None:
        for _, etype, obj in batch:
            if etype == SYNC:
                listed = {f"{(o.get('metadata') or {}).get('namespace', 'default')}/"
                          f"{(o.get('metadata') or {}).get('name', '')}" for o in obj}
                for key in [k for k in self.pod_groups if k not in listed]:
                    self.scheduler.remove_pod_group(self.pod_groups.pop(key))
            for o in (obj if etype == SYNC else [obj]):
                meta = o.get("metadata") or {}
                key = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
                if etype == "DELETED":
                    if key in self.pod_groups:
                        self.scheduler.remove_pod_group(self.pod_groups.pop(key))
                    continue
                try:
                    group = parse_pod_group(Field(o, "", f"podgroup {key}", None))
                except GpufleetError as exc:
                    log.warning("ignoring podgroup %s: %s", key, exc)
                    continue
                if self.pod_groups.get(key) != group:
                    self.pod_groups[key] = group
                    self.scheduler.add_pod_group(group)

    # ------------------------------------------------------------------ helpers for callers and tests
    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval_s)
        return predicate()
