"""The FGD paper's experiment as the FGD simulator runs it (USENIX ATC'23 "Beware of Fragmentation", Sec. 6;
hkust-adsl/kubernetes-scheduler-simulator pkg/simulator/core.go Simulate, simulator.go SortClusterPods /
TunePodsByNodeTotalResource, experiments/run_scripts/generate_run_scripts.py,
experiments/analysis/merge_alloc_discrete_0920.py).

Per (trace, policy, seed), from an empty openb GPU cluster (1,213 nodes, 6,212 GPUs):

1. typical pods: from the trace's pods (before tuning), metrics.fgd_typical_pods; passed to the FGD-family
   plugins as their ``typicalPods`` arg (the scheduler never imports sim).
2. :func:`tune_like_fgd`: the trace sorted by name and shuffled with the seed; if it asks for more than
   ``ratio`` x the GPU capacity, pods drawn uniformly are removed until it no longer does ("tune down"); if
   it asks for less, pods drawn uniformly with replacement from the name-sorted trace are appended *at the end*
   (copies named ``NAME-tuned-i``) until the next draw's *per-GPU* milli would pass the target - the
   simulator compares ``total + gpu_milli``, not ``total + num_gpu * gpu_milli``, and stops at the first draw
   that does not fit. The generator is numpy's (the simulator uses Go's math/rand: same procedure, other
   random numbers, so per-seed results differ and seed means are compared).
3. each pod in order is scheduled once (the policy's score plugin alone, kube's default scorers off,
   full scan); a pod that fits nowhere is skipped. Ties between best-scoring nodes go to the node with the
   lowest rank in a seeded random permutation (:func:`fgd_node_rank`): the simulator's kube fork
   (mental2008/kubernetes v1.20.5-minor, generic_scheduler.go selectHost) picks the lexicographically smallest
   node name "for reproducibility", and the simulator renames node i (sorted by name) to
   ``"%04d-" % perm[i] + name`` with ``perm = rand.Perm(n)`` drawn after shuffling and tuning
   (simulator.go syncClusterResourceList). Not uniform ties: a consistent node preference, which packs.
4. after every pod: arrived GPU milli (including skipped pods), allocated GPU milli, and the cluster
   fragmentation (F summed over nodes, updated for the one node that changed). The curve value at k% is the
   mean over the pods whose arrived share rounds to k% (round half to even, as pandas), else over those
   rounding to k-1..k+1%, else missing - the simulator's analysis.

Outputs are one JSON per run under OUT/TRACE/POLICY/SEED.json, so a sweep splits by trace, policy and seed
and :func:`summarize` aggregates whatever runs exist.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..cluster import ClusterState, GpufleetError, Node, Pod
from ..scheduler import ProfileConfig, Scheduler, builtin_profile
from ..scheduler.config import TYPICAL_POD_PLUGINS
from ..scheduler.fragmentation import MILLI_PER_GPU, TypicalPods
from .fill import CURVE_PERCENTS, gpu_capacity_milli
from .metrics import fgd_typical_pods, typical_pods_args
from .traces import fresh_copy, read_nodes, read_pods

FGD_RATIO = 1.3
FGD_SEEDS = list(range(42, 52))
# The 17 traces of the paper's figures (experiments/run_scripts/generate_run_scripts.py FileList).
FGD_TRACES = ("default", "cpu050", "cpu100", "cpu200", "cpu250", "gpushare100", "gpushare40", "gpushare60",
              "gpushare80", "gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33", "multigpu20", "multigpu30",
              "multigpu40", "multigpu50")
REPRODUCTION_TRACES = ("default", "cpu250", "gpushare100", "multigpu50", "gpuspec33")
# Our built-in policy name -> the simulator's label in fgd_expected_*.csv.
PAPER_LABELS = {"random-fgd": "01-Random", "dotprod": "02-DotProd", "clustering": "03-GpuClustering",
                "packing": "04-GpuPacking", "bestfit": "05-BestFit", "fgd": "06-FGD"}
PAPER_POLICIES = tuple(PAPER_LABELS)
MILESTONES = (80, 90, 100, 110, 130)


def tune_like_fgd(pods: Sequence[Pod], capacity_milli: int, seed: int, ratio: float = FGD_RATIO,
                  rng: np.random.Generator | None = None) -> list[Pod]:
    """Arrival order as the FGD simulator builds it (see the module docstring, step 2)."""
    if not pods:
        raise GpufleetError("the workload has no pods")
    rng = rng if rng is not None else np.random.default_rng(seed)
    by_name = sorted(pods, key=lambda p: p.name)
    order = [by_name[i] for i in rng.permutation(len(by_name))]
    total = sum(p.gpu_request_milli for p in order)
    target = ratio * capacity_milli
    if total > target:
        while total > target:
            removed = order.pop(int(rng.integers(len(order))))
            total -= removed.gpu_request_milli
        return [fresh_copy(p) for p in order]
    tuned = [fresh_copy(p) for p in order]
    i = 0
    while total < target:
        pod = by_name[int(rng.integers(len(by_name)))]
        if total + pod.gpu_milli > target:  # the simulator's check: per-GPU milli (see docstring)
            break
        tuned.append(fresh_copy(pod, f"{pod.name}-tuned-{i}"))
        total += pod.gpu_request_milli
        i += 1
    return tuned


def fgd_node_rank(nodes: Sequence[Node], rng: np.random.Generator) -> np.ndarray:
    """Tie-break rank per node index (lowest wins): the simulator sorts the nodes by name, prefixes the i-th
    with a seeded random permutation's i-th value and its kube fork breaks score ties by the smallest name."""
    order = sorted(range(len(nodes)), key=lambda i: nodes[i].name)
    rank = np.empty(len(nodes), dtype=np.int64)
    rank[order] = rng.permutation(len(nodes))
    return rank


