"""Trace readers: the openb node and pod CSVs, and our own YAML cluster and workload specs.

openb (Alibaba cluster-trace-gpu-v2023, as used by the FGD paper, USENIX ATC'23):

* node list: ``sn,cpu_milli,memory_mib,gpu,model`` - one node per row, ``gpu`` GPUs of ``model``;
* pod list: ``name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,
  deletion_time,scheduled_time`` (the multigpu* variants have only the first five columns).
  ``gpu_milli`` is per GPU (1000 = whole); ``gpu_spec`` lists the allowed GPU models joined by ``|``
  (empty = any); times are seconds. ``qos``, ``pod_phase`` and ``scheduled_time`` are not used.

A row that does not parse raises SpecError ``FILE:LINE: COLUMN: expected an integer, got 'abc'``.
YAML specs go through gpufleet.cluster.load_cluster / load_workload. :func:`read_nodes` and
:func:`read_pods` pick the reader by file suffix (``.csv`` = openb, anything else = YAML).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
from pathlib import Path
from typing import Iterator

from ..cluster import MILLI_PER_GPU, Node, Pod, SpecError, load_cluster, load_workload

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")  # required; the rest optional


_copy_counter = itertools.count()


def _rows(path: str | Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; SpecError for a missing file, column or a short row."""
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise SpecError("empty file (expected a CSV header)", file=str(path), line=1)
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise SpecError(f"missing column(s) {', '.join(missing)} (expected {','.join(required)})",
                            file=str(path), line=1)
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise SpecError(f"expected {len(header)} fields, got {len(values)}", file=str(path), line=line)
            yield line, dict(zip(header, (v.strip() for v in values)))


def _integer(row: dict[str, str], column: str, path, line: int, minimum: int = 0,
             maximum: int | None = None) -> int:
    text = row[column]
    try:
        value = int(text)
    except ValueError:
        raise SpecError(f"expected an integer, got {text!r}", file=str(path), line=line, field=column) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise SpecError(f"expected an integer {bound}, got {value}", file=str(path), line=line, field=column)
    return value


def _seconds(row: dict[str, str], column: str, path, line: int) -> float | None:
    text = row.get(column, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SpecError(f"expected a number of seconds >= 0, got {text!r}", file=str(path), line=line,
                        field=column)
    return value


def read_openb_nodes(path: str | Path) -> list[Node]:
    nodes = []
    for line, row in _rows(path, NODE_COLUMNS):
        nodes.append(Node.with_gpus(row["sn"], _integer(row, "cpu_milli", path, line),
                                    _integer(row, "memory_mib", path, line),
                                    _integer(row, "gpu", path, line), row["model"]))
    if not nodes:
        raise SpecError("no nodes (expected one row per node)", file=str(path))
    return nodes


def read_openb_pods(path: str | Path) -> list[Pod]:
    pods = []
    for line, row in _rows(path, POD_COLUMNS):
        num_gpu = _integer(row, "num_gpu", path, line)
        gpu_milli = _integer(row, "gpu_milli", path, line, maximum=MILLI_PER_GPU)
        if num_gpu and not gpu_milli:
            raise SpecError("expected 1..1000 for a pod that asks for GPUs, got 0", file=str(path), line=line,
                            field="gpu_milli")
        created = _seconds(row, "creation_time", path, line) or 0.0
        deleted = _seconds(row, "deletion_time", path, line)
        if deleted is not None and deleted < created:
            raise SpecError(f"deletion_time {deleted:g} is before creation_time {created:g}", file=str(path),
                            line=line, field="deletion_time")
        pods.append(Pod(row["name"], _integer(row, "cpu_milli", path, line),
                        _integer(row, "memory_mib", path, line), num_gpu, gpu_milli if num_gpu else 0,
                        tuple(m for m in row.get("gpu_spec", "").split("|") if m),
                        creation_time=created, deletion_time=deleted))
    return pods


def read_nodes(path: str | Path) -> list[Node]:
    """Nodes from an openb node CSV or a YAML cluster spec."""
    if str(path).endswith(".csv"):
        return read_openb_nodes(path)
    from ..devices import scheduler_nodes  # the GPU Operator's view: MIG, vGPU, passthrough, time-slicing
    return scheduler_nodes(load_cluster(path))


def read_cluster(path: str | Path) -> tuple[str, list[Node]]:
    """A cluster's name and scheduler nodes, as :func:`read_nodes` reads them (the devices view for YAML).

    The loader the ``gpufleet`` command hands to ``gpufleet schedule`` (the scheduler room may not import
    devices): an openb node CSV is named after its file.
    """
    if str(path).endswith(".csv"):
        return Path(path).stem, read_openb_nodes(path)
    from ..devices import scheduler_nodes
    spec = load_cluster(path)
    return spec.name, scheduler_nodes(spec)


def read_pods(path: str | Path) -> list[Pod]:
    """Pods from an openb pod CSV or a YAML workload spec (Pod or Workload documents)."""
    if str(path).endswith(".csv"):
        return read_openb_pods(path)
    pods = load_workload(path).pods
    if not pods:
        raise SpecError("no pods (expected Pod or Workload documents)", file=str(path))
    return pods


def fresh_copy(pod: Pod, name: str | None = None) -> Pod:
    """An unscheduled copy of a trace pod with its own uid (a run mutates the pods it binds)."""
    name = name or pod.name
    return dataclasses.replace(pod, name=name, uid=f"{name}#{next(_copy_counter)}", labels=dict(pod.labels),
                               annotations=dict(pod.annotations), gpu_indices=())
