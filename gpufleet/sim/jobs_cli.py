"""``gpufleet sim-jobs``: replay a training-job trace under FIFO, shortest-first and Tiresias-style LAS queues.

    gpufleet sim-jobs --jobs examples/training/job_trace.yaml --queue fifo,sjf,las --out out/jobs
    gpufleet sim-jobs --jobs trace.csv --cluster examples/cluster.yaml --policy spread --queue las

Prints a table (JCT and queueing-delay percentiles, mean GPU utilisation, preemptions), writes
``jobs.png`` (GPU utilisation over time, JCT CDF) and ``jobs.json`` (every job of every run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..cluster import GpufleetError, Node
from .jobs import DEFAULT_LAS_THRESHOLDS, QUEUE_POLICIES, plot_jobs, read_job_trace, run_jobs, write_jobs_json
from .traces import read_nodes


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim-jobs", help="simulate gang-scheduled training jobs from a trace under fifo, sjf and las queues",
        description="Replay a job trace (YAML JobTrace or CSV: name,submit_time,workers,gpus_per_worker,duration) "
                    "on a simulated cluster. Each job is a gang (all workers bind or none). Queue policies: "
                    "fifo, sjf (shortest job first, duration as an oracle), las (Tiresias' discretised "
                    "least-attained-service with gang preemption).")
    p.add_argument("--jobs", required=True, metavar="FILE", help="the job trace (YAML or CSV)")
    p.add_argument("--cluster", metavar="FILE", help="a YAML Cluster/Node spec or an openb node CSV "
                                                      "(default: --nodes nodes with --gpus-per-node GPUs)")
    p.add_argument("--nodes", type=int, default=8, help="nodes of the default cluster (default 8)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node of the default cluster (default 8)")
    p.add_argument("--queue", default="fifo,sjf,las", help="queue policies, comma separated (default fifo,sjf,las)")
    p.add_argument("--policy", default="binpack", help="the built-in placement policy under the gang plugin")
    p.add_argument("--las-thresholds", default=",".join(f"{t:g}" for t in DEFAULT_LAS_THRESHOLDS),
                   help="LAS queue thresholds in GPU-seconds (default 3600,36000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="out/jobs", metavar="DIR")
    p.set_defaults(func=run_sim_jobs)


def run_sim_jobs(args: argparse.Namespace) -> int:
    queues = [q.strip() for q in args.queue.split(",") if q.strip()]
    bad = [q for q in queues if q not in QUEUE_POLICIES]
    if not queues or bad:
        raise GpufleetError(f"--queue: expected some of {', '.join(QUEUE_POLICIES)}, got {args.queue!r}")
    try:
        thresholds = [float(t) for t in args.las_thresholds.split(",") if t.strip()]
    except ValueError:
        raise GpufleetError(f"--las-thresholds: expected GPU-seconds such as 3600,36000, got "
                            f"{args.las_thresholds!r}") from None
    if args.cluster:
        nodes = read_nodes(args.cluster)
    else:
        if args.nodes < 1 or args.gpus_per_node < 1:
            raise GpufleetError("--nodes and --gpus-per-node: expected positive numbers")
        nodes = [Node.with_gpus(f"gpu-{i:03d}", 96000, 768 * 1024, args.gpus_per_node, "A100")
                 for i in range(args.nodes)]
    jobs = read_job_trace(args.jobs)
    results = [run_jobs(nodes, jobs, q, args.policy, args.seed, thresholds) for q in queues]
    console = Console(width=max(Console().width, 120))
    gpus = sum(n.gpu_count for n in nodes)
    table = Table(title=f"{len(jobs)} jobs from {Path(args.jobs).name} on {len(nodes)} nodes / {gpus} GPUs "
                        f"({args.policy} placement, gang scheduling)")
    for col in ("queue", "finished", "JCT mean", "JCT p50", "JCT p90", "JCT p99", "delay mean", "delay p90",
                "mean GPU util %", "makespan", "preemptions"):
        table.add_column(col, justify="left" if col == "queue" else "right")

    def h(v):
        return "-" if v is None else f"{v / 3600:.2f} h" if v >= 3600 else f"{v / 60:.1f} min" if v >= 60 else f"{v:.0f} s"
    for r in results:
        table.add_row(r.queue, f"{r.finished} / {r.jobs}", h(r.mean_jct), h(r.jct["p50"]), h(r.jct["p90"]),
                      h(r.jct["p99"]), h(r.mean_queueing_delay), h(r.queueing_delay["p90"]),
                      f"{r.mean_utilisation:.1f}", h(r.makespan), str(r.preemptions))
    console.print(table)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        plot = plot_jobs(results, out / "jobs.png", f"{Path(args.jobs).name}: {len(nodes)} nodes, {gpus} GPUs")
        data = write_jobs_json(results, out / "jobs.json", {"trace": str(args.jobs), "nodes": len(nodes),
                                                            "gpus": gpus, "policy": args.policy,
                                                            "las_thresholds": thresholds, "seed": args.seed})
    except OSError as exc:
        raise GpufleetError(f"cannot write results to {out}: {exc.strerror or exc}") from None
    console.print(f"plot: {plot}\nnumbers: {data}", highlight=False)
    return 0
