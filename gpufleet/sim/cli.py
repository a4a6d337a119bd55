"""``gpufleet sim`` (run an experiment on given cluster and workload files) and ``gpufleet demo``
(the same on the built-in synthetic openb-like cluster and workload, no files needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..cluster import GpufleetError
from .experiment import Experiment, ExperimentResult, parse_seeds, resolve_policies, run_experiment
from .report import print_tables, write_outputs
from .synthetic import synthetic_nodes, synthetic_pods_for
from .traces import read_nodes, read_pods

DEMO_POLICIES = "random,spread,binpack"


def register(subparsers) -> None:
    sim = subparsers.add_parser(
        "sim", help="simulate scheduling policies on a cluster and workload (fill or replay)",
        description="Run scheduling policies over seeds on a simulated cluster. fill: pods arrive in a "
                    "seeded order until 1.3x the GPU capacity has arrived and never leave (the FGD paper's "
                    "experiment); replay: pods arrive at creation_time, run, leave, and pending pods wait.")
    sim.add_argument("--cluster", required=True, metavar="FILE",
                     help="cluster: a YAML Cluster/Node spec or an openb node CSV")
    sim.add_argument("--workload", required=True, metavar="FILE",
                     help="workload: a YAML Workload/Pod spec or an openb pod CSV")
    policy = sim.add_mutually_exclusive_group()
    policy.add_argument("--policy", default=None, metavar="NAMES",
                        help="built-in policies, comma separated (default, random, spread, binpack); "
                             f"default {DEMO_POLICIES}")
    policy.add_argument("--config", metavar="FILE", help="a KubeSchedulerConfiguration YAML instead of --policy")
    sim.add_argument("--mode", choices=("fill", "replay"), default="fill", help="default fill")
    sim.add_argument("--seeds", default="42", help="FIRST..LAST or a comma-separated list (default 42)")
    sim.add_argument("--out", default="out/sim", metavar="DIR", help="output directory (default out/sim)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=run_sim)

    demo = subparsers.add_parser(
        "demo", help="compare random, spread and binpack in fill mode on a built-in openb-like cluster",
        description="Fill mode on a built-in synthetic cluster (openb's node mix) and workload (openb's "
                    "request statistics): random, spread and binpack over a few seeds. Needs no files.")
    demo.add_argument("--out", default="out/demo", metavar="DIR", help="output directory (default out/demo)")
    demo.add_argument("--nodes", type=int, default=200, help="cluster size (default 200)")
    demo.add_argument("--seeds", default="42..44", help="FIRST..LAST or a comma-separated list (default 42..44)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=run_demo)


def run_sim(args: argparse.Namespace) -> int:
    experiment = Experiment(
        name=f"{Path(args.workload).stem} on {Path(args.cluster).stem}", mode=args.mode,
        nodes=read_nodes(args.cluster), pods=read_pods(args.workload),
        policies=resolve_policies(args.policy if args.config or args.policy else DEMO_POLICIES, args.config),
        seeds=parse_seeds(args.seeds), sources={"cluster": str(args.cluster), "workload": str(args.workload)})
    return run_and_report(experiment, args.out, args.quiet)


def run_demo(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        raise GpufleetError(f"--nodes: expected a positive number of nodes, got {args.nodes}")
    nodes = synthetic_nodes(args.nodes)
    experiment = Experiment(
        name=f"synthetic openb-like workload on {len(nodes)} nodes", mode="fill", nodes=nodes,
        pods=synthetic_pods_for(nodes, seed=0), policies=resolve_policies(DEMO_POLICIES, None),
        seeds=parse_seeds(args.seeds), sources={"cluster": "built-in synthetic", "workload": "built-in synthetic"})
    return run_and_report(experiment, args.out, args.quiet)


def run_and_report(experiment: Experiment, out_dir: str, quiet: bool) -> int:
    console = Console()
    show = not quiet and console.is_terminal
    if not console.is_terminal:
        console = Console(width=120)  # a log or a pipe: do not wrap the tables to 80 columns
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not show, transient=True) as progress:
        unit = "arrived-demand percents" if experiment.mode == "fill" else "pods"
        task = progress.add_task(f"{experiment.mode}: {len(experiment.policies)} policies x "
                                 f"{len(experiment.seeds)} seeds ({unit})", total=experiment.progress_total)
        result: ExperimentResult = run_experiment(experiment, lambda n: progress.advance(task, n))
    print_tables(result, console)
    try:
        paths = write_outputs(result, out_dir)
    except OSError as exc:
        raise GpufleetError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None
    console.print(f"plot: {paths['plot']}\nnumbers: {', '.join(str(p) for k, p in paths.items() if k != 'plot')}",
                  highlight=False)
    return 0
