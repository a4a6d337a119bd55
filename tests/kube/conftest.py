"""Fixtures for the Kubernetes backend tests: the wire server, node and pod objects, a scheduler on it."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from gpufleet.cluster import GPU_INDEX_ANNOTATION
from gpufleet.cluster.quantity import count, cpu_to_milli, memory_to_mib
from gpufleet.kube.cli import client_factory
from gpufleet.kube.runner import KubeOptions, KubeScheduler
from gpufleet.scheduler import builtin_profile

from .fake_apiserver import FakeApiServer

SCHEDULER_NAME = "gpufleet-scheduler"


@pytest.fixture
def server():
    srv = FakeApiServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def kubeconfig(server, tmp_path):
    return server.kubeconfig(tmp_path / "kubeconfig")


def node_obj(name: str, cpu="32", memory="128Gi", gpus=8, model="NVIDIA-A100-SXM4-40GB", zone="zone-a",
             extra: dict | None = None) -> dict:
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    allocatable.update(extra or {})
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}
    if gpus:
        labels.update({"nvidia.com/gpu.product": model, "nvidia.com/gpu.workload.config": "container"})
    return {"metadata": {"name": name, "labels": labels}, "spec": {},
            "status": {"allocatable": allocatable, "capacity": dict(allocatable),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod_obj(name: str, cpu="1", memory="2Gi", gpus=0, gpu_milli=0, scheduler=SCHEDULER_NAME,
            namespace="default", node_name=None, annotations=None, extra: dict | None = None) -> dict:
    requests = {"cpu": cpu, "memory": memory}
    limits = {}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    if gpu_milli:
        requests["gpufleet.io/gpu-milli"] = str(gpu_milli)
        limits["gpufleet.io/gpu-milli"] = str(gpu_milli)
    requests.update(extra or {})
    limits.update(extra or {})
    spec = {"schedulerName": scheduler, "containers": [{"name": "main", "image": "busybox",
                                                        "resources": {"requests": requests, "limits": limits}}]}
    if node_name:
        spec["nodeName"] = node_name
    meta = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"metadata": meta, "spec": spec, "status": {"phase": "Pending"}}


def make_scheduler(kubeconfig: str, identity: str = "replica-a", **overrides) -> KubeScheduler:
    profile = builtin_profile("binpack")
    profile.scheduler_name = SCHEDULER_NAME
    options = KubeOptions(identity=identity, lease_namespace="kube-system", lease_duration_s=1.5,
                          renew_deadline_s=1.0, retry_period_s=0.1, metrics_address="127.0.0.1", metrics_port=0,
                          watch_timeout_s=5, informer_backoff_s=0.05)
    for k, v in overrides.items():
        setattr(options, k, v)
    return KubeScheduler(client_factory(kubeconfig), [profile], options)


def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def bound_count(server: FakeApiServer, scheduler: str = SCHEDULER_NAME) -> int:
    return sum(1 for p in server.pods() if p["spec"].get("nodeName") and p["spec"]["schedulerName"] == scheduler)


def assert_capacity_respected(server: FakeApiServer) -> None:
    """Server-side truth: per node, bound pods' requests fit allocatable; no GPU shared beyond 1000 milli."""
    nodes = {n["metadata"]["name"]: n for n in server.nodes()}
    used_cpu, used_mem, used_pods = Counter(), Counter(), Counter()
    whole_gpus, gpu_milli = Counter(), Counter()
    for p in server.pods():
        node = p["spec"].get("nodeName")
        if not node or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        req = p["spec"]["containers"][0]["resources"]
        requests = dict(req.get("limits", {}), **req.get("requests", {}))
        used_cpu[node] += cpu_to_milli(requests.get("cpu", 0))
        used_mem[node] += memory_to_mib(requests.get("memory", 0))
        used_pods[node] += 1
        gpus = count(requests.get("nvidia.com/gpu", 0))
        milli = count(requests.get("gpufleet.io/gpu-milli", 0))
        if milli and milli < 1000:
            index = p["metadata"]["annotations"][GPU_INDEX_ANNOTATION]
            gpu_milli[(node, int(index))] += milli
        else:
            whole_gpus[node] += gpus
    for name, n in nodes.items():
        alloc = n["status"]["allocatable"]
        assert used_cpu[name] <= cpu_to_milli(alloc["cpu"]), name
        assert used_mem[name] <= memory_to_mib(alloc["memory"]), name
        assert used_pods[name] <= count(alloc["pods"]), name
        shared = {g for (node, g) in gpu_milli if node == name}
        assert whole_gpus[name] + len(shared) <= count(alloc.get("nvidia.com/gpu", 0)), name
    assert all(v <= 1000 for v in gpu_milli.values()), gpu_milli


@pytest.fixture(autouse=True)
def no_threads_left_behind():
    yield
    ours = ("reflector-", "scheduling-loop", "leader-election", "event-recorder", "metrics-server",
            "fake-apiserver")
    import threading
    assert wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith(ours)], 5), \
        [t.name for t in threading.enumerate()]
