"""Partitioned GPUs in the scheduler and the simulator: every pod lands only where its resource exists."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from gpufleet.cluster import ClusterState, Pod, load_cluster
from gpufleet.devices import configure_cluster, scheduler_nodes
from gpufleet.scheduler import Scheduler, builtin_profile
from gpufleet.scheduler.plugins.mig_placement import PLACEMENT_ANNOTATION, mig_slice_report
from gpufleet.sim.replay import run_replay

MIXED = """\
apiVersion: gpufleet.io/v1alpha1
kind: Cluster
metadata: {name: mixed}
spec:
  gpuOperator:
    sandboxWorkloads: {enabled: true, defaultWorkload: container}
    mig: {strategy: mixed}
    devicePlugin: {config: {configs: {ts4: {version: v1, sharing: {timeSlicing: {renameByDefault: true,
                   resources: [{name: nvidia.com/gpu, replicas: 4}]}}}}}}
  nodePools:
    - {name: t4, count: 2, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: T4}
    - {name: t4-shared, count: 1, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: T4, labels: {nvidia.com/device-plugin.config: ts4}}
    - {name: a100-static, count: 1, cpu: 64, memory: 256Gi, gpus: 2, gpuModel: A100-40GB, labels: {nvidia.com/mig.config: all-balanced}}
    - {name: h100-dynamic, count: 2, cpu: 64, memory: 256Gi, gpus: 2, gpuModel: H100-80GB, labels: {gpufleet.io/mig.dynamic: "true"}}
    - {name: a10-vgpu, count: 2, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: A10, labels: {nvidia.com/gpu.workload.config: vm-vgpu}}
    - {name: a10-pt, count: 1, cpu: 32, memory: 128Gi, gpus: 2, gpuModel: A10, labels: {nvidia.com/gpu.workload.config: vm-passthrough}}
