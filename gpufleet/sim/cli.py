"""``gpufleet sim`` (run an experiment on given cluster and workload files) and ``gpufleet demo``
(the same on the built-in synthetic openb-like cluster and workload, no files needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..cluster import GpufleetError
from ..shared_data import shared_path
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
    sim.add_argument("--cluster", metavar="FILE",
                     help="cluster: a YAML Cluster/Node spec or an openb node CSV (required unless --experiment)")
    sim.add_argument("--workload", metavar="FILE",
                     help="workload: a YAML Workload/Pod spec or an openb pod CSV (required unless --experiment)")
    sim.add_argument("--experiment", choices=("fgd",), default=None,
                     help="fgd: the FGD paper's experiment on the openb traces as its simulator runs it "
                          "(docs/fgd.md); uses --data, --traces, --policy, --seeds, --out")
    sim.add_argument("--data", metavar="DIR", default=None,
                     help="--experiment fgd: the openb directory (default $GPUFLEET_SHARED/data/openb or "
                          "../shared/data/openb)")
    sim.add_argument("--traces", metavar="NAMES", default="repro",
                     help="--experiment fgd: trace names (default, cpu250, ...), 'repro' (the 5 reproduction "
                          "traces, default) or 'all' (the paper's 17)")
    sim.add_argument("--force", action="store_true", help="--experiment fgd: rerun runs already saved")
    sim.add_argument("--report-only", action="store_true",
                     help="--experiment fgd: only aggregate the runs saved in --out")
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

    from .jobs_cli import register as register_jobs  # gpufleet sim-jobs: training-job traces

    register_jobs(subparsers)


def run_sim(args: argparse.Namespace) -> int:
    if args.experiment == "fgd":
        return run_fgd(args)
    if not args.cluster or not args.workload:
        raise GpufleetError("--cluster and --workload are required (or give --experiment fgd)")
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


def run_fgd(args: argparse.Namespace) -> int:
    """``gpufleet sim --experiment fgd``: the sweep (runs not yet saved under --out), then the report."""

    from .fgd_experiment import FGD_TRACES, PAPER_POLICIES, REPRODUCTION_TRACES, run_sweep, write_report
    data = Path(args.data) if args.data else shared_path("data", "openb")
    traces = {"repro": list(REPRODUCTION_TRACES), "all": list(FGD_TRACES)}.get(
        args.traces, [t.strip() for t in args.traces.split(",") if t.strip()])
    policies = [p.strip() for p in (args.policy or ",".join(PAPER_POLICIES)).split(",") if p.strip()]
    if args.config:
        raise GpufleetError("--experiment fgd takes built-in --policy names, not --config")
    seeds = parse_seeds(args.seeds if args.seeds != "42" else "42..51")
    out = Path(args.out if args.out != "out/sim" else "out/fgd")
    console = Console(width=140)
    if not args.report_only:
        from ..scheduler import builtin_profile
        for p in policies:
            builtin_profile(p)  # unknown names fail here, before any run
        run_sweep(data, traces, policies, seeds, out, force=args.force,
                  log=(lambda m: None) if args.quiet else lambda m: console.print(m, highlight=False))
    try:
        text, paths = write_report(out, data)
    except OSError as exc:
        raise GpufleetError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    console.print(text, highlight=False, markup=False)
    console.print(f"written: {', '.join(str(p) for p in paths)}", highlight=False)
    return 0
