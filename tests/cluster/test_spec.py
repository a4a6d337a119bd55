"""Spec loading: Kubernetes-shaped documents in, model objects out; bad input gives one SpecError that
names the file, the line, the field path and what was expected."""

import textwrap

import pytest

from gpufleet.cluster import (GPU_MODEL_LABEL, SpecError, Taint, Toleration, ZONE_LABEL, load_cluster,
                              load_workload)
from gpufleet.cluster.model import NodeSelectorRequirement, NodeSelectorTerm, OwnerReference


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_node_documents(tmp_path):
    path = write(tmp_path, "nodes.yaml", """
        apiVersion: v1
        kind: Node
        metadata:
          name: gpu-1
          labels:
            nvidia.com/gpu.product: A100-SXM4-80GB
            nvidia.com/gpu.memory: "81920"
            topology.kubernetes.io/zone: us-east-1a
        spec:
          unschedulable: true
          taints:
          - {key: dedicated, value: training, effect: NoSchedule}
          - {key: spot, effect: PreferNoSchedule}
        status:
          allocatable:
            cpu: 3500m
            memory: 16Gi
            pods: "50"
            nvidia.com/gpu: "2"
            example.com/fpga: 1
            ephemeral-storage: 100Gi
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: cpu-1}
        status:
          capacity: {cpu: 64, memory: 1.5G}
        """)
    spec = load_cluster(path)
    gpu, cpu = spec.nodes
    assert (gpu.name, gpu.cpu_milli, gpu.memory_mib, gpu.max_pods) == ("gpu-1", 3500, 16384, 50)
    assert [(g.index, g.model, g.memory_mib) for g in gpu.gpus] == [(0, "A100-SXM4-80GB", 81920),
                                                                   (1, "A100-SXM4-80GB", 81920)]
    assert gpu.taints == [Taint("dedicated", "training", "NoSchedule"), Taint("spot", "", "PreferNoSchedule")]
    assert gpu.unschedulable and gpu.extended == {"example.com/fpga": 1}
    assert gpu.labels[ZONE_LABEL] == "us-east-1a"
    assert (cpu.cpu_milli, cpu.memory_mib, cpu.gpus, cpu.max_pods) == (64000, 1431, [], 110)
    assert spec.name == "nodes"


def test_pod_with_containers_init_containers_and_gpus(tmp_path):
    path = write(tmp_path, "pods.yaml", """
        apiVersion: v1
        kind: Pod
        metadata:
          name: trainer
          namespace: ml
          labels: {app: bert, scheduling.x-k8s.io/pod-group: bert-job}
          annotations: {gpufleet.io/gpu-models: "A100|H100"}
          ownerReferences: [{kind: ReplicaSet, name: bert-rs}]
        spec:
          priority: 100
          schedulerName: gpu-scheduler
          nodeSelector: {pool: a100}
          tolerations:
          - {key: dedicated, operator: Equal, value: training, effect: NoSchedule}
          - {operator: Exists}
          affinity:
            nodeAffinity:
              requiredDuringSchedulingIgnoredDuringExecution:
                nodeSelectorTerms:
                - matchExpressions:
                  - {key: gpu-count, operator: Gt, values: ["3"]}
                  - {key: zone, operator: In, values: [a, b]}
          initContainers:
          - name: fetch
            resources: {requests: {cpu: "2", memory: 256Mi}}
          containers:
          - name: main
            resources:
              requests: {cpu: 500m, memory: 1Gi}
              limits: {cpu: "1", nvidia.com/gpu: 2}   # GPU given as a limit only: request = limit
          - name: sidecar
            resources: {requests: {cpu: "1", memory: 512Mi}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: notebook}
        spec:
          nodeName: gpu-3
          containers:
          - name: nb
            resources: {requests: {cpu: 250m, memory: 2Gi, gpufleet.io/gpu-milli: 460}}
        """)
    trainer, notebook = load_workload(path).pods
    # containers sum: cpu 500m + 1 = 1500m (the limit 1 does not replace the given request), memory 1536Mi;
    # initContainers take the max per resource: cpu max(1500m, 2) = 2000m, memory max(1536, 256) = 1536.
    assert (trainer.cpu_milli, trainer.memory_mib) == (2000, 1536)
    assert (trainer.num_gpu, trainer.gpu_milli) == (2, 1000)
    assert trainer.gpu_models == ("A100", "H100")
    assert trainer.key == "ml/trainer" and trainer.priority == 100
    assert trainer.scheduler_name == "gpu-scheduler" and trainer.pod_group == "bert-job"
    assert trainer.owner == OwnerReference("ReplicaSet", "bert-rs")
    assert trainer.node_selector == {"pool": "a100"}
    assert trainer.tolerations == (Toleration("dedicated", "Equal", "training", "NoSchedule"),
                                   Toleration("", "Exists", "", ""))
    assert trainer.required_node_affinity == (NodeSelectorTerm((
        NodeSelectorRequirement("gpu-count", "Gt", ("3",)), NodeSelectorRequirement("zone", "In", ("a", "b")))),)
    assert (notebook.num_gpu, notebook.gpu_milli, notebook.is_fractional) == (1, 460, True)
    assert notebook.node_name == "gpu-3" and notebook.namespace == "default"


