"""A TrainingJob as Kubernetes objects: an Indexed Job, a headless Service and a PodGroup.

* **Job** (batch/v1, ``completionMode: Indexed``, ``completions = parallelism = max nodes``): one pod per
  node; pod ``i`` is named ``NAME-i`` as a hostname and gets NODE_RANK from the completion-index
  annotation (``batch.kubernetes.io/job-completion-index``, Kubernetes docs "Indexed Job"). Pods use
  ``schedulerName: gpufleet``, carry the pod-group label ``scheduling.x-k8s.io/pod-group`` (coscheduling)
  and the annotation ``scheduling.k8s.io/group-name`` (Volcano), and ask for the spec's per-worker
  resources (``nvidia.com/gpu`` under limits, as the device plugin requires).
* **Service** (v1, ``clusterIP: None``, ``publishNotReadyAddresses: true``): gives each pod the DNS name
  ``NAME-i.NAME`` (the Job's pods set ``subdomain: NAME``), published before the pods are ready so the
  rendezvous can start. Its ``ownerReferences`` point at the Job (``controller``, ``blockOwnerDeletion``),
  so the garbage collector deletes it with the Job. An owner reference needs the Job's ``uid``, which the
  API server assigns on create: pass ``job_uid`` (``--job-uid``) once the Job exists, else a placeholder is
  written and a comment says how to fill it.
* **PodGroup** (scheduling.x-k8s.io/v1alpha1): ``minMember`` = the minimum node count, the timeout, also
  owned by the Job: gpufleet's gang scheduler binds all of the pods or none.

The container runs PyTorch's own elastic agent, torchrun, with the c10d rendezvous hosted on pod 0
(``--rdzv-endpoint NAME-0.NAME:29400``) and ``--max-restarts``: a failed worker stops and restarts every
worker across the pods. Before torchrun starts, a loop waits until the master's name resolves (its
record appears only when pod 0 has an IP), so a pod that starts first retries instead of failing with
"Name or service not known".
"""

from __future__ import annotations

import shlex
from typing import Any

from ..cluster import GPU_RESOURCE
from ..cluster.model import POD_GROUP_LABEL
from .spec import TrainingJob

SCHEDULER_NAME = "gpufleet"
JOB_LABEL = "gpufleet.io/training-job"
GROUP_NAME_ANNOTATION = "scheduling.k8s.io/group-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
RDZV_PORT = 29400
UID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"

WAIT_FOR_MASTER = ('import os, socket, sys, time\n'
                   'host = os.environ["MASTER_ADDR"]\n'
                   'for attempt in range(600):\n'
                   '    try:\n'
                   '        socket.getaddrinfo(host, None); break\n'
                   '    except socket.gaierror as exc:\n'
                   '        print("waiting for", host, "to resolve:", exc, file=sys.stderr, flush=True); time.sleep(2)\n'
                   'else:\n'
                   '    sys.exit(host + " did not resolve")\n')


def master_addr(job: TrainingJob) -> str:
    return f"{job.name}-0.{job.name}"


def container_command(job: TrainingJob) -> list[str]:
    """``sh -c``: wait until the master resolves, then exec torchrun with the job's command."""
    if job.script is not None:
        target = [job.script_arg or str(job.script)]
    else:
        command = job.command
        target = ["--no-python", *command] if command[0] not in ("python", "python3") else command[1:]
    torchrun = ["torchrun", f"--nnodes={job.nnodes_text}", f"--nproc-per-node={job.nproc_per_node}",
                "--rdzv-backend=c10d", f"--rdzv-endpoint=$(MASTER_ADDR):{RDZV_PORT}", f"--rdzv-id={job.name}",
                f"--max-restarts={job.max_restarts}", *target, *job.args]
    shell = " ".join(shlex.quote(a) if not a.startswith("--rdzv-endpoint") else
                     f'--rdzv-endpoint="$MASTER_ADDR:{RDZV_PORT}"' for a in torchrun)
    return ["/bin/sh", "-c", f"python -c {shlex.quote(WAIT_FOR_MASTER)} && exec {shell}"]


def _env(job: TrainingJob) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}},
        {"name": "MASTER_ADDR", "value": master_addr(job)},
        {"name": "MASTER_PORT", "value": str(RDZV_PORT)},
        {"name": "NNODES", "value": job.nnodes_text},
        {"name": "NPROC_PER_NODE", "value": str(job.nproc_per_node)},
        {"name": "TORCHELASTIC_RUN_ID", "value": job.name},
    ]
    if job.checkpoint_dir:
        env.append({"name": "GPUFLEET_CHECKPOINT_DIR", "value": job.checkpoint_dir})
    env.extend({"name": k, "value": v} for k, v in job.env.items())
    return env


def _resources(job: TrainingJob) -> dict[str, dict[str, str]]:
    requests = {k: v for k, v in job.resources.raw.items() if k != GPU_RESOURCE}
    limits = {}
    if job.resources.gpus:
        limits[GPU_RESOURCE] = str(job.resources.gpus)
    out = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def owner_reference(job: TrainingJob, job_uid: str | None) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job.name, "uid": job_uid or UID_PLACEHOLDER,
            "controller": True, "blockOwnerDeletion": True}


def render(job: TrainingJob, job_uid: str | None = None) -> list[dict[str, Any]]:
    """[Job, Service, PodGroup] as plain dicts (YAML/JSON ready)."""
    labels = {JOB_LABEL: job.name}
    pod_labels = {JOB_LABEL: job.name, POD_GROUP_LABEL: job.name}
    owner = owner_reference(job, job_uid)
    container = {
        "name": "trainer", "image": job.image, "command": container_command(job), "env": _env(job),
        "ports": [{"name": "rdzv", "containerPort": RDZV_PORT, "protocol": "TCP"}],
    }
    resources = _resources(job)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "schedulerName": SCHEDULER_NAME, "subdomain": job.name, "restartPolicy": "Never",
        "containers": [container],
    }
    if job.priority:
        pod_spec["priority"] = job.priority
    job_obj = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed", "completions": job.max_nodes, "parallelism": job.max_nodes,
            "backoffLimit": job.max_restarts,
            "template": {"metadata": {"labels": pod_labels, "annotations": {GROUP_NAME_ANNOTATION: job.name}},
                         "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels, "ownerReferences": [owner]},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": {JOB_LABEL: job.name},
                 "ports": [{"name": "rdzv", "port": RDZV_PORT, "targetPort": RDZV_PORT, "protocol": "TCP"}]},
    }
    pod_group = {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels, "ownerReferences": [owner]},
        "spec": {"minMember": job.min_nodes, "scheduleTimeoutSeconds": int(job.schedule_timeout_seconds)},
    }
    return [job_obj, service, pod_group]


def render_yaml(job: TrainingJob, job_uid: str | None = None) -> str:
    import yaml

    docs = render(job, job_uid)
    header = ""
    if not job_uid:
        header = (f"# The Service and the PodGroup are owned by the Job (garbage-collected with it). An owner\n"
                  f"# reference needs the Job's uid: create the Job, then render again with\n"
                  f"#   --job-uid $(kubectl get job {job.name} -n {job.namespace} -o jsonpath='{{.metadata.uid}}')\n")
    return header + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
