"""Fill mode: demand tuning, determinism for a seed, the shape of the allocation curve, binpack vs spread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpufleet.cluster import GpufleetError
from gpufleet.sim.experiment import Experiment, parse_seeds, resolve_policies, run_experiment
from gpufleet.sim.fill import gpu_capacity_milli, run_fill, tune_to_demand
from gpufleet.sim.metrics import typical_pods
from gpufleet.sim.synthetic import synthetic_nodes, synthetic_pods_for

from .conftest import gpu_node, gpu_pod, profiles


def test_tuning_prunes_or_resamples_to_the_demand_target():
    pods = [gpu_pod(f"p{i}") for i in range(10)] + [gpu_pod("cpu", num_gpu=0)]
    pruned = tune_to_demand(pods, capacity_milli=4000, seed=1)  # target 5,200 milli: 6 whole GPUs
    assert sum(p.gpu_request_milli for p in pruned) == 6000
    assert pruned[-1].num_gpu == 1  # it stops at the pod that reaches the target
    grown = tune_to_demand(pods, capacity_milli=20000, seed=1)  # target 26,000: 16 re-sampled
    assert sum(p.gpu_request_milli for p in grown) == 26000
    assert len({p.uid for p in grown}) == len(grown) and sum("~" in p.name for p in grown) >= 16
    assert [p.name for p in tune_to_demand(pods, 4000, seed=1)] == [p.name for p in pruned]
    assert [p.name for p in tune_to_demand(pods, 4000, seed=2)] != [p.name for p in pruned]
    with pytest.raises(GpufleetError, match="ask for GPUs"):
        tune_to_demand([gpu_pod("cpu", num_gpu=0)], 4000, seed=1)


def small_experiment(policy: str, seeds: list[int]) -> Experiment:
    nodes = synthetic_nodes(12)
    return Experiment("small", "fill", nodes, synthetic_pods_for(nodes, seed=3),
                      resolve_policies(policy, None), seeds)


def test_fill_is_deterministic_for_a_seed():
    first = run_experiment(small_experiment("random", [7, 8])).runs
    again = run_experiment(small_experiment("random", [7, 8])).runs
    assert [r.allocation_ratio for r in first] == [r.allocation_ratio for r in again]
    assert [r.fragmentation_ratio for r in first] == [r.fragmentation_ratio for r in again]
    assert first[0].allocation_ratio != first[1].allocation_ratio  # another seed, another run


def test_allocation_curve_is_monotone_and_at_most_100_percent():
    for run in run_experiment(small_experiment("random,spread,binpack", [1])).runs:
        curve = np.array(run.allocation_ratio)
        assert not np.isnan(curve).any()  # 0..130% all reached
        assert curve[0] == 0 and (np.diff(curve) >= 0).all() and curve.max() <= 100
        assert all(0 <= v <= 100 for v in run.fragmentation_ratio)
        assert run.pods_scheduled + run.pods_unschedulable == run.pods_arrived
        if run.pods_unschedulable:
            assert run.unschedulable_reasons  # every skipped pod comes with the filter reasons


def test_binpack_keeps_a_whole_node_free_where_spread_strands_one_gpu_on_each():
    # Seed 002's example: two 2-GPU nodes, two 1-GPU pods, then a 2-GPU pod. Spread puts the 1-GPU pods
    # on different nodes and the 2-GPU pod fits nowhere; binpack puts them together.
    nodes = [gpu_node("n0", 2), gpu_node("n1", 2)]
    results = {}
    for policy in ("spread", "binpack"):
        arrivals = [gpu_pod("one-a"), gpu_pod("one-b"), gpu_pod("two", num_gpu=2)]
        results[policy] = run_fill(nodes, arrivals, profiles(policy), 0, typical_pods(arrivals), policy)
    assert results["binpack"].allocation_ratio[100] == 100.0 and results["binpack"].pods_unschedulable == 0
    assert results["spread"].allocation_ratio[100] == 50.0 and results["spread"].pods_unschedulable == 1
    assert results["spread"].unschedulable_reasons == {"Insufficient nvidia.com/gpu": 1}
    assert math.isnan(results["binpack"].allocation_ratio[101])  # only 100% of capacity ever arrived


def test_seeds_and_policies_parse():
    assert parse_seeds("42..45") == [42, 43, 44, 45] and parse_seeds("1,3") == [1, 3] and parse_seeds("5") == [5]
    for bad in ("x", "3..", ""):
        with pytest.raises(GpufleetError, match="--seeds"):
            parse_seeds(bad)
    policies = resolve_policies("random, binpack", None)
    assert list(policies) == ["random", "binpack"]
    assert all(p.percentage_of_nodes_to_score == 100 for ps in policies.values() for p in ps)
    with pytest.raises(GpufleetError, match="unknown policy 'tetris'"):
        resolve_policies("tetris", None)
    assert gpu_capacity_milli([gpu_node("n", 3)]) == 3000
