"""An experiment: one cluster, one workload, several policies x several seeds, in fill or replay mode.

Every run starts from an empty cluster. Profiles get percentageOfNodesToScore = 100 unless their config
sets it, so a simulated decision is the one a full scan of the nodes gives (kube's adaptive sampling would
make results depend on the round-robin start). The summary averages each policy over its seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..cluster import GpufleetError, Node, Pod
from ..scheduler import ProfileConfig, builtin_profile, load_config
from .fill import CURVE_PERCENTS, DEFAULT_DEMAND_RATIO, FillResult, gpu_capacity_milli, run_fill, tune_to_demand
from .metrics import typical_pods
from .replay import ReplayResult, run_replay

MODES = ("fill", "replay")
MILESTONES = (80, 90, 100, 110, 130)  # arrived demand (%) shown in the fill table


def full_scan(profiles: list[ProfileConfig]) -> list[ProfileConfig]:
    return [p if p.percentage_of_nodes_to_score is not None else
            dataclasses.replace(p, percentage_of_nodes_to_score=100) for p in profiles]


def resolve_policies(policy: str | None, config: str | Path | None) -> dict[str, list[ProfileConfig]]:
    """Policy label -> scheduler profiles, from built-in names (comma separated) or a config file."""
    if config:
        return {Path(config).stem: full_scan(load_config(config))}
    names = [n.strip() for n in (policy or "").split(",") if n.strip()]
    if not names:
        raise GpufleetError("--policy: expected one or more policy names such as random,spread,binpack")
    return {name: full_scan([builtin_profile(name)]) for name in dict.fromkeys(names)}


def parse_seeds(text: str) -> list[int]:
    """``42..51`` (inclusive), ``42,43`` or ``42``."""
    try:
        if ".." in text:
            first, last = (int(x) for x in text.split(".."))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise GpufleetError(f"--seeds: expected FIRST..LAST or a comma-separated list of integers, got {text!r}")
    return seeds


@dataclass
class Experiment:
    name: str
    mode: str
    nodes: list[Node]
    pods: list[Pod]
    policies: dict[str, list[ProfileConfig]]
    seeds: list[int]
    demand_ratio: float = DEFAULT_DEMAND_RATIO
    sources: dict[str, str] = field(default_factory=dict)  # where the cluster and workload came from

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise GpufleetError(f"--mode: expected fill or replay, got {self.mode!r}")

    @property
    def progress_total(self) -> int:
        runs = len(self.policies) * len(self.seeds)
        if self.mode == "fill":
            return runs * min(len(CURVE_PERCENTS), int(self.demand_ratio * 100) + 1)
        return runs * len(self.pods)


@dataclass
class ExperimentResult:
    experiment: Experiment
    runs: list[FillResult | ReplayResult]

    def by_policy(self) -> dict[str, list]:
        out: dict[str, list] = {name: [] for name in self.experiment.policies}
        for run in self.runs:
            out[run.policy].append(run)
        return out

    def summary(self) -> dict[str, dict]:
        """Per policy, the seed means of every headline number (and of the fill curves)."""
        out = {}
        for policy, runs in self.by_policy().items():
            if self.experiment.mode == "fill":
                allocation = _nanmean([r.allocation_ratio for r in runs])
                fragmentation_ratio = _nanmean([r.fragmentation_ratio for r in runs])
                out[policy] = {
                    "allocation_ratio": allocation, "fragmentation": _nanmean([r.fragmentation for r in runs]),
                    "fragmentation_ratio": fragmentation_ratio,
                    "allocation_at": {str(m): allocation[m] for m in MILESTONES},
                    "fragmentation_ratio_at": {str(m): fragmentation_ratio[m] for m in MILESTONES},
                    "final_allocation_ratio": float(np.mean([r.final_allocation_ratio for r in runs])),
                    "pods_arrived": float(np.mean([r.pods_arrived for r in runs])),
                    "pods_unschedulable": float(np.mean([r.pods_unschedulable for r in runs])),
                    "unschedulable_reasons": _mean_counts([r.unschedulable_reasons for r in runs]),
                }
            else:
                out[policy] = {
                    "queueing_delay": {q: _mean_or_none([r.queueing_delay[q] for r in runs])
                                       for q in ("p50", "p90", "p99")},
                    "mean_queueing_delay": _mean_or_none([r.mean_queueing_delay for r in runs]),
                    "mean_allocation_ratio": float(np.mean([r.mean_allocation_ratio for r in runs])),
                    "peak_allocation_ratio": float(np.mean([r.peak_allocation_ratio for r in runs])),
                    "pods_arrived": float(np.mean([r.pods_arrived for r in runs])),
                    "pods_scheduled": float(np.mean([r.pods_scheduled for r in runs])),
                    "pods_never_scheduled": float(np.mean([r.pods_never_scheduled for r in runs])),
                    "peak_stranded_mig_slices": float(np.mean([r.mig_slices.get("stranded_slices", 0)
                                                               for r in runs])),
                    "unschedulable_reasons": _mean_counts([r.unschedulable_reasons for r in runs]),
                }
        return out


def _nanmean(rows: list[list[float]]) -> list[float | None]:
    table = np.array(rows, dtype=float)
    reached = ~np.isnan(table).all(axis=0)
    means = np.nanmean(np.where(reached, table, 0.0), axis=0)
    return [float(v) if ok else None for v, ok in zip(means, reached)]


def _mean_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _mean_counts(counts: list[dict[str, int]]) -> dict[str, float]:
    keys = sorted({k for c in counts for k in c})
    return {k: sum(c.get(k, 0) for c in counts) / len(counts) for k in keys}


def run_experiment(experiment: Experiment, progress: Callable[[int], None] | None = None) -> ExperimentResult:
    runs: list[FillResult | ReplayResult] = []
    typical = typical_pods(experiment.pods) if experiment.mode == "fill" else []
    for policy, profiles in experiment.policies.items():
        for seed in experiment.seeds:
            if experiment.mode == "fill":
                arrivals = tune_to_demand(experiment.pods, gpu_capacity_milli(experiment.nodes), seed,
                                          experiment.demand_ratio)
                runs.append(run_fill(experiment.nodes, arrivals, profiles, seed, typical, policy, progress))
            else:
                runs.append(run_replay(experiment.nodes, experiment.pods, profiles, seed, policy, progress))
    return ExperimentResult(experiment, runs)
