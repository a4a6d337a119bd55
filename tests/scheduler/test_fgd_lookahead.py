"""gpufleet's look-ahead FGD policy (fgd-la) on small hand-made clusters; every expected value is worked out by
hand in the comments from the rules in plugins/fgd_lookahead.py's docstring."""

from __future__ import annotations

import numpy as np
import pytest

from gpufleet.cluster import ClusterState, Node, Pod
from gpufleet.scheduler import CycleState, Scheduler, builtin_profile
from gpufleet.scheduler.fragmentation import TypicalPods
from gpufleet.scheduler.plugins.fgd_lookahead import LookaheadFGD, LookaheadTieBreak, hole_waste

# One typical pod: a 300-milli share with 1 core.
SHARE300 = [{"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 300, "frequency": 1.0}]


def test_hole_waste_by_hand():
    t = TypicalPods.from_args([{"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 500, "frequency": 0.5},
                               {"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 1000, "frequency": 0.5}])
    w = hole_waste(t, fill=10)
    # h < 500: nothing fits, W(h) = h. W(500): only the 500 share fits, Q = 0.5, P = min(1, 10*0.5) = 1:
    # W(0) = 0. W(700) = W(200) = 200. W(1000): both fit, P = 1: 0.5 W(500) + 0.5 W(0) = 0.
    assert (w[499], w[500], w[700], w[1000]) == (499, 0, 200, 0)
    w = hole_waste(t, fill=1)
    # fill 1: P(500) = 0.5: W(500) = 0.5*500 + 0.5*W(0) = 250; W(700) = 0.5*700 + 0.5*W(200) = 450;
    # W(1000): P = 1: 0.5*W(500) + 0.5*W(0) = 125.
    assert (w[500], w[700], w[1000]) == (250, 450, 125)


def test_gpu_choice_prefers_the_hole_the_share_leaves_fillable():
    # GPUs free [600, 500]; the typical pod is a 300 share, the pod a 200 share. FGD's F (GPUs with < 300 free)
    # is 0 before and after either GPU ([400, 500] or [600, 300]): both score 50 and FGD takes GPU 0.
    # W (fill 10, only 300 fits, P = 1 from 300 on): W(h) = h below 300, W(h) = W(h - 300) above:
    # W(600) = 0, W(500) = 200, W(400) = 100, W(300) = 0. GPU 0: W(400) - W(600) = +100;
    # GPU 1: W(300) - W(500) = -200: the look-ahead takes GPU 1 (500 -> 300, which a 300 share fills exactly).
    c = ClusterState([Node.with_gpus("n0", 8000, 10**6, 2, "V")])
    c.assign(Pod("a", 0, 10, 1, 400), 0, (0,))
    c.assign(Pod("b", 0, 10, 1, 500), 0, (1,))
    plugin = LookaheadFGD({"typicalPods": SHARE300})
    state = CycleState()
    assert plugin.score(state, Pod("p", 1000, 10, 1, 200), c, np.array([0])).tolist() == [50]
    assert state["gpu_choice"].get(0) == (1,)


def one_gpu_nodes():
    # n0: one GPU with 600 free; n1: one GPU with 500 free; 8 cores each.
    c = ClusterState([Node.with_gpus("n0", 8000, 10**6, 1, "V"), Node.with_gpus("n1", 8000, 10**6, 1, "V")])
    c.assign(Pod("a", 0, 10, 1, 400), 0, (0,))
    c.assign(Pod("b", 0, 10, 1, 500), 1, (0,))
    return c


def test_tie_break_by_lookahead_growth_by_hand():
    # A 200 share (1 core). FGD: no GPU below 300 before or after on either node: 50 and 50, a tie.
    # n0: F_cap before: floor(600/300) = 2 copies (CPU allows 8): 600 - 600 = 0; after [400], 7 cores: 1 copy:
    #     400 - 300 = 100; hole W(400) - W(600) = 100 - 0. growth 200 -> bucket floor(200/200) = 1.
    # n1: F_cap before [500]: 1 copy: 200; after [300]: 1 copy: 0; hole W(300) - W(500) = -200.
    #     growth -400 -> bucket -2 (the best).
    # LookaheadTieBreak: best bucket 99, n0 three buckets worse: 96.
    c = one_gpu_nodes()
    plugin = LookaheadFGD({"typicalPods": SHARE300})
    state = CycleState()
    nodes = np.arange(2)
    pod = Pod("p", 1000, 10, 1, 200)
    assert plugin.score(state, pod, c, nodes).tolist() == [50, 50]
    assert LookaheadTieBreak().score(state, pod, c, nodes).tolist() == [96, 99]
    # Without LookaheadFGD's entry in the cycle state the tie-break is neutral.
    assert LookaheadTieBreak().score(CycleState(), pod, c, nodes).tolist() == [0, 0]


def test_hole_waste_in_the_primary_by_hand():
    # mu = 1 (policy fgd-la-hole): the same 200 share; FGD's F changes by 0 on both nodes, so the descent is
    # -(W growth): n0 -100 -> floor(100 / (1 + e^0.1)) = floor(47.50) = 47; n1 +200 -> floor(54.98) = 54.
    # The primary alone now prefers n1; the tie-break has one top node.
    c = one_gpu_nodes()
    plugin = LookaheadFGD({"typicalPods": SHARE300, "mu": 1})
    state = CycleState()
    nodes = np.arange(2)
    pod = Pod("p", 1000, 10, 1, 200)
    assert plugin.score(state, pod, c, nodes).tolist() == [47, 54]
    assert LookaheadTieBreak().score(state, pod, c, nodes).tolist() == [0, 99]
    # Within a node too: GPUs free [600, 500] score 47 and 54, and the share goes to GPU 1.
    c = ClusterState([Node.with_gpus("n0", 8000, 10**6, 2, "V")])
    c.assign(Pod("a", 0, 10, 1, 400), 0, (0,))
    c.assign(Pod("b", 0, 10, 1, 500), 0, (1,))
    state = CycleState()
    assert plugin.score(state, pod, c, np.array([0])).tolist() == [54]
    assert state["gpu_choice"].get(0) == (1,)
    with pytest.raises(ValueError, match="mu"):
        LookaheadFGD({"mu": -1})


def test_fgd_la_end_to_end_beats_the_node_rank_only_on_ties():
    def run(policy):
        c = one_gpu_nodes()
        cfg = builtin_profile(policy)
        plugin = "FGD" if policy == "fgd" else "LookaheadFGD"
        cfg.plugin_args[plugin] = {**cfg.plugin_args.get(plugin, {}), "typicalPods": SHARE300}
        s = Scheduler(c, [cfg], seed=1, clock=lambda: 0.0)
        s.handle.node_rank = np.array([0, 1])  # n0 wins ties
        s.add(Pod("p", 1000, 10, 1, 200))
        out = s.schedule_one()
        return out.node_name, out.gpu_indices

    assert run("fgd") == ("n0", (0,))  # FGD: tie, the rank picks n0
    assert run("fgd-la") == ("n1", (0,))  # the look-ahead: n1 (growth -400 against +200)
    assert run("fgd-la-hole") == ("n1", (0,))  # the primary itself: 54 against 47


# Whole GPUs (half the pods) and shares of 470, 650 and 320 (an optimal packing pairs 470 with 470, 650 with 320).
WHOLE_AND_SHARES = [{"cpuMilli": 1000, "numGpu": 1, "gpuMilli": m, "frequency": f}
                    for m, f in ((1000, 0.5), (470, 0.25), (650, 0.125), (320, 0.125))]


def test_dual_hole_waste_keeps_a_470_hole_for_a_470():
    # n0: one GPU with a 470 share (530 free); n1: one empty GPU. The pod: a 320 share.
    # FGD's F: n0 before: the 1000 and the 650 pods lack GPU: 530 * (0.5 + 0.125) = 331.25; after (210 free):
    #   every pod lacks GPU: 210. Descent +121.25: floor(100 * sigmoid(0.12125)) = 53.
    #   n1 before: 0; after (680 free): the 1000 pods lack GPU: 680 * 0.5 = 340. Descent -340: 41. FGD takes n0.
    # Dual prices (share_prices): y_1000 = 1, y_470 = 1/2, y_650 + y_320 = 1 with y_320 in [0, 1/3].
    #   n0: W(530) = 530 - 1000 y_470 = 30, W(210) = 210 (nothing priced fits): growth +180. mu = 5 (fgd-la-dual):
    #   descent 121.25 - 900 = -778.75: floor(100 * sigmoid(-0.77875)) = floor(31.46) = 31.
    #   n1: W(1000) = 0, W(680) = 680 - 1000 y_650 <= 680 - 1000 * 2/3 = 13.3: growth <= 13.3,
    #   descent >= -340 - 66.7: score >= floor(39.97) = 39. fgd-la-dual takes n1 and leaves the 530 hole for a
    #   470.
    c = ClusterState([Node.with_gpus("n0", 8000, 10**6, 1, "V"), Node.with_gpus("n1", 8000, 10**6, 1, "V")])
    c.assign(Pod("a", 0, 10, 1, 470), 0, (0,))
    pod = Pod("p", 1000, 10, 1, 320)
    score = LookaheadFGD({"typicalPods": WHOLE_AND_SHARES, "mu": 5, "holeModel": "dual"}).score(
        CycleState(), pod, c, np.arange(2)).tolist()
    assert score[0] == 31 and score[1] >= 39
    assert LookaheadFGD({"typicalPods": WHOLE_AND_SHARES}).score(CycleState(), pod, c, np.arange(2)).tolist() == \
        [53, 41]

    def run(policy):
        cfg = builtin_profile(policy)
        plugin = "FGD" if policy == "fgd" else "LookaheadFGD"
        cfg.plugin_args[plugin] = {**cfg.plugin_args.get(plugin, {}), "typicalPods": WHOLE_AND_SHARES}
        s = Scheduler(c, [cfg], seed=1, clock=lambda: 0.0)
        s.handle.node_rank = np.array([0, 1])
        fresh = Pod("p", 1000, 10, 1, 320)
        s.add(fresh)
        out = s.schedule_one()
        c.release(fresh.uid)
        return out.node_name

    assert run("fgd") == "n0"
    assert run("fgd-la-dual") == "n1"
    with pytest.raises(ValueError, match="holeModel"):
        LookaheadFGD({"holeModel": "best-fit"})


def test_primary_score_is_fgds():
    # Two 2-GPU nodes, node 1 with [500, 1000] free, typical pods 500 and 1000 (half each): the FGD test's
    # figures (test_fgd_plugins.test_fgd_sigmoid_score_and_gpu_choice): 43 on the empty node, 56 on node 1.
    typical = [{"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 500, "frequency": 0.5},
               {"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 1000, "frequency": 0.5}]
    c = ClusterState([Node.with_gpus(f"n{i}", 32000, 100000, 2, "V100") for i in range(2)])
    c.assign(Pod("a", 1000, 10, 1, 500), 1, (0,))
    state = CycleState()
    assert LookaheadFGD({"typicalPods": typical}).score(state, Pod("b", 1000, 10, 1, 500), c,
                                                        np.arange(2)).tolist() == [43, 56]
    # Only node 1 has the top score: it gets 99, node 0 0.
    assert LookaheadTieBreak().score(state, Pod("b", 1000, 10, 1, 500), c, np.arange(2)).tolist() == [0, 99]


def test_fgd_la_profile_weights_and_args():
    for policy in ("fgd-la", "fgd-la-hole", "fgd-la-dual"):
        cfg = builtin_profile(policy)
        assert cfg.plugins["score"] == [("LookaheadFGD", 100), ("LookaheadTieBreak", 1)]
        assert cfg.plugins["reserve"][0] == ("LookaheadFGD", 1)
    assert builtin_profile("fgd-la-hole").plugin_args["LookaheadFGD"] == {"mu": 1.0}
    assert builtin_profile("fgd-la-dual").plugin_args["LookaheadFGD"] == {"mu": 5.0, "holeModel": "dual"}
    with pytest.raises(ValueError, match="unknown argument"):
        LookaheadFGD({"alpha": 1})
    with pytest.raises(ValueError, match="quantum"):
        LookaheadFGD({"quantum": 0})


def two_model_cluster():
    # nA: one GPU of model A, nB: one GPU of model B, both empty.
    return ClusterState([Node.with_gpus("nA", 8000, 10**6, 1, "A"), Node.with_gpus("nB", 8000, 10**6, 1, "B")])


# Half the typical demand is a 500 share that only model A can run, half a 500 share that runs anywhere.
RESTRICTED = [{"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 500, "gpuModels": ["A"], "frequency": 0.5},
              {"cpuMilli": 1000, "numGpu": 1, "gpuMilli": 500, "frequency": 0.5}]


def test_model_pressure_by_hand():
    # demands d = 0.5 * 500 = 250 each, total 500; free A = B = 1000, cluster 2000.
    # pressure(A) = (250 / 1000) / (500 / 2000) = 1.0; B: no restricted pod names it: 0.
    c = two_model_cluster()
    plugin = LookaheadFGD({"typicalPods": RESTRICTED})
    names = list(c.gpu_model_names)
    p = plugin.model_pressure(plugin.typical, c)
    assert (p[names.index("A")], p[names.index("B")]) == (1.0, 0.0)
    # A 600 share on A: free A 400, cluster 1400: (250 / 400) / (500 / 1400) = 1.75.
    c.assign(Pod("x", 0, 10, 1, 600), 0, (0,))
    assert plugin.model_pressure(plugin.typical, c)[names.index("A")] == pytest.approx(1.75)
    # No restricted typical pod: no pressure anywhere.
    assert not LookaheadFGD({"typicalPods": SHARE300}).model_pressure(TypicalPods.from_args(SHARE300), c).any()


def test_model_guard_keeps_the_tie_break_off_models_restricted_pods_need():
    c = two_model_cluster()
    plugin = LookaheadFGD({"typicalPods": RESTRICTED})
    nodes, top, pod = np.arange(2), np.array([True, True]), Pod("p", 1000, 10, 1, 500)
    # FGD's pick nB (rank 0) has pressure 0: nA (pressure 1 > 0.5 x 0, another model) is not eligible.
    assert plugin.guard(pod, c, nodes, top, np.array([1, 0])).tolist() == [False, True]
    # FGD's pick nA has pressure 1 > pressureLimit 0.5: FGD's choice is kept.
    assert plugin.guard(pod, c, nodes, top, np.array([0, 1])).tolist() == [True, False]
    # With pressureLimit 2 the pick nA does not bind, and nB (0 <= 0.5 x 1) may take the pod.
    loose = LookaheadFGD({"typicalPods": RESTRICTED, "pressureLimit": 2})
    assert loose.guard(pod, c, nodes, top, np.array([0, 1])).tolist() == [True, True]
    # modelGuard false: every top node stays eligible.
    off = LookaheadFGD({"typicalPods": RESTRICTED, "modelGuard": False})
    assert off.guard(pod, c, nodes, top, np.array([1, 0])).tolist() == [True, True]
    with pytest.raises(ValueError, match="modelGuard"):
        LookaheadFGD({"modelGuard": "yes"})
    with pytest.raises(ValueError, match="pressureMargin"):
        LookaheadFGD({"pressureMargin": -1})


def test_model_pressure_without_typical_pods_follows_the_pod_and_stays_bounded():
    # No typicalPods arg: the pod stands for the workload, so each pod's own restriction sets the pressure,
    # and the per-workload cache holds one entry per distinct pod shape, not one per pod.
    c = two_model_cluster()
    plugin = LookaheadFGD()
    names = list(c.gpu_model_names)
    for i in range(40):
        expect = "AB"[i % 2]
        pod = Pod(f"p{i}", 1000, 10, 1, 500, gpu_models=(expect,))
        p = plugin.model_pressure(plugin.typical_for(pod), c)
        # all demand is restricted to one model with 1000 of the 2000 free milli: (d / 1000) / (d / 2000) = 2
        assert p[names.index(expect)] == 2.0 and p.sum() == 2.0
    assert len(plugin._restricted) == 2