"""

# What each kind of pod asks for: (num_gpu, extended resources).
ASKS = [
    (1, {}), (2, {}),
    (0, {"nvidia.com/gpu.shared": 1}),
    (0, {"nvidia.com/mig-1g.5gb": 1}), (0, {"nvidia.com/mig-3g.20gb": 1}),
    (0, {"nvidia.com/mig-1g.10gb": 1}), (0, {"nvidia.com/mig-3g.40gb": 1}), (0, {"nvidia.com/mig-7g.80gb": 1}),
    (0, {"nvidia.com/NVIDIA_A10-12Q": 1}), (0, {"nvidia.com/GA102GL_A10": 1}), (0, {}),
]


def cluster_file(tmp_path: Path) -> Path:
    p = tmp_path / "mixed.yaml"
    p.write_text(MIXED)
    return p


def build(tmp_path_factory):
    spec = load_cluster(cluster_file(tmp_path_factory.mktemp("c")))
    return configure_cluster(spec), scheduler_nodes(spec)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.integers(0, len(ASKS) - 1), min_size=1, max_size=40),
       policy=st.sampled_from(["default", "binpack", "spread"]))
def test_every_pod_lands_only_on_a_node_that_advertises_what_it_asks(tmp_path_factory, kinds, policy):
    devices, nodes = build(tmp_path_factory)
    by_name = {nd.node.name: nd for nd in devices}
    cluster = ClusterState(nodes)
    sched = Scheduler(cluster, [builtin_profile(policy)], seed=1)
    pods = []
    for i, k in enumerate(kinds):
        num_gpu, ext = ASKS[k]
        pod = Pod(f"p{i}", cpu_milli=1000, memory_mib=1024, num_gpu=num_gpu, extended=dict(ext))
        pods.append(pod)
        sched.add(pod)
    while sched.schedule_one() is not None:
        pass
    cluster.check_invariants()
    for pod in pods:
        if pod.uid not in cluster.placements:
            continue
        nd = by_name[cluster.placements[pod.uid].node_name]
        wanted = dict(pod.extended)
        if pod.num_gpu:
            wanted["nvidia.com/gpu"] = pod.num_gpu
        for resource in wanted:
            assert nd.advertised.get(resource, 0) > 0, (pod.name, resource, nd.node.name)
        if any(r.startswith("nvidia.com/NVIDIA_") for r in wanted):
            assert nd.workload == "vm-vgpu"
        elif "nvidia.com/GA102GL_A10" in wanted:
            assert nd.workload == "vm-passthrough"
        elif wanted:
            assert nd.workload == "container"
    # Dynamic MIG instances never overlap and never exceed a GPU's 7 compute slices.
    used: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    sizes = {"1g.10gb": (1, 1), "3g.40gb": (3, 4), "7g.80gb": (7, 8)}
    for pod in pods:
        text = pod.annotations.get(PLACEMENT_ANNOTATION)
        if text and pod.uid in cluster.placements:
            gpu, start, prof = text.split(":")
            c, m = sizes[prof]
            used.setdefault((cluster.placements[pod.uid].node_name, int(gpu)), []).append((int(start), m, c))
    for instances in used.values():
        slots = [s for start, m, _ in instances for s in range(start, start + m)]
        assert len(slots) == len(set(slots)) and max(slots) < 8
        assert sum(c for _, _, c in instances) <= 7


def test_mig_aware_placement_keeps_the_largest_profile_placeable(tmp_path):
    _, nodes = build_single(tmp_path)
    cluster = ClusterState(nodes)
    sched = Scheduler(cluster, [builtin_profile("default")], seed=3)
    small = [Pod(f"s{i}", cpu_milli=100, extended={"nvidia.com/mig-1g.10gb": 1}) for i in range(7)]
    for p in small:
        sched.add(p)
    while sched.schedule_one() is not None:
        pass
    assert all(p.uid in cluster.placements for p in small)
    # Seven 1g instances fill one GPU's seven compute slices; the other H100 stays whole for a 7g.80gb.
    assert {p.annotations[PLACEMENT_ANNOTATION].split(":")[0] for p in small} == {"0"} or \
        {p.annotations[PLACEMENT_ANNOTATION].split(":")[0] for p in small} == {"1"}
    big = Pod("big", cpu_milli=100, extended={"nvidia.com/mig-7g.80gb": 1})
    sched.add(big)
    sched.schedule_one()
    assert big.uid in cluster.placements
    report = mig_slice_report(cluster)
    assert report["free_slices"] == 0 and report["stranded_slices"] == 0


def build_single(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text(textwrap.dedent("""\
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        spec:
          gpuOperator: {mig: {strategy: mixed}}
          nodePools:
            - {name: h100, count: 1, cpu: 64, memory: 256Gi, gpus: 2, gpuModel: H100-80GB,
               labels: {gpufleet.io/mig.dynamic: "true"}}
        """))
    spec = load_cluster(p)
    return configure_cluster(spec), scheduler_nodes(spec)


def test_static_layout_strands_slices_reported(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent("""\
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        spec:
          gpuOperator: {mig: {strategy: mixed}}
          nodePools:
            - {name: a100, count: 1, cpu: 64, memory: 256Gi, gpus: 2, gpuModel: A100-40GB,
               labels: {nvidia.com/mig.config: all-1g.10gb}}
        """))
    nodes = scheduler_nodes(load_cluster(p))
    # MIG user guide: 1g.10gb on A100-40GB takes 2 of 8 memory slices, so 4 fit and 3 compute slices stay unused.
    assert nodes[0].extended == {"nvidia.com/mig-1g.10gb": 8}
    assert mig_slice_report(ClusterState(nodes))["stranded_slices"] == 6


def test_simulator_replay_reports_stranded_slices_and_places_by_type(tmp_path):
    nodes = scheduler_nodes(load_cluster(cluster_file(tmp_path)))
    pods = []
    for i, k in enumerate([0, 2, 3, 5, 6, 7, 8, 9, 5, 5]):
        num_gpu, ext = ASKS[k]
        pods.append(Pod(f"p{i}", cpu_milli=500, num_gpu=num_gpu, extended=dict(ext), creation_time=float(i),
                        deletion_time=float(i) + 100.0))
    result = run_replay(nodes, pods, [builtin_profile("default")], seed=0)
    assert result.pods_scheduled == len(pods)
    assert result.mig_slices["dynamic_gpus"] == 4
    assert result.mig_slices["stranded_slices"] >= 0 and result.mig_slices["free_slices"] <= 28
