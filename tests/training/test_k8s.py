"""`gpufleet train job.yaml --render k8s`: manifests the official kubernetes client's models accept."""

from __future__ import annotations

import pytest
import yaml

from gpufleet.cli import main

kubernetes = pytest.importorskip("kubernetes")

JOB = """apiVersion: gpufleet.io/v1alpha1
kind: TrainingJob
metadata: {name: bert, namespace: ml}
spec:
  script: train.py
  args: [--epochs, "3"]
  nnodes: "2:4"
  nprocPerNode: 8
  resources: {cpu: "32", memory: 256Gi, nvidia.com/gpu: 8}
  maxRestarts: 3
  checkpointDir: /ckpt/bert
  env: {NCCL_DEBUG: WARN}
  image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
"""


def model(doc, kind):
    return kubernetes.client.ApiClient()._ApiClient__deserialize(doc, kind)


def render(tmp_path, capsys, *extra):
    path = tmp_path / "job.yaml"
    path.write_text(JOB)
    assert main(["train", str(path), "--render", "k8s", *extra]) == 0  # train.py need not exist here
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_rendered_job_and_service_load_as_client_models(tmp_path, capsys):
    job_doc, svc_doc, group_doc = render(tmp_path, capsys, "--job-uid", "1234-abcd")
    job = model(job_doc, "V1Job")
    svc = model(svc_doc, "V1Service")
    assert job.spec.completion_mode == "Indexed" and job.spec.completions == 4 and job.spec.parallelism == 4
    pod = job.spec.template
    assert pod.spec.scheduler_name == "gpufleet" and pod.spec.subdomain == "bert"
    assert pod.metadata.labels["scheduling.x-k8s.io/pod-group"] == "bert"
    assert pod.metadata.annotations["scheduling.k8s.io/group-name"] == "bert"
    container = pod.spec.containers[0]
    assert container.resources.limits == {"nvidia.com/gpu": "8"}
    env = {e.name: e for e in container.env}
    assert env["MASTER_ADDR"].value == "bert-0.bert" and env["NCCL_DEBUG"].value == "WARN"
    assert env["GPUFLEET_CHECKPOINT_DIR"].value == "/ckpt/bert"
    assert "job-completion-index" in env["NODE_RANK"].value_from.field_ref.field_path
    script = container.command[-1]
    assert "getaddrinfo" in script and "exec torchrun" in script  # wait for the master, then the agent
    assert "--nnodes=2:4" in script and "--max-restarts=3" in script and "train.py --epochs 3" in script
    assert svc.spec.cluster_ip == "None" and svc.spec.publish_not_ready_addresses
    assert svc.spec.selector == job.metadata.labels
    (owner,) = svc.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Job", "bert", "1234-abcd", True)
    assert group_doc["kind"] == "PodGroup" and group_doc["spec"]["minMember"] == 2
    assert group_doc["metadata"]["ownerReferences"][0]["uid"] == "1234-abcd"


def test_without_a_uid_the_output_says_how_to_get_it(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(JOB)
    main(["train", str(path), "--render", "k8s"])
    assert "kubectl get job bert -n ml -o jsonpath" in capsys.readouterr().out


def test_render_needs_an_image(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(JOB.replace("  image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime\n", ""))
    assert main(["train", str(path), "--render", "k8s"]) == 2
    assert "spec.image" in capsys.readouterr().err