def with_typical_pods(profiles: Sequence[ProfileConfig], typical_args: list[dict]) -> list[ProfileConfig]:
    """Copies of the profiles whose fragmentation plugins get the typical pods (unless their config has them)."""
    out = []
    for cfg in profiles:
        args = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.plugin_args.items()}
        used = {name for point in cfg.plugins.values() for name, _ in point}
        for name in TYPICAL_POD_PLUGINS & used:
            args.setdefault(name, {}).setdefault("typicalPods", typical_args)
        out.append(dataclasses.replace(cfg, plugin_args=args))
    return out


def bucket_curve(arrived_pct: np.ndarray, values: np.ndarray) -> list[float | None]:
    """The simulator's discretisation: value at k = mean over events whose arrived % rounds to k, else over
    those rounding to k-1..k+1, else None."""
    rounded = np.round(arrived_pct)  # numpy rounds half to even, as pandas' round
    out: list[float | None] = []
    for k in CURVE_PERCENTS:
        sel = rounded == k
        if not sel.any():
            sel = (rounded >= k - 1) & (rounded <= k + 1)
        out.append(float(values[sel].mean()) if sel.any() else None)
    return out


@dataclass
class FgdRun:
    trace: str
    policy: str
    seed: int
    pods_arrived: int
    pods_scheduled: int
    arrived_percent: float  # total arrived GPU request, % of capacity
    allocation_ratio: list  # 0..130 (%), None where no pod arrived near that percent
    fragmentation: list  # fragment, % of GPU capacity
    fragmentation_ratio: list  # fragment, % of idle GPU milli
    final_allocation_ratio: float
    seconds: float
    # where the unallocated GPU is at the end (waste_breakdown) and the pods placed per shape "GPUSxMILLI"
    waste: dict = dataclasses.field(default_factory=dict)
    placed_by_shape: dict = dataclasses.field(default_factory=dict)


