"""``gpufleet schedule CLUSTER.yaml PODS.yaml``: place the pods of a file on a cluster, once, in queue order.

Each pod is tried once (no retries, no clock): the table says where it went (node and GPU indices) or
why it could not go anywhere, in kube-scheduler's own words ("0/8 nodes are available: ..."). PodGroup
documents are registered with the scheduler, so with a gang policy (``--policy default+gang``) the members
of a group that cannot complete are reported as waiting, none of them bound.
"""

from __future__ import annotations

import argparse
import json

from typing import Callable

from ..cluster import ClusterState, Node, load_cluster, load_workload
from .config import BUILTIN_POLICIES, builtin_profile, load_config
from .scheduler import Scheduler


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "schedule", help="place the pods of a YAML file on a cluster and show where each went",
        description="Place the pods of PODS.yaml on the nodes of CLUSTER.yaml in queue order (priority, then "
                    "file order) and print where each went, or why it could not.")
    p.add_argument("cluster", metavar="CLUSTER.yaml", help="a Cluster spec or Node documents")
    p.add_argument("pods", metavar="PODS.yaml", help="Pod, PodGroup or Workload documents")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--policy", default=None,
                     help=f"a built-in policy: {', '.join(BUILTIN_POLICIES)}, optionally with +gang "
                          "(default: default)")
    how.add_argument("--config", metavar="PROFILE.yaml", help="a KubeSchedulerConfiguration file")
    p.add_argument("--seed", type=int, default=0, help="seed for tie breaking and the Random plugin")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


ClusterLoader = Callable[[str], tuple[str, list[Node]]]


def _spec_nodes(path: str) -> tuple[str, list[Node]]:
    spec = load_cluster(path)
    return spec.name, spec.nodes


def schedule_file(cluster_path: str, pods_path: str, policy: str | None = None, config: str | None = None,
                  seed: int = 0, load_cluster_nodes: ClusterLoader | None = None) -> dict:
    """Schedule the pods of ``pods_path`` on ``cluster_path``; the result as plain data.

    ``load_cluster_nodes(path) -> (name, nodes)`` reads the cluster. The scheduler room may import only
    ``cluster``, so by default the nodes are the spec's plain nodes; the ``gpufleet`` command passes a
    loader from a room that applies the devices view (MIG, vGPU, passthrough, time-slicing resources).
    """
    cluster_name, nodes = (load_cluster_nodes or _spec_nodes)(cluster_path)
    work = load_workload(pods_path)
    profiles = load_config(config) if config else [builtin_profile(policy or "default")]
    cluster = ClusterState(nodes)
    sched = Scheduler(cluster, profiles, seed=seed, clock=lambda: 0.0)
    for group in work.pod_groups:
        sched.add_pod_group(group)
    for pod in work.pods:
        sched.add(pod)
    outcomes = {}
    for outcome in sched.run_until_idle():
        outcomes.setdefault(outcome.pod.uid, outcome)  # each pod is tried once
    rows = []
    for uid, outcome in outcomes.items():
        pod = outcome.pod
        status, node, gpus, message = outcome.status, outcome.node_name, list(outcome.gpu_indices), outcome.message
        if status == "waiting":  # parked at Permit: bound later when its gang completed, or still waiting
            if uid in sched.handle.waiting_pods:
                node, gpus = None, []
                message = f"waiting at Permit for the rest of pod group {pod.pod_group!r}; nothing bound"
            else:
                status, node, gpus = "scheduled", pod.node_name, list(pod.gpu_indices)
        rows.append({
            "pod": pod.key, "status": status, "node": node, "gpus": gpus, "message": message,
            "requests": {"cpu_milli": pod.cpu_milli, "memory_mib": pod.memory_mib, "gpus": pod.num_gpu,
                         "gpu_milli": pod.gpu_milli if pod.num_gpu else 0},
        })
    total = cluster.gpu_total_milli
    return {
        "cluster": cluster_name, "nodes": cluster.num_nodes,
        "profile": config or (policy or "default"),
        "pods": rows,
        "summary": {"pods": len(rows), "scheduled": sum(r["status"] == "scheduled" for r in rows),
                    "gpu_allocated_milli": cluster.gpu_allocated_milli, "gpu_total_milli": total},
    }


def _requests(r: dict) -> str:
    parts = [f"{r['cpu_milli']}m", f"{r['memory_mib']}Mi"]
    if r["gpus"]:
        parts.append(f"{r['gpus']} GPU" if r["gpu_milli"] == 1000 else f"{r['gpus']}x{r['gpu_milli']}m GPU")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    result = schedule_file(args.cluster, args.pods, args.policy, args.config, args.seed,
                           getattr(args, "load_cluster_nodes", None))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{result['cluster']}: {result['nodes']} nodes, profile {result['profile']}")
    for col in ("pod", "requests", "node", "GPUs"):
        table.add_column(col, no_wrap=True)
    table.add_column("result", overflow="fold")
    for r in result["pods"]:
        placed = r["status"] == "scheduled"
        table.add_row(r["pod"], _requests(r["requests"]), r["node"] or "-",
                      ",".join(map(str, r["gpus"])) or "-",
                      r["status"] if placed else f"[red]{r['status']}[/red]: {r['message']}")
    console = Console()
    if not console.is_terminal:  # a pipe or a file: keep each pod on one line
        console = Console(width=200)
    console.print(table)
    s = result["summary"]
    share = 100.0 * s["gpu_allocated_milli"] / s["gpu_total_milli"] if s["gpu_total_milli"] else 0.0
    console.print(f"{s['scheduled']}/{s['pods']} pods placed; GPUs {share:.1f}% allocated "
                  f"({s['gpu_allocated_milli'] / 1000:g} of {s['gpu_total_milli'] // 1000})")
    return 0
