"""Reports of an experiment: rich tables in the terminal, a PNG plot, and every number as JSON and CSV.

Files written to the output directory:

* ``results.json``: the experiment (mode, sources, policies, seeds), the per-policy summary (seed means)
  and every run with its full curves; NaN (a percent never reached) is written as null.
* ``allocation.png``: fill: GPU allocation ratio (%) against arrived GPU demand (% of capacity), one line
  per policy averaged over seeds; replay: GPU allocation ratio (%) over virtual time.
* The tables and ``results.json`` add the stranded MIG compute slices (peak over the run, mean of the seeds;
  ``mig_slice_report``) when the cluster has MIG nodes.
* ``allocation_curve.csv`` (fill): one row per (policy, seed), columns 0..130 as in the FGD simulator's
  expected results, so the two can be compared cell by cell.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .experiment import MILESTONES, ExperimentResult
from .fill import CURVE_PERCENTS


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def stranded_mig_slices(result: ExperimentResult) -> dict[str, float] | None:
    """Per policy, the mean over seeds of the peak stranded MIG compute slices; None without MIG nodes."""
    by_policy = result.by_policy()
    if not any(r.mig_slices for runs in by_policy.values() for r in runs):
        return None
    return {policy: float(np.mean([r.mig_slices.get("stranded_slices", 0) for r in runs])) if runs else math.nan
            for policy, runs in by_policy.items()}


def tables(result: ExperimentResult) -> list[Table]:
    exp = result.experiment
    summary = result.summary()
    stranded = stranded_mig_slices(result)
    seeds = f"{len(exp.seeds)} seed{'s' if len(exp.seeds) > 1 else ''}"
    if exp.mode == "fill":
        table = Table(title=f"Fill: GPU allocation % when N% of GPU capacity has been asked for (N = 80..130), "
                            f"fragmentation ratio %, pods skipped; mean of {seeds}")
        table.add_column("policy", no_wrap=True)
        for m in MILESTONES:
            table.add_column(f"{m}%", justify="right")
        table.add_column("frag@100", justify="right")
        table.add_column("frag@130", justify="right")
        table.add_column("skipped", justify="right", no_wrap=True)
        if stranded is not None:
            table.add_column("stranded MIG slices", justify="right")
        for policy, s in summary.items():
            table.add_row(policy, *[_fmt(s["allocation_at"][str(m)]) for m in MILESTONES],
                          _fmt(s["fragmentation_ratio_at"]["100"]), _fmt(s["fragmentation_ratio_at"]["130"]),
                          f"{s['pods_unschedulable']:.0f} / {s['pods_arrived']:.0f}",
                          *([_fmt(stranded[policy], 1)] if stranded is not None else []))
    else:
        table = Table(title=f"Replay: queueing delay (bind - creation) and GPU allocation; mean of {seeds}")
        table.add_column("policy", no_wrap=True)
        for col in ("scheduled", "never scheduled", "delay p50 (s)", "delay p90 (s)", "delay p99 (s)",
                    "mean alloc %", "peak alloc %"):
            table.add_column(col, justify="right")
        if stranded is not None:
            table.add_column("stranded MIG slices", justify="right")
        for policy, s in summary.items():
            d = s["queueing_delay"]
            table.add_row(policy, f"{s['pods_scheduled']:.0f} / {s['pods_arrived']:.0f}",
                          f"{s['pods_never_scheduled']:.0f}", _fmt(d["p50"], 1), _fmt(d["p90"], 1),
                          _fmt(d["p99"], 1), _fmt(s["mean_allocation_ratio"]), _fmt(s["peak_allocation_ratio"]),
                          *([_fmt(stranded[policy], 1)] if stranded is not None else []))
    out = [table]
    if any(s["unschedulable_reasons"] for s in summary.values()):
        what = "pods skipped" if exp.mode == "fill" else "failed attempts"
        reasons = Table(title=f"Why pods did not fit: {what} with at least one node failing for the reason "
                              f"(mean of {seeds})")
        reasons.add_column("policy", no_wrap=True)
        reasons.add_column("reason")
        reasons.add_column(what, justify="right")
        for policy, s in summary.items():
            for reason, count in sorted(s["unschedulable_reasons"].items(), key=lambda kv: -kv[1]):
                reasons.add_row(policy, reason, f"{count:.1f}")
        out.append(reasons)
    return out


def print_tables(result: ExperimentResult, console: Console) -> None:
    for table in tables(result):
        console.print(table)


def plot(result: ExperimentResult, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = result.experiment
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if exp.mode == "fill":
        for policy, s in result.summary().items():
            y = np.array([np.nan if v is None else v for v in s["allocation_ratio"]])
            ax.plot(CURVE_PERCENTS, y, label=policy)
        ax.plot([0, 100], [0, 100], color="grey", linestyle=":", linewidth=1, label="every GPU request placed")
        ax.set_xlabel("arrived GPU demand (% of cluster GPU capacity)")
        ax.set_ylabel("GPU allocation ratio (%)")
        ax.set_xlim(0, CURVE_PERCENTS[-1])
    else:
        for policy, runs in result.by_policy().items():
            end = max(r.allocation_times[-1] if r.allocation_times else 0.0 for r in runs)
            grid = np.linspace(0, end, 500)
            curves = []
            for r in runs:
                times, values = np.array(r.allocation_times), np.array(r.allocation_series)
                at = np.searchsorted(times, grid, side="right") - 1
                curves.append(np.where(at >= 0, values[np.maximum(at, 0)] if len(values) else 0.0, 0.0))
            scale, unit = (86400, "days") if end > 5 * 86400 else (3600, "hours") if end > 5 * 3600 else (1, "s")
            ax.step(grid / scale, np.mean(curves, axis=0), where="post", label=policy)
            ax.set_xlabel(f"virtual time ({unit})")
        ax.set_ylabel("GPU allocation ratio (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(f"{exp.name} ({exp.mode}, mean of {len(exp.seeds)} seed{'s' if len(exp.seeds) > 1 else ''})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(result: ExperimentResult, path: Path) -> Path:
    exp = result.experiment
    doc = {
        "experiment": {"name": exp.name, "mode": exp.mode, "sources": exp.sources, "seeds": exp.seeds,
                       "policies": list(exp.policies), "demand_ratio": exp.demand_ratio,
                       "nodes": len(exp.nodes), "gpus": sum(n.gpu_count for n in exp.nodes),
                       "trace_pods": len(exp.pods)},
        "curve_percents": CURVE_PERCENTS.tolist() if exp.mode == "fill" else None,
        "summary": result.summary(),
        "peak_stranded_mig_slices": stranded_mig_slices(result),  # per policy, seed mean; null without MIG
        "runs": [dataclasses.asdict(r) for r in result.runs],
    }
    path.write_text(json.dumps(_clean(doc), indent=1, allow_nan=False))
    return path


def write_curve_csv(result: ExperimentResult, path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["policy", "seed", *CURVE_PERCENTS.tolist()])
        for r in result.runs:
            writer.writerow([r.policy, r.seed, *("" if math.isnan(v) else f"{v:.2f}" for v in r.allocation_ratio)])
    return path


def write_outputs(result: ExperimentResult, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(result, out / "results.json"), "plot": plot(result, out / "allocation.png")}
    if result.experiment.mode == "fill":
        paths["csv"] = write_curve_csv(result, out / "allocation_curve.csv")
    return paths
