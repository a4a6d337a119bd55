"""Scheduler throughput: pods per second on synthetic 1,000- and 5,000-node clusters, and the time of fill
mode on the full openb default trace (1,213 nodes, tuned to 130% of GPU capacity) with binpack.

Throughput: the ``default`` profile with kube's adaptive percentageOfNodesToScore schedules a synthetic
openb-like workload (pods never leave) onto an empty cluster, one pod per cycle through the queue; the
baseline in the same run is the same profile with percentageOfNodesToScore = 100 (a full scan).
Target: >= 1,000 pods/s at 5,000 nodes. The openb part needs the trace: ../shared/data/openb relative to
the repository root, or $GPUFLEET_SHARED/data/openb. Run: ``make bench`` or
``.venv/bin/python bench/scheduler_throughput.py``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from gpufleet.cluster import ClusterState
from gpufleet.shared_data import shared_path
from gpufleet.scheduler import Scheduler, builtin_profile
from gpufleet.sim.fill import gpu_capacity_milli, run_fill, tune_to_demand
from gpufleet.sim.metrics import typical_pods
from gpufleet.sim.synthetic import synthetic_nodes, synthetic_pods
from gpufleet.sim.traces import read_nodes, read_pods

PODS = 4000


def pods_per_second(num_nodes: int, percentage: int | None) -> tuple[float, int]:
    nodes = synthetic_nodes(num_nodes)
    pods = synthetic_pods(PODS, seed=1)
    profile = dataclasses.replace(builtin_profile("default"), percentage_of_nodes_to_score=percentage)
    scheduler = Scheduler(ClusterState(nodes), [profile], seed=0, clock=lambda: 0.0)
    for pod in pods:
        scheduler.add(pod)
    started = time.perf_counter()
    outcomes = scheduler.run_until_idle()
    elapsed = time.perf_counter() - started
    return len(outcomes) / elapsed, sum(o.status == "scheduled" for o in outcomes)


def openb_dir() -> Path:
    return shared_path("data", "openb")


def main() -> int:
    print(f"scheduler throughput, default profile, {PODS} synthetic openb-like pods onto an empty cluster")
    print(f"{'nodes':>6} {'adaptive pods/s':>16} {'full-scan pods/s':>17} {'ratio':>6} {'scheduled':>10}")
    for num_nodes in (1000, 5000):
        adaptive, scheduled = pods_per_second(num_nodes, None)
        full, _ = pods_per_second(num_nodes, 100)
        print(f"{num_nodes:>6} {adaptive:>16.0f} {full:>17.0f} {adaptive / full:>6.2f} {scheduled:>10}")
    data = openb_dir()
    node_csv, pod_csv = data / "openb_node_list_gpu_node.csv", data / "openb_pod_list_default.csv"
    if not node_csv.exists() or not pod_csv.exists():
        print(f"openb fill timing skipped: {node_csv if not node_csv.exists() else pod_csv} not found "
              "(set GPUFLEET_SHARED to the folder holding data/openb)")
        return 0
    nodes, pods = read_nodes(node_csv), read_pods(pod_csv)
    profile = dataclasses.replace(builtin_profile("binpack"), percentage_of_nodes_to_score=100)
    started = time.perf_counter()
    arrivals = tune_to_demand(pods, gpu_capacity_milli(nodes), seed=42)
    result = run_fill(nodes, arrivals, [profile], 42, typical_pods(pods), "binpack")
    elapsed = time.perf_counter() - started
    print(f"openb default fill to 130% with binpack (seed 42, full scan): {len(nodes)} nodes, "
          f"{result.pods_arrived} pods, {elapsed:.1f} s ({result.pods_arrived / elapsed:.0f} pods/s incl. "
          f"metrics); allocation {result.allocation_ratio[100]:.2f}% at 100%, "
          f"{result.allocation_ratio[130]:.2f}% at 130%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
