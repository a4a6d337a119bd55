"""``gpufleet kube manifests``: the objects that run gpufleet as a secondary scheduler in a cluster.

Namespace, ServiceAccount, a least-privilege ClusterRole and its ClusterRoleBinding, the ConfigMap holding
the KubeSchedulerConfiguration profile, and the Deployment (two replicas; leader election keeps one
active). The role grants exactly the API calls the code makes (:data:`API_CALLS`; the tests compare them
with the calls observed against the wire server), following Kubernetes' RBAC rules
(https://kubernetes.io/docs/reference/access-authn-authz/rbac/): ``create`` cannot be limited by
resourceNames, so the Lease's get/update are limited to its name and create is a rule of its own.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .. import __version__
from ..scheduler import load_config
from .runner import POD_GROUP_API, evicts, uses_pod_groups

DEFAULT_NAMESPACE = "gpufleet-system"
DEFAULT_NAME = "gpufleet-scheduler"
DEFAULT_IMAGE = f"ghcr.io/gpufleet/gpufleet:{__version__}"
METRICS_PORT = 10259
CONFIG_DIR = "/etc/gpufleet"

# (apiGroup, resource, verbs) the code calls; "podgroups" only when a profile has a PodGroup plugin.
API_CALLS: list[tuple[str, str, tuple[str, ...]]] = [
    ("", "nodes", ("list", "watch")),                          # informer.Reflector
    ("", "pods", ("list", "watch", "patch")),                  # informer.Reflector, binder (gpu-index)
    ("", "pods/binding", ("create",)),                         # binder
    ("events.k8s.io", "events", ("create",)),                  # events.EventRecorder
    ("coordination.k8s.io", "leases", ("create",)),            # leader.LeaseElector (first replica)
    ("coordination.k8s.io", "leases", ("get", "update")),      # leader.LeaseElector, by name
]
POD_GROUP_CALLS = (POD_GROUP_API[0], POD_GROUP_API[2], ("list", "watch"))
POD_DELETE_CALLS = ("", "pods", ("delete",))  # runner._delete_victim, only with a preemption plugin

DEFAULT_PROFILE = f"""\
# gpufleet as a secondary scheduler: pods with spec.schedulerName: {DEFAULT_NAME} are placed by it.
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: {DEFAULT_NAME}
  plugins:
    score:
      disabled: [{{name: "*"}}]
      enabled:
      - {{name: GpuBinPacking, weight: 2}}
      - {{name: NodeResourcesFit, weight: 1}}
      - {{name: TaintToleration, weight: 1}}
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{{name: cpu, weight: 1}}, {{name: memory, weight: 1}}, {{name: nvidia.com/gpu, weight: 1}}]
"""


def cluster_role_rules(with_pod_groups: bool = False, lease_name: str = DEFAULT_NAME,
                       with_pod_delete: bool = False) -> list[dict]:
    calls = list(API_CALLS) + ([POD_GROUP_CALLS] if with_pod_groups else []) + \
        ([POD_DELETE_CALLS] if with_pod_delete else [])
    rules = []
    for group, resource, verbs in calls:
        rule = {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
        if resource == "leases" and "create" not in verbs:
            rule["resourceNames"] = [lease_name]
        rules.append(rule)
    return rules


def profile_plugin_names(profile_text: str) -> set[str]:
    """Every plugin a KubeSchedulerConfiguration text enables, at any extension point."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(profile_text)
        fh.flush()
        profiles = load_config(fh.name)
    return {name for p in profiles for entries in p.plugins.values() for name, _ in entries}


def profile_uses_pod_groups(profile_text: str, source: str) -> bool:
    """Whether a profile enables a plugin that takes PodGroups (then the role may watch podgroups)."""
    from ..scheduler.plugins import REGISTRY
    return any(uses_pod_groups(REGISTRY[n]) for n in profile_plugin_names(profile_text) if n in REGISTRY)


def profile_evicts(profile_text: str) -> bool:
    """Whether a profile enables a preemption plugin (then the role may delete pods)."""
    from ..scheduler.plugins import REGISTRY
    return any(evicts(REGISTRY[n]) for n in profile_plugin_names(profile_text) if n in REGISTRY)


def render(config_path: str | None = None, namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE,
           name: str = DEFAULT_NAME, replicas: int = 2) -> list[dict]:
    """The manifests as dicts, in apply order. The profile is validated first (SpecError if bad)."""
    if config_path is not None:
        load_config(config_path)  # one clear line naming file and field when it is bad
        profile_text = Path(config_path).read_text()
    else:
        profile_text = DEFAULT_PROFILE
    with_groups = profile_uses_pod_groups(profile_text, config_path or "<default profile>")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "gpufleet"}
    meta = {"name": name, "namespace": namespace, "labels": labels}
    docs: list[dict] = []
    if namespace not in ("default", "kube-system"):
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)})
    docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": name, "labels": labels},
                 "rules": cluster_role_rules(with_groups, lease_name=name,
                                             with_pod_delete=profile_evicts(profile_text))})
    docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": name, "labels": labels},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                 "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config",
                                                                      "namespace": namespace, "labels": labels},
                 "data": {"profile.yaml": profile_text}})
    probe = {"httpGet": {"path": "/healthz", "port": METRICS_PORT}, "initialDelaySeconds": 15,
             "periodSeconds": 10}
    container = {
        "name": "scheduler", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["gpufleet", "kube", "run", "--config", f"{CONFIG_DIR}/profile.yaml",
                    "--lease-namespace", namespace, "--lease-name", name,
                    "--metrics-port", str(METRICS_PORT)],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "livenessProbe": probe, "readinessProbe": dict(probe, initialDelaySeconds=5),
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    docs.append({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true",
                                                               "prometheus.io/port": str(METRICS_PORT)}},
                "spec": {"serviceAccountName": name,
                         "securityContext": {"runAsUser": 65532, "runAsGroup": 65532},
                         "containers": [container],
                         "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}]},
            },
        },
    })
    return docs


def render_yaml(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
