"""Seconds per run of the FGD paper's experiment (one trace, one seed, fill to 130%) for FGD and for
gpufleet's own policies (fgd-la: look-ahead tie-break, fgd-la-hole: the same with hole waste in the primary,
fgd-la-dual: hole waste priced by the cutting-stock LP, fgd-cap: CapacityFGD) on the openb default trace,
with BestFit (no fragmentation model) as the baseline measured in the same process. Target (issue 3): under
20 s per run; the Go simulator needs ~10 minutes.

    .venv/bin/python bench/fgd.py [--seeds 42,43] [--trace default]

Reads ../shared/data/openb (or $GPUFLEET_SHARED/data/openb); exits with a message naming the path if absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

from gpufleet.scheduler import builtin_profile
from gpufleet.shared_data import shared_path
from gpufleet.scheduler.fragmentation import TypicalPods
from gpufleet.sim.fgd_experiment import fgd_node_rank, run_fgd_fill, trace_path, tune_like_fgd, with_typical_pods
from gpufleet.sim.metrics import fgd_typical_pods, typical_pods_args
from gpufleet.sim.traces import read_nodes, read_pods



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--trace", default="default")
    parser.add_argument("--policies", default="bestfit,fgd,fgd-la,fgd-la-hole,fgd-la-dual,fgd-cap")
    args = parser.parse_args()
    data = shared_path("data", "openb")
    if not (data / "openb_node_list_gpu_node.csv").is_file():
        print(f"skipped: openb trace not found at {data}")
        return 0
    nodes = read_nodes(data / "openb_node_list_gpu_node.csv")
    pods = read_pods(trace_path(data, args.trace))
    targs = typical_pods_args(fgd_typical_pods(pods))
    typical = TypicalPods.from_args(targs)
    seeds = [int(s) for s in args.seeds.split(",")]
    times: dict[str, list[float]] = {}
    for policy in args.policies.split(","):
        prof = with_typical_pods([dataclasses.replace(builtin_profile(policy), percentage_of_nodes_to_score=100)],
                                 targs)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            arrivals = tune_like_fgd(pods, 6212 * 1000, seed, rng=rng)
            rank = fgd_node_rank(nodes, rng)
            started = time.perf_counter()
            run = run_fgd_fill(nodes, arrivals, prof, seed, typical, args.trace, policy, rank)
            elapsed = time.perf_counter() - started
            times.setdefault(policy, []).append(elapsed)
            print(f"{args.trace} {policy:11s} seed {seed}: {elapsed:6.2f} s per run, {len(arrivals)} pods, "
                  f"allocation {run.final_allocation_ratio:.2f}%", flush=True)
    base = np.mean(times.get("bestfit", [np.nan]))
    for policy, t in times.items():
        print(f"{policy:11s} mean {np.mean(t):6.2f} s per run ({np.mean(t) / base:.2f} x bestfit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