def best_fit_decreasing_waste(shares: Sequence[int], capacity: int = MILLI_PER_GPU) -> int:
    """Free milli left when GPU shares are packed offline by best fit decreasing (Johnson, "Near-optimal bin
    packing algorithms", MIT 1973: largest share first, each into the fullest GPU it fits, a new GPU when none):
    ``GPUs used x capacity - sum(shares)``. A reference for an online policy's holes, not a bound: BFD is not
    optimal, and it ignores nodes and CPU."""
    level = np.zeros(capacity + 1, dtype=np.int64)  # level[f]: open GPUs with f milli free (0 < f < capacity)
    used = 0
    for share in sorted((int(s) for s in shares), reverse=True):
        if not 0 < share <= capacity:
            raise ValueError(f"GPU share {share} outside 1..{capacity} milli")
        fits = np.flatnonzero(level[share:capacity])
        if len(fits):
            free = share + int(fits[0])
            level[free] -= 1
        else:
            free, used = capacity, used + 1
        level[free - share] += 1
    return used * capacity - int(sum(shares))


def waste_breakdown(cluster: ClusterState) -> dict:
    """Unallocated GPU milli of a cluster: ``idle_gpus`` (whole GPUs free), ``holes`` {free milli of a
    partly used GPU: how many such GPUs} and ``repack_holes_milli``, the free milli that the GPU shares placed
    (pods on part of one GPU) would leave if repacked offline by best_fit_decreasing_waste: how much of the
    holes is the online placement's and how much the share sizes'."""
    free = cluster.gpu_free_milli[cluster.gpu_exists]
    partial = free[(free > 0) & (free < MILLI_PER_GPU)]
    sizes, counts = np.unique(partial, return_counts=True)
    shares = [p.gpu_milli for p in cluster.placements.values() if 0 < p.gpu_milli < MILLI_PER_GPU
              for _ in p.gpu_indices]
    return {"capacity_milli": int(cluster.gpu_capacity_milli[cluster.gpu_exists].sum()),
            "idle_gpus": int((free >= MILLI_PER_GPU).sum()),
            "holes": {str(int(h)): int(c) for h, c in zip(sizes, counts)},
            "repack_holes_milli": best_fit_decreasing_waste(shares)}


def run_fgd_fill(nodes: Sequence[Node], arrivals: Sequence[Pod], profiles: list[ProfileConfig], seed: int,
                 typical: TypicalPods, trace: str = "", policy: str = "",
                 node_rank: np.ndarray | None = None) -> FgdRun:
    """Schedule ``arrivals`` in order on a fresh cluster; curves as the simulator's analysis (step 4).
    ``node_rank``: the tie-break order (fgd_node_rank); None = uniformly random ties."""
    started = time.perf_counter()
    capacity = gpu_capacity_milli(nodes)
    cluster = ClusterState(nodes)
    scheduler = Scheduler(cluster, profiles, seed=seed, clock=lambda: 0.0)
    scheduler.handle.node_rank = node_rank
    names = cluster.gpu_model_names
    node_frag = typical.fragment(cluster.gpu_free_milli, cluster.cpu_free_milli, cluster.gpu_model_id, names)
    frag_total = float(node_frag.sum())
    n = len(arrivals)
    arrived = np.zeros(n)
    allocated = np.zeros(n)
    fragment = np.zeros(n)
    idle = np.zeros(n)
    arrived_milli = allocated_milli = scheduled = 0
    placed: dict[str, int] = {}
    for i, pod in enumerate(arrivals):
        scheduler.add(pod)
        outcome = scheduler.schedule_one()
        if outcome is not None and outcome.status == "scheduled":
            scheduled += 1
            allocated_milli += pod.gpu_request_milli
            shape = f"{pod.num_gpu}x{pod.gpu_milli}"
            placed[shape] = placed.get(shape, 0) + 1
            k = cluster.node_index[outcome.node_name]
            new = typical.fragment(cluster.gpu_free_milli[k:k + 1], cluster.cpu_free_milli[k:k + 1],
                                   cluster.gpu_model_id[k:k + 1], names)[0]
            frag_total += new - node_frag[k]
            node_frag[k] = new
        else:
            scheduler.pod_deleted(pod)
        arrived_milli += pod.gpu_request_milli
        arrived[i], allocated[i], fragment[i] = arrived_milli, allocated_milli, frag_total
        idle[i] = capacity - allocated_milli
    arrived_pct = 100.0 * arrived / capacity
    ratio = np.where(idle > 0, 100.0 * fragment / np.maximum(idle, 1), 0.0)
    return FgdRun(trace, policy, seed, n, scheduled, float(arrived_pct[-1]) if n else 0.0,
                  bucket_curve(arrived_pct, 100.0 * allocated / capacity),
                  bucket_curve(arrived_pct, 100.0 * fragment / capacity), bucket_curve(arrived_pct, ratio),
                  100.0 * allocated_milli / capacity, time.perf_counter() - started, waste_breakdown(cluster),
                  placed)


