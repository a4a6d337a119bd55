"""Kubernetes-shaped YAML specs (apiVersion, kind, metadata, spec) for Node, Pod, PodGroup and Cluster.

Every document is validated on load; a bad field raises :class:`SpecError` naming the file, the line and
the field path (``spec.nodePools[1].gpus``) and what was expected. Shapes:

* ``v1 Node``: metadata.name/labels, spec.taints/unschedulable, status.allocatable (or capacity) with cpu,
  memory, pods, nvidia.com/gpu and extended resources; the GPU model comes from the
  ``nvidia.com/gpu.product`` label (as NVIDIA's GPU feature discovery sets it) and GPU memory from
  ``nvidia.com/gpu.memory`` (MiB).
* ``v1 Pod``: metadata.name/namespace/labels/annotations/ownerReferences, spec.schedulerName, priority,
  nodeName, nodeSelector, affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution,
  tolerations, containers[].resources.requests (summed; initContainers take the max, as kubelet does;
  a resource given only under limits takes the limit, as the API server's defaulting does).
  Whole GPUs: ``nvidia.com/gpu: N``. A share of one GPU: ``gpufleet.io/gpu-milli: 460`` (per GPU, 1..1000).
  Allowed GPU models: annotation ``gpufleet.io/gpu-models: "V100M16|V100M32"``.
* ``scheduling.x-k8s.io/v1alpha1 PodGroup``: spec.minMember, spec.scheduleTimeoutSeconds.
* ``gpufleet.io/v1alpha1 Cluster``: spec.nodes (Node specs without apiVersion/kind) and spec.nodePools
  (name, count, cpu, memory, gpus, gpuModel, gpuMemory, labels, taints, zones spread round-robin), and
  spec.gpuOperator (kept for gpufleet.devices: workload configs, MIG, vGPU, time-slicing; docs/devices.md).
* ``gpufleet.io/v1alpha1 Workload``: spec.pods, each a pod template (name, replicas, cpu, memory, gpus,
  gpuMilli, gpuModels, labels, priority, arrival, duration) for the simulator.
* ``v1 List`` with items, or several documents separated by ``---``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import quantity
from .errors import SpecError
from .model import (GPU_MEMORY_LABEL, GPU_MILLI_RESOURCE, GPU_MODEL_LABEL, GPU_MODELS_ANNOTATION,
                    GPU_RESOURCE, MILLI_PER_GPU, POD_GROUP_LABEL, ZONE_LABEL, GpuDevice, Node,
                    NodeSelectorRequirement, NodeSelectorTerm, OwnerReference, Pod, PodGroup, Taint,
                    Toleration)


# ---------------------------------------------------------------------------- YAML with line numbers
class _Map(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict


class _Seq(list):
    line: int = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise SpecError("mapping key is not a string", line=key_node.start_mark.line + 1) from None
        result[key] = loader.construct_object(value_node, deep=True)
        # The key's line: for a block mapping or list value that is where a reader looks (metadata:).
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml_documents(path: str | Path) -> list[Any]:
    """All documents of a YAML file, with line numbers kept; SpecError for unreadable or invalid YAML."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    return parse_yaml_documents(text, str(path))


