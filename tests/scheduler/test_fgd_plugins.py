"""The FGD paper's policies on small hand-made clusters; every expected value is worked out by hand in the
comments from the rules in each plugin's docstring (the FGD simulator's formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpufleet.cluster import ClusterState, Node, Pod
from gpufleet.scheduler import CycleState, Scheduler, builtin_profile
from gpufleet.scheduler.fragmentation import TypicalPods, capacity_fragment, sigmoid_score
from gpufleet.scheduler.plugins.bestfit import BestFit
from gpufleet.scheduler.plugins.clustering import GpuClustering
from gpufleet.scheduler.plugins.dotprod import DotProd
from gpufleet.scheduler.plugins.fgd import FGD
from gpufleet.scheduler.plugins.fgd_capacity import CapacityFGD
from gpufleet.scheduler.plugins.gpupacking import GpuPacking

from .helpers import plugin_scores

# Two typical pods, half the pods each: a 500-milli share and a whole GPU, 1 CPU core each.
TYPICAL = [{"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 500, "frequency": 0.5},
           {"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 1000, "frequency": 0.5}]


def two_gpu_nodes(n=3, cpu=32000):
    return ClusterState([Node.with_gpus(f"n{i}", cpu, 100000, 2, "V100") for i in range(n)])


def test_fragment_by_hand():
    c = two_gpu_nodes(1)
    t = TypicalPods.from_args(TYPICAL)
    names = c.gpu_model_names
    f = lambda gpu, cpu: float(t.fragment(np.array([gpu]), np.array([cpu]), np.array([0]), names)[0])
    # GPUs free [1000, 1000]: both typical pods fit with nothing short: F = 0.
    assert f([1000, 1000], 32000) == 0
    # [500, 1000]: the share fits (no GPU below 500); the whole GPU fits, GPU 0 (500) is short: 0.5 * 500.
    assert f([500, 1000], 32000) == 250
    # [300, 0]: neither fits -> all 300 free is fragment for both: 300.
    assert f([300, 0], 32000) == 300
    # [1000, 1000] but 500 CPU free: both lack CPU -> all 2000 free: 2000.
    assert f([1000, 1000], 500) == 2000


def test_fgd_sigmoid_score_and_gpu_choice():
    c = two_gpu_nodes()
    c.assign(Pod("a", 1000, 10, 1, 500), 1, (0,))  # node 1: GPUs free [500, 1000]
    plugin = FGD({"typicalPods": TYPICAL})
    state = CycleState()
    share = Pod("b", 1000, 10, 1, 500)
    scores = plugin.score(state, share, c, np.arange(3))
    # Empty node: F 0 -> best candidate leaves [500, 1000]: F 250, delta -250: floor(100 / (1 + e^0.25)) = 43.
    # Node 1: F 250 -> GPU 0 leaves [0, 1000]: F 0, delta +250: floor(100 / (1 + e^-0.25)) = 56.
    assert math.floor(100 / (1 + math.exp(0.25))) == 43 and math.floor(100 / (1 + math.exp(-0.25))) == 56
    assert scores.tolist() == [43, 56, 43]
    assert state["gpu_choice"].get(1) == (0,)  # the half-used GPU
    # A whole GPU: node 1 takes GPU 1, leaving [500, 0]: the whole-GPU typical pod no longer fits, so all
    # 500 free is its fragment: F 0.5*500 = 250, unchanged: sigmoid(0) -> 50; empty nodes: 0 -> 0: 50.
    assert plugin.score(CycleState(), Pod("c", 1000, 10, 1, 1000), c, np.arange(3)).tolist() == [50, 50, 50]


def test_fgd_places_share_on_half_used_gpu_end_to_end():
    nodes = [Node.with_gpus(f"n{i}", 32000, 100000, 2, "V100") for i in range(3)]
    cfg = builtin_profile("fgd")
    cfg.plugin_args["FGD"] = {"typicalPods": TYPICAL}
    c = ClusterState(nodes)
    s = Scheduler(c, [cfg], seed=1, clock=lambda: 0.0)
    c.assign(Pod("a", 1000, 10, 1, 500), 2, (1,))
    p = Pod("b", 1000, 10, 1, 500)
    s.add(p)
    out = s.schedule_one()
    assert out.node_name == "n2" and out.gpu_indices == (1,)


def test_sigmoid_score_truncates():
    # sigmoid(0) = 0.5 -> 50; sigmoid(1) = 0.731 -> 73; sigmoid(-1) = 0.269 -> 26.
    assert sigmoid_score(np.array([0.0, 1000.0, -1000.0])).tolist() == [50, 73, 26]


def test_dotprod_prefers_smaller_dot_product():
    c = ClusterState([Node.with_gpus("big", 128000, 10**6, 8, "G"), Node.with_gpus("small", 32000, 10**6, 2, "G")])
    pod = Pod("p", 64000, 10, 8, 1000)
    # big: (128000/128000)*(64000/128000) + (8000/8000)*(8000/8000) = 1.5 -> trunc(100*(1 - 0.75)) = 25.
    # small: cpu 32000 < 64000 -> 0.
    assert plugin_scores(DotProd(), c, pod) == [25, 0]


def test_bestfit_raw_then_min_max():
    c = ClusterState([Node.with_gpus("a", 64000, 10**6, 2, "G"), Node.with_gpus("b", 32000, 10**6, 1, "G"),
                      Node.with_gpus("c", 128000, 10**6, 8, "G")])
    pod = Pod("p", 16000, 10, 1, 1000)
    # a: 0.5*48000/128000 + 0.5*1000/8000 = 0.25 -> 75; b: 0.5*16000/128000 = 0.0625 -> 93 (trunc 93.75);
    # c: 0.5*112000/128000 + 0.5*7000/8000 = 0.875 -> 12. Normalised: (s-12)*100//81 -> 77, 100, 0.
    assert BestFit().score(CycleState(), pod, c, np.arange(3)).tolist() == [75, 93, 12]
    assert plugin_scores(BestFit(), c, pod) == [77, 100, 0]


def test_gpu_packing_cases():
    c = ClusterState([Node.with_gpus(f"n{i}", 64000, 10**6, 4, "G") for i in range(3)])
    c.assign(Pod("x", 1000, 10, 1, 700), 1, (0,))  # n1: [300, 1000, 1000, 1000]
    c.assign(Pod("y", 1000, 10, 1, 1000), 2, (0,))  # n2: [0, 1000, 1000, 1000]
    share = Pod("s", 1000, 10, 1, 200)
    # n0 all free: max(33 - 4, 4) = 29; n1 fits on the 300 GPU: 100 - (300*100//1000)//10 = 97;
    # n2 must break a free GPU: max(50 - 1, 33) = 49.
    assert plugin_scores(GpuPacking(), c, share) == [29, 97, 49]
    whole = Pod("w", 1000, 10, 2, 1000)
    # n0: 29; n1, n2: case 2 with 2 fully free GPUs: 50 - 2 = 48.
    assert plugin_scores(GpuPacking(), c, whole) == [29, 48, 48]
    assert plugin_scores(GpuPacking(), c, Pod("cpu", 1000, 10)) == [0, 0, 0]


def test_gpu_clustering_kinds():
    c = ClusterState([Node.with_gpus(f"n{i}", 64000, 10**6, 8, "G") for i in range(4)])
    c.assign(Pod("a", 1000, 10, 1, 500), 1, (0,))  # n1: one fractional pod (7500 free)
    c.assign(Pod("b", 1000, 10, 1, 500), 2, (0,))
    c.assign(Pod("c", 1000, 10, 2, 1000), 2, (1, 2))  # n2: fractional + 2-GPU pods (5500 free)
    c.assign(Pod("d", 1000, 10, 1, 1000), 3, (0,))  # n3: a 1-GPU pod (7000 free)
    share = Pod("s", 1000, 10, 1, 300)
    # base = 25*(8000-free)//8000: n0 0, n1 1 (25*500//8000), n2 7 (25*2500//8000), n3 3 (25*1000//8000).
    # n0 no GPU pods +25; n1 only fractional +75; n2 includes fractional +50; n3 other kinds only +0.
    assert plugin_scores(GpuClustering(), c, share) == [25, 76, 57, 3]


def test_random_fgd_one_node_scores_100_and_random_gpu():
    cfg = builtin_profile("random-fgd")
    c = two_gpu_nodes(4)
    s = Scheduler(c, [cfg], seed=3, clock=lambda: 0.0)
    plugin = s.frameworks[cfg.scheduler_name].profile.plugins("score")[0].plugin
    state = CycleState()
    scores = plugin.score(state, Pod("p", 1000, 10, 1, 300), c, np.arange(4))
    assert sorted(scores.tolist()) == [0, 0, 0, 100]
    assert all(state["gpu_choice"].get(i)[0] in (0, 1) for i in range(4))


def test_node_rank_breaks_ties():
    c = two_gpu_nodes(4)
    s = Scheduler(c, [builtin_profile("packing")], seed=0, clock=lambda: 0.0)
    s.handle.node_rank = np.array([3, 2, 0, 1])
    p = Pod("p", 1000, 10, 1, 1000)  # every node all free: the same GpuPacking score
    s.add(p)
    assert s.schedule_one().node_name == "n2"  # rank 0


def test_capacity_fragment_by_hand():
    t = TypicalPods.from_args([{"cpuMilli": 4000, "numGpu": 1, "gpuMilli": 400, "frequency": 1.0}])
    f = lambda gpu, cpu: float(capacity_fragment(t, np.array([gpu]), np.array([cpu]), np.array([0]), ["V"])[0])
    # GPUs [1000, 1000]: 2 copies per GPU = 4 by GPU; 16000 CPU -> 4 by CPU: 4*400 used, 2000-1600 = 400.
    assert f([1000, 1000], 16000) == 400
    # The same GPUs with 8000 CPU: 2 copies: 2000 - 800 = 1200 (FGD's measure would say 0 for both).
    assert f([1000, 1000], 8000) == 1200
    assert float(TypicalPods.fragment(t, np.array([[1000, 1000]]), np.array([8000]), np.array([0]), ["V"])[0]) == 0


def test_capacity_fgd_avoids_draining_cpu_of_gpu_node():
    # n0: 2 free GPUs and 8 cores; n1: no GPU free, 8 cores. A 4-core CPU pod on n0 halves the copies of the
    # typical 4-core 400-milli pod n0 can take: F_cap 1200 -> 1600, delta -400 -> floor(100*sigmoid(-0.4)) = 40;
    # on n1 nothing changes (no free GPU): 50.
    c = ClusterState([Node.with_gpus("n0", 8000, 10**6, 2, "V"), Node.with_gpus("n1", 8000, 10**6, 2, "V")])
    c.assign(Pod("x", 0, 10, 2, 1000), 1, (0, 1))
    plugin = CapacityFGD({"typicalPods": [{"cpuMilli": 4000, "numGpu": 1, "gpuMilli": 400, "frequency": 1.0}]})
    assert plugin_scores(plugin, c, Pod("cpu", 4000, 10)) == [40, 50]


def test_typical_pods_arg_errors():
    with pytest.raises(ValueError, match="typicalPods\\[0\\]"):
        FGD({"typicalPods": [{"numGpu": 1, "gpuMilli": 0, "frequency": 1}]})
    with pytest.raises(ValueError, match="unknown argument"):
        FGD({"typical": []})