def trace_path(data_dir: Path, trace: str) -> Path:
    return Path(data_dir) / f"openb_pod_list_{trace}.csv"


def run_path(out_dir: Path, trace: str, policy: str, seed: int) -> Path:
    return Path(out_dir) / trace / policy / f"{seed}.json"


def run_sweep(data_dir: str | Path, traces: Sequence[str], policies: Sequence[str], seeds: Sequence[int],
              out_dir: str | Path, force: bool = False, log: Callable[[str], None] = print) -> list[FgdRun]:
    """Every (trace, policy, seed) run not already saved under ``out_dir`` (all of them with ``force``)."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    node_file = data_dir / "openb_node_list_gpu_node.csv"
    missing = [str(p) for p in [node_file, *(trace_path(data_dir, t) for t in traces)] if not p.is_file()]
    if missing:
        raise GpufleetError(f"missing openb file(s): {', '.join(missing)} (expected the openb trace in "
                            f"{data_dir})")
    nodes = read_nodes(node_file)
    capacity = gpu_capacity_milli(nodes)
    profiles = {p: [dataclasses.replace(builtin_profile(p), percentage_of_nodes_to_score=100)] for p in policies}
    runs = []
    for trace in traces:
        pods = read_pods(trace_path(data_dir, trace))
        typical_list = fgd_typical_pods(pods)
        typical_args = typical_pods_args(typical_list)
        typical = TypicalPods.from_args(typical_args)
        for policy in policies:
            prof = with_typical_pods(profiles[policy], typical_args)
            for seed in seeds:
                path = run_path(out_dir, trace, policy, seed)
                if path.is_file() and not force:
                    continue
                rng = np.random.default_rng(seed)
                arrivals = tune_like_fgd(pods, capacity, seed, rng=rng)
                rank = fgd_node_rank(nodes, rng)
                run = run_fgd_fill(nodes, arrivals, prof, seed, typical, trace, policy, rank)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(dataclasses.asdict(run)))
                log(f"{trace} {policy} seed {seed}: allocation {run.final_allocation_ratio:.2f}% "
                    f"at {run.arrived_percent:.1f}% arrived, {run.seconds:.1f} s")
                runs.append(run)
    return runs


def load_runs(out_dir: str | Path) -> dict[tuple[str, str], list[dict]]:
    """(trace, policy) -> the saved runs (dicts), seeds in order."""
    out: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(Path(out_dir).glob("*/*/*.json"), key=lambda p: (p.parent.parent.name, p.parent.name,
                                                                          int(p.stem) if p.stem.isdigit() else 0)):
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out.setdefault((run["trace"], run["policy"]), []).append(run)
    return out


def mean_curve(runs: list[dict], key: str) -> list[float | None]:
    table = np.array([[np.nan if v is None else v for v in r[key]] for r in runs], dtype=float)
    ok = ~np.isnan(table).all(axis=0)
    means = np.nanmean(np.where(ok, table, 0.0), axis=0)
    return [float(m) if o else None for m, o in zip(means, ok)]


def load_expected(data_dir: str | Path, name: str = "allocation") -> dict[tuple[str, str], dict[int, list]]:
    """The simulator's shipped per-seed curves: (trace, paper label) -> {seed: [131 values]}; {} if absent."""
    path = Path(data_dir) / f"fgd_expected_{name}.csv"
    if not path.is_file():
        return {}
    import csv
    out: dict[tuple[str, str], dict[int, list]] = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        first = header.index("0")
        for row in reader:
            trace = row[0].removeprefix("openb_pod_list_")
            values = [float(v) if v else None for v in row[first:first + 131]]
            out.setdefault((trace, row[1]), {})[int(row[3])] = values
    return out