def test_pod_group_workload_and_list(tmp_path):
    path = write(tmp_path, "work.yaml", """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: scheduling.x-k8s.io/v1alpha1
          kind: PodGroup
          metadata: {name: bert-job}
          spec: {minMember: 3, scheduleTimeoutSeconds: 30}
        - apiVersion: gpufleet.io/v1alpha1
          kind: Workload
          metadata: {name: w}
          spec:
            pods:
            - name: worker
              replicas: 3
              cpu: 4
              memory: 16Gi
              gpus: 1
              gpuMilli: 500
              gpuModels: [V100]
              labels: {scheduling.x-k8s.io/pod-group: bert-job}
              arrival: 10
              interval: 5
              duration: 60
            - {cpu: 1}
        """)
    work = load_workload(path)
    (group,) = work.pod_groups
    assert (group.key, group.min_member, group.schedule_timeout_seconds) == ("default/bert-job", 3, 30.0)
    workers = work.pods[:3]
    assert [p.name for p in workers] == ["worker-0", "worker-1", "worker-2"]
    assert [p.creation_time for p in workers] == [10.0, 15.0, 20.0]
    assert [p.deletion_time for p in workers] == [70.0, 75.0, 80.0]
    assert all((p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_milli, p.gpu_models, p.pod_group)
               == (4000, 16384, 1, 500, ("V100",), "bert-job") for p in workers)
    assert (work.pods[3].name, work.pods[3].cpu_milli, work.pods[3].num_gpu) == ("pod-1", 1000, 0)


def test_cluster_with_nodes_and_node_pools_spread_over_zones(tmp_path):
    path = write(tmp_path, "cluster.yaml", """
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        metadata: {name: lab}
        spec:
          nodes:
          - metadata: {name: head}
            status: {allocatable: {cpu: 8, memory: 32Gi}}
          nodePools:
          - name: a100
            count: 3
            cpu: 96
            memory: 768Gi
            gpus: 8
            gpuModel: A100
            gpuMemory: 80Gi
            labels: {pool: a100}
            zones: [us-east-1a, us-east-1b]
            taints: [{key: dedicated, value: training, effect: NoSchedule}]
            extendedResources: {example.com/ib: 1}
        """)
    spec = load_cluster(path)
    assert spec.name == "lab"
    assert [n.name for n in spec.nodes] == ["head", "a100-0000", "a100-0001", "a100-0002"]
    pool = spec.nodes[1:]
    assert [n.labels[ZONE_LABEL] for n in pool] == ["us-east-1a", "us-east-1b", "us-east-1a"]
    assert all(n.labels[GPU_MODEL_LABEL] == "A100" and n.labels["pool"] == "a100" for n in pool)
    assert all((n.cpu_milli, n.memory_mib, n.gpu_count, n.gpus[0].memory_mib) == (96000, 786432, 8, 81920)
               for n in pool)
    assert all(n.taints == [Taint("dedicated", "training", "NoSchedule")] and n.extended == {"example.com/ib": 1}
               for n in pool)


