"""``gpufleet devices``: the GPU catalog, NVIDIA config files, per-node device views, KubeVirt manifests."""

from __future__ import annotations

import argparse
import json

import yaml
from rich.console import Console
from rich.table import Table

from ..cluster import GpufleetError, load_cluster


def register(subparsers) -> None:
    dev = subparsers.add_parser(
        "devices", help="GPU partitioning: catalog, MIG/vGPU configs, node workload types, KubeVirt",
        description="GPU devices as the NVIDIA GPU Operator configures them (docs/devices.md).")
    sub = dev.add_subparsers(dest="devices_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser("show", help="per node: workload type, GPUs, partition layout, advertised resources")
    show.add_argument("cluster", help="a Cluster/Node YAML spec")
    show.add_argument("--json", action="store_true", help="JSON instead of a table")
    show.set_defaults(func=run_show)
    kv = sub.add_parser("kubevirt", help="the KubeVirt CR patch permitting the cluster's GPUs, or a VMI")
    kv.add_argument("cluster", help="a Cluster/Node YAML spec")
    kv.add_argument("--vmi", metavar="NAME", help="render a VirtualMachineInstance NAME instead of the CR patch")
    kv.add_argument("--gpu", metavar="RESOURCE", help="with --vmi: the GPU resource, e.g. nvidia.com/GA102GL_A10")
    kv.add_argument("--count", type=int, default=1, help="with --vmi: how many GPUs (default 1)")
    kv.set_defaults(func=run_kubevirt)
    cat = sub.add_parser("catalog", help="the GPU catalog, or one model's MIG and vGPU profiles")
    cat.add_argument("model", nargs="?", help="a model name such as A100-40GB")
    cat.set_defaults(func=run_catalog)
    chk = sub.add_parser("check", help="parse a mig-parted or vgpu-device-manager config file")
    chk.add_argument("file")
    chk.set_defaults(func=run_check)


def _configure(path: str):
    from .workload import configure_cluster
    return configure_cluster(load_cluster(path))


def run_show(args: argparse.Namespace) -> int:
    nodes = _configure(args.cluster)
    rows = []
    for nd in nodes:
        rows.append({"node": nd.node.name, "workload": nd.workload,
                     "gpus": [{"index": g.index, "model": g.model_name, "layout": g.layout} for g in nd.gpus],
                     "configs": nd.config_names, "components": nd.components,
                     "allocatable": {k: str(v) for k, v in sorted(nd.advertised.items())}})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"GPU devices ({args.cluster})")
    for col in ("node", "workload", "GPUs", "partition layout", "advertised (allocatable)"):
        table.add_column(col)
    for r, nd in zip(rows, nodes):
        models = {}
        for g in nd.gpus:
            models[g.model_name] = models.get(g.model_name, 0) + 1
        layouts = sorted({f"{g.layout}" for g in nd.gpus})
        table.add_row(r["node"], r["workload"] or "-", ", ".join(f"{n} x {m}" for m, n in models.items()) or "-",
                      "\n".join(layouts) or "-", json.dumps(r["allocatable"]) if r["allocatable"] else "-")
    Console(width=160).print(table)
    return 0


def run_kubevirt(args: argparse.Namespace) -> int:
    from .kubevirt import kubevirt_patch, vmi_manifest
    nodes = _configure(args.cluster)
    if args.vmi:
        if not args.gpu:
            raise GpufleetError("--vmi needs --gpu RESOURCE (e.g. nvidia.com/GA102GL_A10)")
        doc = vmi_manifest(args.vmi, args.gpu, nodes, args.count)
    else:
        if args.gpu:
            raise GpufleetError("--gpu goes with --vmi NAME")
        doc = kubevirt_patch(nodes)
    print(yaml.safe_dump(doc, sort_keys=False), end="")
    return 0


def run_catalog(args: argparse.Namespace) -> int:
    from .catalog import load_catalog
    cat = load_catalog()
    console = Console(width=160)
    if args.model is None:
        table = Table(title="GPU catalog")
        for col in ("model", "memory", "SMs", "PCI", "passthrough resource", "MIG profiles", "vGPU types",
                    "unverified"):
            table.add_column(col)
        for m in cat.models.values():
            table.add_row(m.name, f"{m.memory_mib // 1024} GiB", str(m.sm_count), m.pci_vendor_selector,
                          m.passthrough_resource, str(len(m.mig.profiles)) if m.mig else "-", str(len(m.vgpu)),
                          ", ".join(m.unverified) or "-")
        console.print(table)
        console.print("Sources: gpufleet/devices/catalog.yaml (header); 'unverified': no stored public source "
                      "confirmed the field (docs/devices.md).")
        return 0
    m = cat.find(args.model)
    if m is None:
        raise GpufleetError(f"unknown GPU model {args.model!r} (expected one of {', '.join(cat.names())})")
    if m.mig:
        t = Table(title=f"{m.name} MIG profiles ({m.mig.compute_slices} compute, {m.mig.memory_slices} memory slices)")
        for col in ("profile", "compute", "memory", "max instances", "placements", "resource"):
            t.add_column(col)
        for p in m.mig.profiles.values():
            t.add_row(p.name, str(p.compute), str(p.memory), str(p.max_instances),
                      "{" + ",".join(map(str, p.placements)) + f"}}:{p.memory}", p.resource)
        console.print(t)
    if m.unverified:
        console.print(f"{m.name}: unverified (no stored public source confirmed): {', '.join(m.unverified)}")
    t = Table(title=f"{m.name} vGPU types")
    for col in ("type", "frame buffer", "max per GPU", "resource"):
        t.add_column(col)
    for p in m.vgpu.values():
        t.add_row(p.name, f"{p.framebuffer_mib} MiB", str(p.max_per_gpu), p.resource)
    console.print(t)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from .configs import load_config_file
    f = load_config_file(args.file)
    print(f"{args.file}: {f.kind}-configs, {len(f.configs)} configs: {', '.join(list(f.configs)[:12])}"
          + (", ..." if len(f.configs) > 12 else ""))
    return 0