def expected_mean(expected: dict, trace: str, policy: str, percent: int) -> float | None:
    label = PAPER_LABELS.get(policy)
    seeds = expected.get((trace, label)) if label else None
    if not seeds:
        return None
    vals = [v[percent] for v in seeds.values() if v[percent] is not None]
    return float(np.mean(vals)) if vals else None


def headline_percent(trace: str) -> int:
    """The arrived percent the issue compares at: 130, but 100 for gpuspec33 (as the paper's Fig. 11)."""
    return 100 if trace == "gpuspec33" else 130


# ---------------------------------------------------------------------------------------------- reports
def summarize(out_dir: str | Path, data_dir: str | Path | None = None) -> dict:
    """Seed means of every saved run, beside the simulator's shipped results when ``data_dir`` has them.

    Returns {"traces": {trace: {policy: {"seeds": [...], "allocation_at": {m: ours}, "expected_at": {m: theirs},
    "fragmentation_ratio_at": {...}, "headline": (percent, ours, theirs), "curves": {...}}}}}.
    """
    runs = load_runs(out_dir)
    expected = load_expected(data_dir) if data_dir else {}
    out: dict = {"traces": {}}
    for (trace, policy), rs in sorted(runs.items()):
        alloc = mean_curve(rs, "allocation_ratio")
        ratio = mean_curve(rs, "fragmentation_ratio")
        head = headline_percent(trace)
        entry = {
            "seeds": [r["seed"] for r in rs],
            "allocation_at": {m: alloc[m] for m in MILESTONES},
            "expected_at": {m: expected_mean(expected, trace, policy, m) for m in MILESTONES},
            "fragmentation_ratio_at": {m: ratio[m] for m in MILESTONES},
            "headline": (head, alloc[head], expected_mean(expected, trace, policy, head)),
            "seconds_per_run": float(np.mean([r["seconds"] for r in rs])),
            "waste_at_end": mean_waste(rs),
            "curves": {"allocation_ratio": alloc, "fragmentation_ratio": ratio,
                       "fragmentation": mean_curve(rs, "fragmentation")},
        }
        out["traces"].setdefault(trace, {})[policy] = entry
    return out