def parse_yaml_documents(text: str, filename: str = "<string>") -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=_LineLoader) if d is not None]
    except SpecError as exc:
        exc.file = filename
        raise SpecError(exc.message, file=filename, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise SpecError(f"invalid YAML: {exc.problem}", file=filename,
                        line=mark.line + 1 if mark else None) from None


# ---------------------------------------------------------------------------- field access
@dataclass
class Field:
    """A value in a document with its path and line, so errors can point at it."""

    value: Any
    path: str
    file: str
    line: int | None

    def error(self, message: str) -> SpecError:
        return SpecError(message, file=self.file, line=self.line, field=self.path or None)

    def get(self, key: str, default: Any = None) -> "Field":
        if self.value is None:
            return Field(default, self._child(key), self.file, self.line)
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {type(self.value).__name__}")
        line = getattr(self.value, "key_lines", {}).get(key, self.line)
        return Field(self.value.get(key, default), self._child(key), self.file, line)

    def require(self, key: str) -> "Field":
        """The child ``key``; SpecError naming its full path (``metadata.name``) when it is missing."""
        f = self.get(key)
        if f.value is None:
            raise SpecError(f"missing required field {key!r}", file=self.file, line=self.line,
                            field=f.path)
        return f

    def _child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def items(self) -> list["Field"]:
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {type(self.value).__name__}")
        lines = getattr(self.value, "item_lines", [self.line] * len(self.value))
        return [Field(v, f"{self.path}[{i}]", self.file, lines[i]) for i, v in enumerate(self.value)]

    def mapping(self) -> dict:
        if self.value is None:
            return {}
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {type(self.value).__name__}")
        return self.value

    def keys_fields(self) -> list[tuple[str, "Field"]]:
        return [(str(k), self.get(k)) for k in self.mapping()]

    def string(self, default: str | None = None) -> str:
        v = self.value if self.value is not None else default
        if v is None:
            raise self.error("missing required field")
        if isinstance(v, (dict, list)):
            raise self.error(f"expected a string, got {type(v).__name__}")
        return str(v)

    def string_map(self) -> dict[str, str]:
        out = {}
        for k, f in self.keys_fields():
            if isinstance(f.value, (dict, list)) or f.value is None:
                raise f.error("expected a string value")
            out[k] = str(f.value) if not isinstance(f.value, bool) else str(f.value).lower()
        return out

    def integer(self, default: int | None = None, minimum: int | None = None) -> int:
        v = self.value if self.value is not None else default
        if v is None:
            raise self.error("missing required field (expected an integer)")
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise self.error(f"expected an integer, got {v!r}")
        try:
            out = int(v) if not isinstance(v, float) or v.is_integer() else None
        except ValueError:
            out = None
        if out is None:
            raise self.error(f"expected an integer, got {v!r}")
        if minimum is not None and out < minimum:
            raise self.error(f"must be >= {minimum}, got {out}")
        return out

    def number(self, default: float | None = None, minimum: float | None = None) -> float:
        v = self.value if self.value is not None else default
        if v is None:
            raise self.error("missing required field (expected a number)")
        if isinstance(v, bool):
            raise self.error(f"expected a number, got {v!r}")
        try:
            out = float(v)
        except (TypeError, ValueError):
            raise self.error(f"expected a number, got {v!r}") from None
        if minimum is not None and out < minimum:
            raise self.error(f"must be >= {minimum}, got {out:g}")
        return out

    def boolean(self, default: bool = False) -> bool:
        v = self.value
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.error(f"expected true or false, got {v!r}")
        return v

    def convert(self, fn: Callable[[Any], Any], what: str = "") -> Any:
        try:
            return fn(self.value)
        except (ValueError, TypeError) as exc:
            raise self.error(f"{exc}" if not what else f"expected {what}, got {self.value!r}") from None


def _nonnegative(f: Field, fn: Callable[[Any], int], what: str) -> int:
    value = f.convert(fn)
    if value < 0:
        raise f.error(f"must not be negative (expected {what}), got {f.value!r}")
    return value


def document_fields(path: str | Path) -> list[Field]:
    """The documents of a file as Fields, with ``kind: List`` expanded into its items."""
    out: list[Field] = []
    for doc in load_yaml_documents(path):
        f = Field(doc, "", str(path), getattr(doc, "line", 1))
        if not isinstance(doc, dict):
            raise f.error("expected a Kubernetes object (a mapping with apiVersion, kind, metadata, spec)")
        if doc.get("kind") == "List":
            out.extend(f.get("items").items())
        else:
            out.append(f)
    return out


# ---------------------------------------------------------------------------- objects
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def parse_taint(f: Field) -> Taint:
    effect = f.get("effect").string("NoSchedule")
    if effect not in _TAINT_EFFECTS:
        raise f.get("effect").error(f"expected one of {', '.join(_TAINT_EFFECTS)}, got {effect!r}")
    return Taint(f.require("key").string(), f.get("value").string(""), effect)


def parse_toleration(f: Field) -> Toleration:
    """core/v1 Toleration, validated as the API server does (pkg/apis/core/validation
    validateTolerations): an empty key needs operator Exists, and Exists takes no value."""
    op = f.get("operator").string("Equal")
    if op not in ("Equal", "Exists"):
        raise f.get("operator").error(f"expected Equal or Exists, got {op!r}")
    effect = f.get("effect").string("")
    if effect and effect not in _TAINT_EFFECTS:
        raise f.get("effect").error(f"expected one of {', '.join(_TAINT_EFFECTS)}, got {effect!r}")
    key = f.get("key").string("")
    value = f.get("value").string("")
    if not key and op != "Exists":
        raise f.get("operator").error("operator must be Exists when key is empty (expected operator: Exists "
                                      "to tolerate every taint, or a key)")
    if op == "Exists" and value:
        raise f.get("value").error("value must be empty when operator is Exists")
    return Toleration(key, op, value, effect)


def parse_node_selector_terms(f: Field) -> tuple[NodeSelectorTerm, ...]:
    terms = []
    for term in f.items():
        reqs = []
        for req in term.get("matchExpressions").items():
            op = req.require("operator").string()
            if op not in _SELECTOR_OPS:
                raise req.get("operator").error(f"expected one of {', '.join(_SELECTOR_OPS)}, got {op!r}")
            values = tuple(v.string() for v in req.get("values").items())
            if op in ("In", "NotIn") and not values:
                raise req.get("values").error(f"operator {op} needs at least one value")
            if op in ("Gt", "Lt"):
                if len(values) != 1:
                    raise req.get("values").error(f"operator {op} needs exactly one integer value")
                req.get("values").items()[0].integer()
            reqs.append(NodeSelectorRequirement(req.require("key").string(), op, values))
        terms.append(NodeSelectorTerm(tuple(reqs)))
    return tuple(terms)


def _resource_list(f: Field) -> tuple[int, int, int, int, dict[str, int], int | None]:
    """cpu milli, memory MiB, GPUs, GPU milli, extended resources, pods from a resource list mapping."""
    cpu = mem = gpus = 0
    gpu_milli = 0
    pods = None
    ext: dict[str, int] = {}
    for name, v in f.keys_fields():
        if name == "cpu":
            cpu = _nonnegative(v, quantity.cpu_to_milli, "a CPU quantity such as 4 or 500m")
        elif name == "memory":
            mem = _nonnegative(v, quantity.memory_to_mib, "a memory quantity such as 16Gi")
        elif name == "pods":
            pods = _nonnegative(v, quantity.count, "a whole number of pods")
        elif name == GPU_RESOURCE:
            gpus = _nonnegative(v, quantity.count, "a whole number of GPUs")
        elif name == GPU_MILLI_RESOURCE:
            gpu_milli = _nonnegative(v, quantity.count, "GPU milli 1..1000")
            if not 0 < gpu_milli <= MILLI_PER_GPU:
                raise v.error(f"expected GPU milli in 1..1000 (a share of one GPU), got {v.value!r}")
        elif name in ("ephemeral-storage",) or name.startswith("hugepages-"):
            continue
        else:
            ext[name] = _nonnegative(v, quantity.count, f"a whole number of {name}")
    return cpu, mem, gpus, gpu_milli, ext, pods


def _container_requests(c: Field) -> tuple[int, int, int, int, dict[str, int], int | None]:
    """A container's requests, each resource defaulting to its limit when only the limit is given.

    Kubernetes' defaulting (pkg/apis/core/v1/defaults.go SetDefaults_Pod): "if a container has limits but
    no requests for a resource, requests default to the limit". Extended resources such as
    nvidia.com/gpu are usually written under limits only, so without this a GPU pod would ask for no GPU.
    """
    resources = c.get("resources")
    requests, limits = resources.get("requests"), resources.get("limits")
    req = _resource_list(requests)
    if limits.value is None:
        return req
    lim = _resource_list(limits)
    asked = set(requests.mapping())

    def pick(name: str, i: int):
        return req[i] if name in asked else lim[i]
    ext = dict(lim[4])
    ext.update(req[4])
    return (pick("cpu", 0), pick("memory", 1), pick(GPU_RESOURCE, 2), pick(GPU_MILLI_RESOURCE, 3), ext,
            req[5])


def parse_node(f: Field) -> Node:
    meta = f.get("metadata")
    name = meta.require("name").string()
    labels = meta.get("labels").string_map()
    spec = f.get("spec")
    taints = [parse_taint(t) for t in spec.get("taints").items()]
    status = f.get("status")
    res = status.get("allocatable") if status.get("allocatable").value is not None else status.get("capacity")
    if res.value is None:
        raise status.error("missing status.allocatable (or status.capacity) with the node's cpu and memory")
    cpu, mem, gpus, _, ext, pods = _resource_list(res)
    model = labels.get(GPU_MODEL_LABEL, "GPU" if gpus else "")
    gpu_mem = 0
    if GPU_MEMORY_LABEL in labels:
        gpu_mem = meta.get("labels").get(GPU_MEMORY_LABEL).convert(int, "GPU memory in MiB")
    node = Node(name, cpu, mem, [GpuDevice(i, model, gpu_mem) for i in range(gpus)], labels=labels,
                taints=taints, extended=ext, max_pods=110 if pods is None else pods,
                unschedulable=spec.get("unschedulable").boolean())
    return node


def parse_pod(f: Field) -> Pod:
    meta = f.get("metadata")
    spec = f.get("spec")
    name = meta.require("name").string()
    labels = meta.get("labels").string_map()
    annotations = meta.get("annotations").string_map()
    cpu = mem = gpus = gpu_milli = 0
    ext: dict[str, int] = {}
    containers = spec.get("containers").items()
    for c in containers:
        c_cpu, c_mem, c_gpus, c_milli, c_ext, _ = _container_requests(c)
        cpu, mem, gpus = cpu + c_cpu, mem + c_mem, gpus + c_gpus
        gpu_milli = max(gpu_milli, c_milli)
        for k, v in c_ext.items():
            ext[k] = ext.get(k, 0) + v
    for c in spec.get("initContainers").items():
        i_cpu, i_mem, i_gpus, i_milli, i_ext, _ = _container_requests(c)
        cpu, mem, gpus = max(cpu, i_cpu), max(mem, i_mem), max(gpus, i_gpus)
        gpu_milli = max(gpu_milli, i_milli)
        for k, v in i_ext.items():
            ext[k] = max(ext.get(k, 0), v)
    if gpu_milli and not gpus:
        gpus = 1
    if gpu_milli and gpus > 1 and gpu_milli < MILLI_PER_GPU:
        pass  # several GPUs with the same share each: allowed, the scheduler treats them alike
    owner = None
    for ref in meta.get("ownerReferences").items():
        owner = OwnerReference(ref.require("kind").string(), ref.require("name").string())
        break
    affinity = spec.get("affinity").get("nodeAffinity").get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = parse_node_selector_terms(affinity.get("nodeSelectorTerms"))
    models = tuple(m for m in annotations.get(GPU_MODELS_ANNOTATION, "").split("|") if m)
    return Pod(
        name=name, namespace=meta.get("namespace").string("default"), cpu_milli=cpu, memory_mib=mem,
        num_gpu=gpus, gpu_milli=gpu_milli or (MILLI_PER_GPU if gpus else 0), gpu_models=models,
        extended=ext, priority=spec.get("priority").integer(0), labels=labels, annotations=annotations,
        node_selector=spec.get("nodeSelector").string_map(), required_node_affinity=terms,
        tolerations=tuple(parse_toleration(t) for t in spec.get("tolerations").items()),
        scheduler_name=spec.get("schedulerName").string("default-scheduler"), owner=owner,
        pod_group=labels.get(POD_GROUP_LABEL), node_name=spec.get("nodeName").value or None,
    )


def parse_pod_group(f: Field) -> PodGroup:
    meta = f.get("metadata")
    spec = f.get("spec")
    return PodGroup(meta.require("name").string(), spec.require("minMember").integer(minimum=1),
                    meta.get("namespace").string("default"),
                    spec.get("scheduleTimeoutSeconds").number(60.0, minimum=0))


def parse_node_pool(f: Field) -> list[Node]:
    name = f.require("name").string()
    count = f.require("count").integer(minimum=0)
    cpu = _nonnegative(f.require("cpu"), quantity.cpu_to_milli, "a CPU quantity such as 64")
    mem = _nonnegative(f.require("memory"), quantity.memory_to_mib, "a memory quantity such as 256Gi")
    gpus = f.get("gpus").integer(0, minimum=0)
    model = f.get("gpuModel").string("GPU" if gpus else "")
    gpu_mem = _nonnegative(f.get("gpuMemory"), quantity.memory_to_mib, "GPU memory such as 16Gi") \
        if f.get("gpuMemory").value is not None else 0
    labels = f.get("labels").string_map()
    taints = [parse_taint(t) for t in f.get("taints").items()]
    zones = [z.string() for z in f.get("zones").items()]
    _, _, _, _, ext, pods = _resource_list(f.get("extendedResources"))
    nodes = []
    for i in range(count):
        node_labels = dict(labels)
        if gpus:
            node_labels.setdefault(GPU_MODEL_LABEL, model)
        if zones:
            node_labels[ZONE_LABEL] = zones[i % len(zones)]
        nodes.append(Node(f"{name}-{i:04d}", cpu, mem, [GpuDevice(g, model, gpu_mem) for g in range(gpus)],
                          labels=node_labels, taints=list(taints), extended=dict(ext),
                          max_pods=110 if pods is None else pods))
    return nodes


@dataclass
class ClusterSpec:
    nodes: list[Node] = field(default_factory=list)
    name: str = "cluster"
    # spec.gpuOperator of a Cluster, kept unparsed with its lines: gpufleet.devices reads it (cluster does
    # not know the GPU Operator; a node names its workload, MIG and vGPU config by its nvidia.com/ labels).
    gpu_operator: Field | None = None
    source: str = ""


@dataclass
class WorkloadSpec:
    pods: list[Pod] = field(default_factory=list)
    pod_groups: list[PodGroup] = field(default_factory=list)


def _check_kind(f: Field, allowed: tuple[str, ...]) -> str:
    kind = f.get("kind").value
    if kind not in allowed:
        raise f.get("kind").error(f"expected kind {' or '.join(allowed)}, got {kind!r}")
    api = f.get("apiVersion").value
    if api is None:
        raise f.error("missing required field 'apiVersion'")
    return kind


def load_cluster(path: str | Path) -> ClusterSpec:
    """Nodes from a Cluster spec or from Node documents; duplicate names are an error."""
    spec = ClusterSpec(name=Path(path).stem, source=str(path))
    for doc in document_fields(path):
        kind = _check_kind(doc, ("Cluster", "Node"))
        if kind == "Node":
            spec.nodes.append(parse_node(doc))
            continue
        spec.name = doc.get("metadata").get("name").string(spec.name)
        body = doc.require("spec")
        if body.get("gpuOperator").value is not None:
            spec.gpu_operator = body.get("gpuOperator")
        for n in body.get("nodes").items():
            spec.nodes.append(parse_node(n))
        for pool in body.get("nodePools").items():
            spec.nodes.extend(parse_node_pool(pool))
    if not spec.nodes:
        raise SpecError("no nodes defined (expected a Cluster with spec.nodes or spec.nodePools, or Node "
                        "documents)", file=str(path))
    seen: set[str] = set()
    for n in spec.nodes:
        if n.name in seen:
            raise SpecError(f"duplicate node name {n.name!r}", file=str(path))
        seen.add(n.name)
    return spec


def parse_pod_template(f: Field, index: int) -> list[Pod]:
    """One entry of a Workload's spec.pods, expanded to ``replicas`` pods."""
    name = f.get("name").string(f"pod-{index}")
    replicas = f.get("replicas").integer(1, minimum=0)
    cpu = _nonnegative(f.get("cpu"), quantity.cpu_to_milli, "a CPU quantity") if f.get("cpu").value is not None else 0
    mem = _nonnegative(f.get("memory"), quantity.memory_to_mib, "a memory quantity") \
        if f.get("memory").value is not None else 0
    gpus = f.get("gpus").integer(0, minimum=0)
    gpu_milli = f.get("gpuMilli").integer(MILLI_PER_GPU if gpus else 0, minimum=0)
    if gpu_milli and not gpus:
        gpus = 1
    if gpus and not 0 < gpu_milli <= MILLI_PER_GPU:
        raise f.get("gpuMilli").error(f"expected GPU milli in 1..1000, got {gpu_milli}")
    models = tuple(m.string() for m in f.get("gpuModels").items())
    labels = f.get("labels").string_map()
    arrival = f.get("arrival").number(0.0, minimum=0)
    interval = f.get("interval").number(0.0, minimum=0)
    duration = f.get("duration").value
    duration_s = f.get("duration").number(minimum=0) if duration is not None else None
    tolerations = tuple(parse_toleration(t) for t in f.get("tolerations").items())
    pods = []
    for r in range(replicas):
        created = arrival + r * interval
        pods.append(Pod(
            name=f"{name}-{r}" if replicas > 1 else name, cpu_milli=cpu, memory_mib=mem, num_gpu=gpus,
            gpu_milli=gpu_milli, gpu_models=models, labels=dict(labels), priority=f.get("priority").integer(0),
            node_selector=f.get("nodeSelector").string_map(), tolerations=tolerations,
            creation_time=created, deletion_time=None if duration_s is None else created + duration_s,
            pod_group=labels.get(POD_GROUP_LABEL)))
    return pods


def load_workload(path: str | Path) -> WorkloadSpec:
    """Pods and PodGroups from Pod, PodGroup and Workload documents."""
    out = WorkloadSpec()
    for doc in document_fields(path):
        kind = _check_kind(doc, ("Pod", "PodGroup", "Workload"))
        if kind == "Pod":
            out.pods.append(parse_pod(doc))
        elif kind == "PodGroup":
            out.pod_groups.append(parse_pod_group(doc))
        else:
            for i, entry in enumerate(doc.require("spec").get("pods").items()):
                out.pods.extend(parse_pod_template(entry, i))
    return out
