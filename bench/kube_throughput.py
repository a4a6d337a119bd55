"""End-to-end Kubernetes throughput: pods/s through the real ``kubernetes`` client and the wire server.

The wire server (tests/kube/fake_apiserver.py, the one the tests use) runs in a second process with
1,000 GPU nodes (8 GPUs each) and a backlog of pods for ``gpufleet-scheduler``: whole GPUs, GPU shares
(patched with ``gpufleet.io/gpu-index`` before binding) and CPU-only pods. ``KubeScheduler`` lists and
watches them, schedules with the binpack profile and binds each pod through pods/binding, recording an
Event for each. Timed: from the first list being applied to the last pod bound. Baseline in the same run:
the same profile on the same cluster in-process, no API (binder is a no-op). Target: >= 200 pods/s.
Run: ``.venv/bin/python bench/kube_throughput.py [PODS]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpufleet.cluster import ClusterState  # noqa: E402
from gpufleet.kube.convert import node_from_k8s, pod_from_k8s  # noqa: E402
from gpufleet.kube.cli import client_factory  # noqa: E402
from gpufleet.kube.runner import KubeOptions, KubeScheduler  # noqa: E402
from gpufleet.scheduler import Scheduler, builtin_profile  # noqa: E402
from tests.kube.conftest import node_obj, pod_obj  # noqa: E402

NODES = 1000
SCHEDULER_NAME = "gpufleet-scheduler"


def workload(n: int) -> list[dict]:
    shapes = [dict(cpu="2", memory="8Gi", gpus=1), dict(cpu="1", memory="4Gi", gpus=1, gpu_milli=500),
              dict(cpu="4", memory="16Gi", gpus=2), dict(cpu="500m", memory="1Gi")]
    return [pod_obj(f"bench-{i}", **shapes[i % len(shapes)]) for i in range(n)]


def post(url: str, obj: dict) -> None:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def profile():
    p = builtin_profile("binpack")
    p.scheduler_name = SCHEDULER_NAME
    return p


def baseline(nodes: list[dict], pods: list[dict]) -> float:
    cluster = ClusterState([node_from_k8s(n) for n in nodes])
    sched = Scheduler(cluster, [profile()], binder=lambda pod, node: None)
    for i, obj in enumerate(pods):
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["uid"] = f"uid-{i}"
        sched.add(pod_from_k8s(obj))
    start = time.perf_counter()
    sched.run_until_idle()
    elapsed = time.perf_counter() - start
    assert sched.stats.scheduled == len(pods)
    return len(pods) / elapsed


def through_the_wire(nodes: list[dict], pods: list[dict]) -> tuple[float, int]:
    server = subprocess.Popen([sys.executable, "-c", "from tests.kube.fake_apiserver import serve; serve()"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        for n in nodes:
            post(f"{url}/api/v1/nodes", n)
        for p in pods:
            post(f"{url}/api/v1/namespaces/default/pods", p)
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            _kubeconfig(url, kubeconfig)
            options = KubeOptions(identity="bench", leader_elect=False, metrics_port=None)
            sched = KubeScheduler(client_factory(str(kubeconfig)), [profile()], options)
            sched.start()
            try:
                while not sched.synced:
                    time.sleep(0.001)
                start = time.perf_counter()
                while sched.binder.bound < len(pods):
                    time.sleep(0.002)
                elapsed = time.perf_counter() - start
            finally:
                sched.stop()
        listed = json.loads(urllib.request.urlopen(f"{url}/api/v1/pods").read())["items"]
        bound = sum(1 for p in listed if p["spec"].get("nodeName"))
        return len(pods) / elapsed, bound
    finally:
        server.stdin.close()
        server.wait(30)


def _kubeconfig(url: str, path: Path) -> None:
    import yaml
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "bench", "cluster": {"server": url}}],
        "users": [{"name": "bench", "user": {"token": "bench"}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}]}))


def main() -> int:
    n_pods = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    nodes = [node_obj(f"gpu-{i:04d}", zone=f"zone-{i % 4}") for i in range(NODES)]
    pods = workload(n_pods)
    base = baseline(nodes, pods)
    wire, bound = through_the_wire(nodes, pods)
    print(f"kube throughput, {NODES} nodes, {n_pods} pods, binpack profile ({os.cpu_count()} CPUs)")
    print(f"  in-process, no API (baseline): {base:8.1f} pods/s")
    print(f"  through the wire server:       {wire:8.1f} pods/s  ({wire / base:.2f}x baseline; "
          f"target >= 200 pods/s: {'met' if wire >= 200 else 'NOT met'})")
    print(f"  pods bound according to the server: {bound}/{n_pods}")
    return 0 if bound == n_pods else 1


if __name__ == "__main__":
    sys.exit(main())