def mean_waste(runs: list[dict], top: int = 5) -> dict | None:
    """Seed means of where the unallocated GPU is at the end, in % of capacity: ``idle_gpus``, ``holes``,
    ``repack_holes`` (the holes an offline repack of the same shares would leave; None unless every run has it)
    and the ``top`` hole sizes by waste [(milli, %)]; None when the runs predate the breakdown."""
    ws = [r["waste"] for r in runs if r.get("waste")]
    if not ws:
        return None
    by_size: dict[int, float] = {}
    for w in ws:
        for size, count in w["holes"].items():
            by_size[int(size)] = by_size.get(int(size), 0.0) + 100.0 * int(size) * count / w["capacity_milli"] / len(ws)
    idle = float(np.mean([100.0 * MILLI_PER_GPU * w["idle_gpus"] / w["capacity_milli"] for w in ws]))
    repack = [100.0 * w["repack_holes_milli"] / w["capacity_milli"] for w in ws if "repack_holes_milli" in w]
    return {"idle_gpus": idle, "holes": float(sum(by_size.values())),
            "repack_holes": float(np.mean(repack)) if len(repack) == len(ws) else None,
            "top_holes": sorted(by_size.items(), key=lambda kv: -kv[1])[:top]}


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown_tables(summary: dict) -> str:
    """The reproduction table (ours beside theirs at the headline percent, per policy) and per-trace
    milestone tables, as Markdown."""
    lines = []
    traces = summary["traces"]
    policies = [p for p in PAPER_POLICIES if any(p in t for t in traces.values())]
    others = sorted({p for t in traces.values() for p in t} - set(PAPER_POLICIES))
    if policies:
        lines.append("GPU allocation % at 130% arrived (100% for gpuspec33), mean over seeds: ours / the FGD "
                     "simulator's shipped result (difference in percentage points)\n")
        lines.append("| trace | " + " | ".join(policies) + " |")
        lines.append("|---|" + "---|" * len(policies))
        for trace, per in traces.items():
            cells = []
            for p in policies:
                e = per.get(p)
                if e is None:
                    cells.append("")
                    continue
                _, ours, theirs = e["headline"]
                diff = "" if ours is None or theirs is None else f" ({ours - theirs:+.2f})"
                cells.append(f"{_f(ours)} / {_f(theirs)}{diff} [{len(e['seeds'])}]")
            lines.append(f"| {trace} | " + " | ".join(cells) + " |")
        lines.append("\n[n] = seeds run.\n")
    for trace, per in traces.items():
        lines.append(f"**{trace}**: GPU allocation % at N% arrived (fragmentation ratio % in the last two columns)\n")
        lines.append("| policy | seeds | " + " | ".join(f"{m}%" for m in MILESTONES) + " | frag@100 | frag@130 |")
        lines.append("|---|---|" + "---|" * (len(MILESTONES) + 2))
        for p in [*policies, *others]:
            e = per.get(p)
            if e is None:
                continue
            cells = [_f(e["allocation_at"][m]) for m in MILESTONES]
            fr = e["fragmentation_ratio_at"]
            lines.append(f"| {p} | {len(e['seeds'])} | " + " | ".join(cells) + f" | {_f(fr[100])} | {_f(fr[130])} |")
        lines.append("")
        wasted = [(p, per[p]["waste_at_end"]) for p in [*policies, *others] if per.get(p, {}).get("waste_at_end")]
        if wasted:
            lines.append(f"**{trace}**: unallocated GPU at the end, % of capacity: whole idle GPUs, partly used "
                         "GPUs' free milli, the free milli if the same GPU shares were repacked offline (best fit "
                         "decreasing, nodes and CPU ignored), and the hole sizes that waste most (milli: %)\n")
            lines.append("| policy | idle GPUs | holes | holes repacked | largest hole wastes |")
            lines.append("|---|---|---|---|---|")
            for p, w in wasted:
                tops = ", ".join(f"{size}: {pct:.2f}" for size, pct in w["top_holes"])
                lines.append(f"| {p} | {w['idle_gpus']:.2f} | {w['holes']:.2f} | {_f(w.get('repack_holes'))} "
                             f"| {tops} |")
            lines.append("")
    return "\n".join(lines)


def plot(summary: dict, out_dir: str | Path) -> list[Path]:
    """One PNG per trace: allocation % and fragmentation ratio % against arrived %, every policy (seed means)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    for trace, per in summary["traces"].items():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for policy, e in per.items():
            x = [k for k, v in enumerate(e["curves"]["allocation_ratio"]) if v is not None]
            a1.plot(x, [e["curves"]["allocation_ratio"][k] for k in x], label=policy)
            x2 = [k for k, v in enumerate(e["curves"]["fragmentation_ratio"]) if v is not None]
            a2.plot(x2, [e["curves"]["fragmentation_ratio"][k] for k in x2], label=policy)
        a1.set(xlabel="arrived GPU request (% of capacity)", ylabel="GPU allocation (%)",
               title=f"{trace}: allocation")
        a2.set(xlabel="arrived GPU request (% of capacity)", ylabel="fragment / idle GPU (%)",
               title=f"{trace}: fragmentation ratio")
        a1.grid(alpha=0.3), a2.grid(alpha=0.3)
        a1.legend(fontsize=8)
        fig.tight_layout()
        path = Path(out_dir) / f"{trace}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(out_dir: str | Path, data_dir: str | Path | None) -> tuple[str, list[Path]]:
    """summary.json, summary.md and one plot per trace in ``out_dir``; returns (markdown, written paths)."""
    out_dir = Path(out_dir)
    summary = summarize(out_dir, data_dir)
    text = markdown_tables(summary)
    (out_dir / "summary.md").write_text(text + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, default=lambda o: list(o) if isinstance(o, tuple)
                                                     else str(o)))
    paths = [out_dir / "summary.md", out_dir / "summary.json", *plot(summary, out_dir)]
    return text, paths
