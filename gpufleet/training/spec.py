"""The TrainingJob spec: a Kubernetes-shaped YAML, validated on load.

```yaml
apiVersion: gpufleet.io/v1alpha1
kind: TrainingJob
metadata:
  name: ddp-regression
  namespace: default            # for --render k8s
spec:
  script: ddp_regression.py     # a Python script (relative to this file), or:
  # command: [python, -m, mypkg.train]
  args: [--steps, "60"]
  nnodes: 2                     # or "MIN:MAX" (elastic; MIN is the gang's minMember on Kubernetes)
  nprocPerNode: 2               # worker processes per node (one per GPU, usually)
  resources:                    # per worker pod (one pod per node): cpu, memory, nvidia.com/gpu
    cpu: "4"
    memory: 8Gi
    nvidia.com/gpu: 2
  maxRestarts: 3                # every worker restarts when one fails, at most this many times
  checkpointDir: /tmp/ddp-ckpt  # given to the workers as GPUFLEET_CHECKPOINT_DIR
  env: {NCCL_DEBUG: WARN}
  image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime   # --render k8s only
  priority: 0                   # --render k8s: pod priority for gang preemption
  scheduleTimeoutSeconds: 600   # --render k8s: the PodGroup's Permit timeout
```

Every error names the file, the line and the field (``job.yaml:9: spec.nnodes: ...``) and the CLI exits 2
without starting anything: a missing command, ``nnodes: 0``, ``nnodes: "4:2"``, a script that does not
exist (checked when the job is started here; for --render the script lives in the image).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..cluster import GPU_RESOURCE, SpecError
from ..cluster import quantity
from ..cluster.spec import Field, document_fields

API_VERSION = "gpufleet.io/v1alpha1"
KIND = "TrainingJob"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label (Job and Service names)


@dataclass
class WorkerResources:
    cpu_milli: int = 0
    memory_mib: int = 0
    gpus: int = 0
    raw: dict[str, str] = field(default_factory=dict)  # as written, for the manifests


@dataclass
class TrainingJob:
    name: str
    command: list[str]  # the worker command without args; a script is [python, -u, /abs/script.py]
    args: list[str] = field(default_factory=list)
    script: Path | None = None  # absolute path when the job is a Python script
    min_nodes: int = 1
    max_nodes: int = 1
    nproc_per_node: int = 1
    resources: WorkerResources = field(default_factory=WorkerResources)
    max_restarts: int = 0
    checkpoint_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"
    image: str | None = None
    priority: int = 0
    schedule_timeout_seconds: float = 600.0
    source: str = "<command line>"
    script_arg: str | None = None  # the script as written (relative paths kept, for the manifests)

    @property
    def nnodes(self) -> int:
        """Nodes started on this machine: the maximum (all local nodes are alike)."""
        return self.max_nodes

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    @property
    def nnodes_text(self) -> str:
        return str(self.max_nodes) if self.min_nodes == self.max_nodes else f"{self.min_nodes}:{self.max_nodes}"

    def full_command(self) -> list[str]:
        return [*self.command, *self.args]

    def check_runnable(self) -> None:
        """Before starting processes here: the script must exist."""
        if self.script is not None and not self.script.is_file():
            where = "spec.script" if self.source != "<command line>" else "script"
            raise SpecError(f"{self.script_arg!r} does not exist (looked for {self.script})",
                            file=None if self.source == "<command line>" else self.source, field=where)


def parse_nnodes(value, where: Field | None = None) -> tuple[int, int]:
    """``2`` -> (2, 2); ``"1:4"`` -> (1, 4). Errors name the field: nnodes must be >= 1, min <= max."""
    def fail(msg: str):
        if where is not None:
            return where.error(msg)
        return SpecError(msg, field="--nnodes")
    if isinstance(value, bool) or value is None:
        raise fail(f"expected a number of nodes or MIN:MAX, got {value!r}")
    text = str(value).strip()
    parts = text.split(":")
    if len(parts) > 2 or not all(re.fullmatch(r"-?\d+", p.strip()) for p in parts):
        raise fail(f"expected a number of nodes or MIN:MAX such as 1:4, got {value!r}")
    lo, hi = (int(parts[0]), int(parts[-1]))
    if lo < 1 or hi < 1:
        raise fail(f"must be at least 1 node, got {value!r}")
    if lo > hi:
        raise fail(f"MIN:MAX with MIN > MAX ({lo} > {hi}); expected MIN <= MAX such as {hi}:{lo}")
    return lo, hi


def _resources(f: Field) -> WorkerResources:
    out = WorkerResources()
    for name, v in f.keys_fields():
        if isinstance(v.value, (dict, list)) or v.value is None:
            raise v.error("expected a quantity")
        out.raw[name] = str(v.value)
        if name == "cpu":
            out.cpu_milli = v.convert(quantity.cpu_to_milli, "a CPU quantity such as 4 or 500m")
        elif name == "memory":
            out.memory_mib = v.convert(quantity.memory_to_mib, "a memory quantity such as 16Gi")
        elif name == GPU_RESOURCE:
            out.gpus = v.integer(minimum=0)
        else:
            v.convert(quantity.count, f"a whole number of {name}")
    return out


def script_command(script: Path) -> list[str]:
    return [sys.executable, "-u", str(script)]


def parse_training_job(f: Field) -> TrainingJob:
    kind = f.get("kind").value
    if kind != KIND:
        raise f.get("kind").error(f"expected kind {KIND}, got {kind!r}")
    if f.get("apiVersion").value is None:
        raise f.error("missing required field 'apiVersion' (expected gpufleet.io/v1alpha1)")
    meta = f.get("metadata")
    name = meta.require("name").string()
    if not NAME_RE.match(name) or len(name) > 52:
        raise meta.get("name").error(f"expected a lowercase RFC 1123 name of at most 52 characters "
                                     f"(letters, digits, '-'), got {name!r}")
    spec = f.require("spec")
    known = {"script", "command", "args", "nnodes", "nprocPerNode", "resources", "maxRestarts", "checkpointDir",
             "env", "image", "priority", "scheduleTimeoutSeconds"}
    for key, sub in spec.keys_fields():
        if key not in known:
            raise sub.error(f"unknown field (expected one of {', '.join(sorted(known))})")
    base = Path(f.file).resolve().parent
    script_f, command_f = spec.get("script"), spec.get("command")
    if script_f.value is not None and command_f.value is not None:
        raise command_f.error("give either spec.script or spec.command, not both")
    script = None
    script_arg = None
    if script_f.value is not None:
        script_arg = script_f.string()
        if not script_arg.strip():
            raise script_f.error("expected the path of a Python script, got an empty string")
        script = Path(script_arg) if Path(script_arg).is_absolute() else base / script_arg
        command = script_command(script)
    elif command_f.value is not None:
        if isinstance(command_f.value, str):
            command = shlex.split(command_f.value)
        else:
            command = [c.string() for c in command_f.items()]
        if not command:
            raise command_f.error("expected a command (a list such as [python, train.py]), got an empty one")
    else:
        raise SpecError("missing command (expected spec.script: a Python script, or spec.command: a list)",
                        file=f.file, line=spec.line, field="spec.command")
    args = [a.string() for a in spec.get("args").items()]
    nnodes_f = spec.get("nnodes")
    lo, hi = parse_nnodes(nnodes_f.value if nnodes_f.value is not None else 1, nnodes_f)
    nproc = spec.get("nprocPerNode").integer(1, minimum=1)
    env = spec.get("env").string_map()
    for key in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise spec.get("env").get(key).error(f"expected an environment variable name, got {key!r}")
    ckpt = spec.get("checkpointDir")
    return TrainingJob(
        name=name, command=command, args=args, script=script, min_nodes=lo, max_nodes=hi, nproc_per_node=nproc,
        resources=_resources(spec.get("resources")), max_restarts=spec.get("maxRestarts").integer(0, minimum=0),
        checkpoint_dir=ckpt.string() if ckpt.value is not None else None, env=env,
        namespace=meta.get("namespace").string("default"),
        image=spec.get("image").string() if spec.get("image").value is not None else None,
        priority=spec.get("priority").integer(0),
        schedule_timeout_seconds=spec.get("scheduleTimeoutSeconds").number(600.0, minimum=1),
        source=f.file, script_arg=script_arg)


def load_training_job(path: str | Path) -> TrainingJob:
    """The one TrainingJob of a YAML file."""
    docs = document_fields(path)
    if len(docs) != 1:
        raise SpecError(f"expected one {KIND} document, found {len(docs)}", file=str(path))
    return parse_training_job(docs[0])
