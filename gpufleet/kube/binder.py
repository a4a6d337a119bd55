"""The Kubernetes binder the scheduler's DefaultBinder calls: annotate the GPUs, then POST pods/binding.

Rules: kube-scheduler's DefaultBinder (pkg/scheduler/framework/plugins/defaultbinder) creates a
``v1 Binding`` for the pod (metadata.uid = the pod's uid, a precondition the API server checks) with
``target`` the Node; the API server sets ``spec.nodeName`` or answers 409 Conflict when the pod is already
assigned. A pod sharing a GPU (gpufleet.io/gpu-milli below 1000) is first patched (JSON merge patch) with
the ``gpufleet.io/gpu-index`` annotation naming the GPU it got, so that whatever runs it on the node and a
restarted scheduler both know which GPU it shares. The GPUs are the ones the scheduler assumed into the
ClusterState in Reserve.

Binding runs off the scheduling loop, as kube-scheduler's binding cycle runs in its own goroutine
(schedule_one.go: the pod stays assumed while ``bindingCycle`` runs): ``KubeBinder`` hands the API calls
to a small pool of worker threads and returns at once; a success records the ``Scheduled`` Event, a
failure is handed back to the loop (``on_failure``), which forgets the assumed pod and re-queues or drops
it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from kubernetes import client

from ..cluster import GPU_INDEX_ANNOTATION, ClusterState, Pod


class KubeBinder:
    def __init__(self, api_client: client.ApiClient, cluster: ClusterState, request_timeout_s: float = 30.0,
                 workers: int = 0, on_bound: Callable[[Pod, str], None] | None = None,
                 on_failure: Callable[[Pod, str, Exception], None] | None = None):
        """``workers`` = 0 binds synchronously (errors raise to DefaultBinder); > 0 binds in that many
        threads and reports through ``on_bound`` / ``on_failure`` (called from a worker thread)."""
        self.api = client.CoreV1Api(api_client)
        self.cluster = cluster
        self.request_timeout_s = request_timeout_s
        self.on_bound, self.on_failure = on_bound, on_failure
        self.conflicts = 0
        self.bound = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="binder") if workers > 0 else None

    def gpu_indices(self, pod: Pod) -> tuple[int, ...]:
        placement = self.cluster.placements.get(pod.uid)
        return placement.gpu_indices if placement is not None else tuple(pod.gpu_indices)

    def stop(self) -> None:
        """Wait for the binds in flight and drop the queued ones: a stopped scheduler (lost lease, crash,
        shutdown) sends no more bindings; those pods stay unbound in the API for the next leader."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __call__(self, pod: Pod, node_name: str) -> None:
        gpus = self.gpu_indices(pod)  # read here, on the loop thread that owns the ClusterState
        if self._pool is None:
            self.bind(pod, node_name, gpus)
            return
        self._pool.submit(self._bind_reporting, pod, node_name, gpus)

    def _bind_reporting(self, pod: Pod, node_name: str, gpus: tuple[int, ...]) -> None:
        try:
            self.bind(pod, node_name, gpus)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the loop
            if self.on_failure is not None:
                self.on_failure(pod, node_name, exc)
            return
        if self.on_bound is not None:
            self.on_bound(pod, node_name)

    def bind(self, pod: Pod, node_name: str, gpus: tuple[int, ...]) -> None:
        if pod.is_fractional and gpus:
            patch = {"metadata": {"annotations": {GPU_INDEX_ANNOTATION: ",".join(str(g) for g in gpus)}}}
            self.api.patch_namespaced_pod(pod.name, pod.namespace, patch,
                                          _content_type="application/merge-patch+json", _preload_content=False,
                                          _request_timeout=self.request_timeout_s).data
        binding = client.V1Binding(
            metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace, uid=pod.uid),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=node_name))
        try:
            # _preload_content=False: the API server answers a Status, not the Binding the generated
            # method would try to deserialise.
            self.api.create_namespaced_pod_binding(pod.name, pod.namespace, binding, _preload_content=False,
                                                   _request_timeout=self.request_timeout_s).data
        except client.ApiException as exc:
            if exc.status == 409:
                with self._lock:
                    self.conflicts += 1
            raise
        with self._lock:
            self.bound += 1
