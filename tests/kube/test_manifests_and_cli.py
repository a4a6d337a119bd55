"""`gpufleet kube manifests` loads with the official client's models; bad input is one line, exit 2;
Kubernetes objects convert to gpufleet's Node and Pod."""

from __future__ import annotations

import yaml
from kubernetes import client

from gpufleet.cli import main
from gpufleet.kube.convert import node_from_k8s, pod_from_k8s
from gpufleet.kube.manifests import API_CALLS, render

from .conftest import node_obj, pod_obj

MODELS = {"Namespace": client.V1Namespace, "ServiceAccount": client.V1ServiceAccount,
          "ClusterRole": client.V1ClusterRole, "ClusterRoleBinding": client.V1ClusterRoleBinding,
          "ConfigMap": client.V1ConfigMap, "Deployment": client.V1Deployment}


def test_manifests_load_with_the_client_models_and_round_trip(capsys, tmp_path):
    assert main(["kube", "manifests", "--config", "examples/profile.yaml", "--namespace", "sched",
                 "--image", "registry.example/gpufleet:1"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment"]
    api = client.ApiClient()
    for doc in docs:
        model = MODELS[doc["kind"]].from_dict(doc)  # pydantic validation of every field's type
        # unknown or misspelled fields would be dropped by the model: the round trip must be exact
        assert api.sanitize_for_serialization(model) == doc, doc["kind"]
    deployment = docs[-1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/gpufleet:1"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == docs[1]["metadata"]["name"]
    assert docs[4]["data"]["profile.yaml"] == open("examples/profile.yaml").read()
    # the shipped profile is a file `gpufleet kube run --config` accepts
    profile = tmp_path / "profile.yaml"
    profile.write_text(docs[4]["data"]["profile.yaml"])
    from gpufleet.scheduler import load_config
    assert load_config(profile)[0].scheduler_name == "default-scheduler"


def test_cluster_role_is_exactly_the_declared_calls():
    role = next(d for d in render() if d["kind"] == "ClusterRole")
    granted = sorted((g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                     for v in rule["verbs"])
    declared = sorted((g, r, v) for g, r, verbs in API_CALLS for v in verbs)
    assert granted == declared
    assert not any(v in ("*", "delete", "deletecollection", "escalate", "bind") for _, _, v in granted)
    lease_update = next(r for r in role["rules"] if "update" in r["verbs"])
    assert lease_update["resourceNames"] == ["gpufleet-scheduler"]


def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    assert main(["kube", "run", "--kubeconfig", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    bad = tmp_path / "kubeconfig"
    bad.write_text("clusters: [")
    assert main(["kube", "run", "--kubeconfig", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot load it" in err
    profile = tmp_path / "profile.yaml"
    profile.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                       "profiles:\n- schedulerName: x\n  plugins:\n    score:\n      enabled: [{name: NoSuch}]\n")
    assert main(["kube", "manifests", "--config", str(profile)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown plugin 'NoSuch'" in err
    assert main(["kube", "run", "--kubeconfig", str(bad), "--config", str(profile)]) == 2
    assert "unknown plugin" in capsys.readouterr().err


def test_node_conversion_reads_allocatable_gpus_mig_and_labels():
    obj = node_obj("n1", cpu="63500m", memory="250Gi", gpus=4,
                   extra={"nvidia.com/mig-1g.5gb": "7", "nvidia.com/GRID_T4-2Q": "8"})
    obj["metadata"]["labels"]["nvidia.com/gpu.workload.config"] = "vm-vgpu"
    obj["spec"]["taints"] = [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    node = node_from_k8s(obj)
    assert (node.cpu_milli, node.memory_mib, node.gpu_count) == (63500, 250 * 1024, 4)
    assert node.gpu_model == "NVIDIA-A100-SXM4-40GB"
    assert node.extended == {"nvidia.com/mig-1g.5gb": 7, "nvidia.com/GRID_T4-2Q": 8}
    assert node.labels["topology.kubernetes.io/zone"] == "zone-a"
    assert node.labels["nvidia.com/gpu.workload.config"] == "vm-vgpu"
    assert node.taints[0].key == "nvidia.com/gpu"


def test_pod_conversion_keeps_uid_fraction_and_recorded_gpu():
    obj = pod_obj("p", gpus=1, gpu_milli=300, node_name="n1", annotations={"gpufleet.io/gpu-index": "2"})
    obj["metadata"]["uid"] = "1234-abcd"
    pod = pod_from_k8s(obj)
    assert (pod.uid, pod.num_gpu, pod.gpu_milli, pod.node_name) == ("1234-abcd", 1, 300, "n1")
    assert pod.is_fractional and pod.scheduler_name == "gpufleet-scheduler"
    from gpufleet.kube.convert import gpu_indices_from_annotation
    assert gpu_indices_from_annotation(pod) == (2,)