# ---------------------------------------------------------------------------- bad input
BAD = {
    "malformed YAML": ("cluster", """
        apiVersion: v1
        kind: Node
        metadata:
          name: n1
          labels: {pool: a
        status: {allocatable: {cpu: 4, memory: 1Gi}}
        """, "bad.yaml:6: invalid YAML: expected ',' or '}', but got ':'"),
    "not a number": ("cluster", """
        apiVersion: gpufleet.io/v1alpha1
        kind: Cluster
        metadata: {name: c}
        spec:
          nodePools:
          - name: gpu
            count: many
            cpu: 4
            memory: 16Gi
        """, "bad.yaml:7: spec.nodePools[0].count: expected an integer, got 'many'"),
    "bad quantity": ("workload", """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - name: c
            resources:
              requests:
                cpu: lots
        """, "bad.yaml:9: spec.containers[0].resources.requests.cpu: expected a quantity such as 4, 500m or "
             "16Gi, got 'lots'"),
    "negative capacity": ("cluster", """
        apiVersion: v1
        kind: Node
        metadata: {name: n1}
        status:
          allocatable:
            cpu: "-4"
            memory: 16Gi
        """, "bad.yaml:6: status.allocatable.cpu: must not be negative (expected a CPU quantity such as 4 or "
             "500m), got '-4'"),
    "unknown kind": ("cluster", """
        apiVersion: v1
        kind: Nod
        metadata: {name: n1}
        """, "bad.yaml:2: kind: expected kind Cluster or Node, got 'Nod'"),
    "missing name": ("cluster", """
        apiVersion: v1
        kind: Node
        metadata:
          labels: {a: b}
        status: {allocatable: {cpu: 4, memory: 1Gi}}
        """, "bad.yaml:3: metadata.name: missing required field 'name'"),
    "missing minMember": ("workload", """
        apiVersion: scheduling.x-k8s.io/v1alpha1
        kind: PodGroup
        metadata: {name: g}
        spec:
          scheduleTimeoutSeconds: 10
        """, "bad.yaml:4: spec.minMember: missing required field 'minMember'"),
    "gpu share out of range": ("workload", """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - resources: {requests: {gpufleet.io/gpu-milli: 1500}}
        """, "bad.yaml:6: spec.containers[0].resources.requests.gpufleet.io/gpu-milli: expected GPU milli in "
             "1..1000 (a share of one GPU), got 1500"),
    "toleration without key": ("workload", """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          tolerations:
          - effect: NoSchedule
            value: x
        """, "bad.yaml:6: spec.tolerations[0].operator: operator must be Exists when key is empty (expected "
             "operator: Exists to tolerate every taint, or a key)"),
    "bad operator": ("workload", """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          affinity:
            nodeAffinity:
              requiredDuringSchedulingIgnoredDuringExecution:
                nodeSelectorTerms:
                - matchExpressions:
                  - key: zone
                    operator: Near
                    values: [a]
        """, "bad.yaml:11: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
             "nodeSelectorTerms[0].matchExpressions[0].operator: expected one of In, NotIn, Exists, "
             "DoesNotExist, Gt, Lt, got 'Near'"),
    "duplicate node": ("cluster", """
        apiVersion: v1
        kind: Node
        metadata: {name: n1}
        status: {allocatable: {cpu: 4, memory: 1Gi}}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: n1}
        status: {allocatable: {cpu: 4, memory: 1Gi}}
        """, "bad.yaml: duplicate node name 'n1'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_spec_error_naming_file_line_and_field(tmp_path, case):
    loader, text, expected = BAD[case]
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(SpecError) as info:
        (load_cluster if loader == "cluster" else load_workload)(path)
    assert str(info.value) == str(tmp_path / expected)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="nope.yaml: cannot read file"):
        load_cluster(tmp_path / "nope.yaml")
