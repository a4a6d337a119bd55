"""Replay mode: arrivals at creation_time, departures after the run time, waiting pods retried."""

from __future__ import annotations

import pytest

from gpufleet.sim.replay import Replay, run_replay

from .conftest import gpu_node, gpu_pod, profiles


def test_a_pod_that_does_not_fit_waits_until_another_leaves():
    first = gpu_pod("first", creation_time=0.0, deletion_time=100.0)
    second = gpu_pod("second", creation_time=10.0, deletion_time=50.0)  # runs 40 s once bound
    replay = Replay([gpu_node("n0", 1)], [first, second], profiles("binpack"), seed=0)
    result = replay.run("binpack", 0)
    first_copy, second_copy = replay.pods
    assert replay.bind_time[first_copy.uid] == 0.0
    assert replay.bind_time[second_copy.uid] == 100.0  # the moment the first one left
    assert result.pods_scheduled == 2 and result.pods_never_scheduled == 0
    assert result.queueing_delay["p99"] == pytest.approx(89.1)  # delays 0 and 90, linear interpolation
    assert result.mean_queueing_delay == 45.0
    assert replay.last_world_time == 140.0  # the second pod ran its full 40 s after binding
    assert result.unschedulable_reasons == {"Insufficient nvidia.com/gpu": 1}
    assert result.peak_allocation_ratio == 100.0 and result.mean_allocation_ratio == 100.0
    assert second.node_name is None  # the trace pods themselves are left untouched


def test_pods_that_never_fit_are_reported_and_the_run_ends():
    pods = [gpu_pod("small", deletion_time=30.0), gpu_pod("too-big", num_gpu=4, creation_time=5.0),
            gpu_pod("late", creation_time=1000.0, deletion_time=1010.0)]
    result = run_replay([gpu_node("n0", 2)], pods, profiles("spread"), seed=0, policy="spread")
    assert (result.pods_scheduled, result.pods_never_scheduled) == (2, 1)
    assert result.queueing_delay["p50"] == 0.0
    # The big pod is retried after each departure and each unschedulable flush while the world changes.
    assert result.scheduling_attempts >= 3
