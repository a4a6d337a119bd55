"""``gpufleet serve``: plan, simulate and profile multi-model inference on shared GPUs.

    gpufleet serve plan models.yaml [--planner NAME] [--gpus N] [--json]
    gpufleet serve sim models.yaml --rates classifier=200,digits=100 [--duration 10] [--trace FILE]
                                   [--process poisson|uniform] [--out DIR]
    gpufleet serve profile --arch mlp --out profiles.csv [--partitions 50,100]
    gpufleet serve run models.yaml [--host 127.0.0.1] [--port N] [--device cpu|cuda] [--max-queue N]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from .errors import ServingError


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve", help="plan, simulate and profile multi-model inference on shared GPUs",
                                  description="Multi-model inference on shared GPUs: GPULet, Nexus SBP, greedy "
                                              "best-fit and one-model-per-GPU planners, a request simulator and a "
                                              "profiler. See docs/serving.md.")
    sub = serve.add_subparsers(dest="serve_command", metavar="SUBCOMMAND", required=True)
    plan = sub.add_parser("plan", help="print the plan for an InferenceService spec")
    plan.add_argument("spec", help="models.yaml (kind InferenceService)")
    plan.add_argument("--planner", help="override spec.planner")
    plan.add_argument("--gpus", type=int, help="override spec.gpus")
    plan.add_argument("--rates", default="", help="override rates: MODEL=RPS,...")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=run_plan)

    sim = sub.add_parser("sim", help="plan, then simulate requests against the plan")
    sim.add_argument("spec")
    sim.add_argument("--rates", default="", help="request rates MODEL=RPS,... (default: spec rateRps)")
    sim.add_argument("--planner", help="override spec.planner")
    sim.add_argument("--gpus", type=int, help="override spec.gpus")
    sim.add_argument("--duration", type=float, default=10.0, help="simulated seconds (default 10)")
    sim.add_argument("--trace", help="CSV of requests (model,arrival_ms) replacing the Poisson streams")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--process", choices=("poisson", "uniform"), default="poisson",
                     help="arrivals: poisson (default) or uniform (evenly spaced at each partition's planned "
                          "rate: checks the plan against its own assumption)")
    sim.add_argument("--out", default="out/serve", help="directory for sim.json and sim.png (default out/serve)")
    sim.add_argument("--json", action="store_true", help="print the result as JSON")
    sim.set_defaults(func=run_sim)

    prof = sub.add_parser("profile", help="measure L(batch, partition) of a built-in model on this CPU")
    prof.add_argument("--arch", default="mlp", help="mlp | lenet | convnet (default mlp)")
    prof.add_argument("--name", help="model name in the CSV (default: the arch)")
    prof.add_argument("--partitions", default="50,100", help="core shares in percent (default 50,100)")
    prof.add_argument("--batches", default="1,2,4,8,16,32")
    prof.add_argument("--out", required=True, help="CSV to write")
    prof.set_defaults(func=run_profile)

    run = sub.add_parser("run", help="serve the spec's models over HTTP (router + per-partition workers)",
                         description="Plan the spec's rates, start one worker process per partition and serve "
                                     "POST /v1/models/NAME/infer, /healthz and /metrics until SIGINT/SIGTERM. "
                                     "See docs/serving.md.")
    run.add_argument("spec", help="models.yaml (kind InferenceService)")
    run.add_argument("--host", help="address to bind (default spec.runtime.host, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default spec.runtime.port; 0 picks a free one)")
    run.add_argument("--planner", help="override spec.planner")
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                     help="cpu: partitions are core shares; cuda: MPS active-thread percentages (default cpu)")
    run.add_argument("--max-queue", type=int, help="override spec.runtime.maxQueue (requests queued per model)")
    run.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    run.set_defaults(func=run_serve)


def parse_rates(text: str) -> dict[str, float]:
    rates = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not name or rate < 0:
            raise ServingError(f"--rates: expected MODEL=RPS with RPS >= 0, got {item!r}")
        rates[name.strip()] = rate
    return rates


def _plan(args):
    from .planners import make_plan
    from .spec import load_service

    service = load_service(args.spec)
    rates = parse_rates(args.rates)
    unknown = sorted(set(rates) - {m.name for m in service.models})
    if unknown:
        raise ServingError(f"--rates: unknown model {unknown[0]!r} (spec has {', '.join(m.name for m in service.models)})")
    profiles = service.profiles()
    planner = args.planner or service.planner
    gpus = args.gpus or service.gpus
    plan = make_plan(planner, service.demands(rates), profiles, max_gpus=gpus,
                     interference=service.interference, partitions=service.partitions)
    return service, profiles, plan


def print_plan(plan, console) -> None:
    from rich.table import Table

    table = Table(title=f"{plan.planner}: {plan.gpus_used} GPUs" + ("" if plan.feasible else " (NOT all rate placed)"))
    for col in ("GPU", "partition %", "duty ms", "model", "batch", "rate req/s", "capacity req/s",
                "batch ms", "worst latency ms", "SLO ms"):
        table.add_column(col)
    for gi, part in plan.partitions():
        for a in part.allocations:
            table.add_row(str(gi), str(part.percent), f"{part.duty_cycle_ms:.1f}", a.model, str(a.batch),
                          f"{a.rate_rps:.1f}", f"{part.capacity_rps(a):.1f}", f"{a.latency_ms:.2f}",
                          f"{part.predicted_latency_ms(a):.1f}", f"{a.slo_ms:g}")
    console.print(table)
    for model, rate in plan.unserved_rps.items():
        if rate > 1e-6:
            console.print(f"[red]unserved[/red] {model}: {rate:.1f} req/s")


def run_plan(args: argparse.Namespace) -> int:
    from rich.console import Console

    _, _, plan = _plan(args)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print_plan(plan, Console())
    return 0 if plan.feasible else 1


def read_trace(path: str) -> dict[str, "object"]:
    import numpy as np

    out: dict[str, list[float]] = {}
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise ServingError(f"{path}: cannot read trace: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"model", "arrival_ms"} <= set(reader.fieldnames):
            raise ServingError(f"{path}:1: header must name model,arrival_ms")
        for line, row in enumerate(reader, start=2):
            try:
                t = float(row["arrival_ms"])
            except (TypeError, ValueError):
                raise ServingError(f"{path}:{line}: arrival_ms: expected a number, got {row['arrival_ms']!r}") from None
            out.setdefault(row["model"], []).append(t)
    return {m: np.sort(np.array(v)) for m, v in out.items()}


def run_sim(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .simulator import plot_result, simulate

    service, profiles, plan = _plan(args)
    arrivals = read_trace(args.trace) if args.trace else None
    if arrivals:
        unknown = sorted(set(arrivals) - {m.name for m in service.models})
        if unknown:
            raise ServingError(f"{args.trace}: unknown model {unknown[0]!r}")
    result = simulate(plan, profiles, duration_s=args.duration, arrivals_ms=arrivals,
                      interference=service.interference, seed=args.seed, process=args.process)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"plan": plan.to_dict(), "result": result.to_dict()}
    (out / "sim.json").write_text(json.dumps(data, indent=2))
    png = plot_result(result, out / "sim.png")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    console = Console()
    print_plan(plan, console)
    from rich.table import Table
    table = Table(title=f"simulated {args.duration:g} s: SLO attainment {100 * (1 - result.violation_ratio):.2f} %, "
                        f"{result.goodput_rps:.1f} req/s within SLO, {result.gpus_used} GPUs")
    for col in ("model", "requests", "violations", "dropped", "attainment %", "p50 ms", "p99 ms", "SLO ms"):
        table.add_column(col)
    for st in result.models.values():
        table.add_row(st.model, str(st.requests), str(st.violations), str(st.dropped),
                      f"{100 * st.slo_attainment:.2f}", f"{st.percentile_ms(50):.2f}", f"{st.percentile_ms(99):.2f}",
                      f"{st.slo_ms:g}")
    console.print(table)
    console.print(f"wrote {out / 'sim.json'} and {png}")
    return 0


def run_profile(args: argparse.Namespace) -> int:
    from .profiler import profile_cpu
    from .profiles import write_profiles
    from .runtime.models import ARCHS, build_model

    if args.arch not in ARCHS:
        raise ServingError(f"--arch: expected one of {', '.join(ARCHS)}, got {args.arch!r}")
    try:
        parts = tuple(int(p) for p in args.partitions.split(","))
        batches = tuple(int(b) for b in args.batches.split(","))
    except ValueError:
        raise ServingError("--partitions/--batches: expected comma-separated integers") from None
    prof = profile_cpu(args.name or args.arch, lambda: build_model(args.arch), ARCHS[args.arch], batches, parts)
    write_profiles(args.out, [prof])
    print(f"wrote {args.out}: {len(list(prof.points()))} points for {prof.model}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from .runtime.server import serve
    from .spec import load_service

    service = load_service(args.spec)
    if args.port is not None and not 0 <= args.port <= 65535:
        raise ServingError(f"--port: expected 0..65535, got {args.port}")
    if args.max_queue is not None and args.max_queue < 1:
        raise ServingError(f"--max-queue: expected >= 1, got {args.max_queue}")
    return serve(service, host=args.host, port=args.port, planner=args.planner, device=args.device,
                 max_queue=args.max_queue, log_level=args.log_level)
