"""Planner rules on hand-computed cases (latency ratio 1.0 so the arithmetic stays exact)."""

import pytest

from gpufleet.serving.interference import InterferenceModel
from gpufleet.serving.plan import (Allocation, ModelDemand, residual_batch, saturated_batch, time_share,
                                   time_share_glet)
from gpufleet.serving.planners import make_plan, plan_gpulet, plan_sbp
from gpufleet.serving.planners.gpulet import efficient_partition, glet_order, required_partition

from .conftest import linear_profile, profiles


def test_sbp_merges_two_residuals_into_one_gpu_with_common_duty_cycle():
    # L(b) = 2 + b ms. Saturated batch: 2 (2 + B) <= 100 -> B = 32 (941 req/s > 100: no whole GPU).
    # Residual at 100 req/s: (b - 1) * 10 + 2 + b <= 100 -> b = 9, l = 11, d = min(100 - 11, 90) = 89.
    # Merge: d = 89, b = ceil(8.9) = 9 each, 11 + 11 <= 89 and 89 + 11 <= 100 -> one GPU.
    prof = profiles(a={100: (2, 1)}, b={100: (2, 1)})
    plan = plan_sbp([ModelDemand("a", 100, 100), ModelDemand("b", 100, 100)], prof, ratio=1.0)
    assert plan.feasible and plan.gpus_used == 1
    (part,) = plan.gpus[0]
    assert part.duty_cycle_ms == pytest.approx(89)
    assert [(a.model, a.batch, a.latency_ms) for a in part.allocations] == [("a", 9, 11), ("b", 9, 11)]
    assert part.occupancy == pytest.approx(22 / 89)
    assert all(part.predicted_latency_ms(a) <= 100 for a in part.allocations)


def test_sbp_does_not_merge_when_the_batches_overflow_the_duty_cycle():
    # L(b) = 10 + 2b, SLO 60, 200 req/s: (b - 1) * 5 + 10 + 2b <= 60 -> b = 7, l = 24, d = min(36, 35) = 35.
    # Merging two: d = 35, b = ceil(7) = 7 each, 24 + 24 = 48 > 35 -> two GPUs.
    prof = profiles(d1={100: (10, 2)}, d2={100: (10, 2)})
    plan = plan_sbp([ModelDemand("d1", 200, 60), ModelDemand("d2", 200, 60)], prof, ratio=1.0)
    assert plan.gpus_used == 2
    for (part,) in plan.gpus:
        assert part.duty_cycle_ms == pytest.approx(35) and part.allocations[0].batch == 7


def test_sbp_saturates_whole_gpus_first():
    # L(b) = 2 + b, SLO 100: B = 32, 32 / 34 ms = 941.2 req/s per GPU; 2000 req/s -> 2 saturated GPUs.
    prof = profiles(a={100: (2, 1)})
    plan = plan_sbp([ModelDemand("a", 2000, 100)], prof, ratio=1.0)
    saturated = [p for (p,) in plan.gpus if p.occupancy == pytest.approx(1)]
    assert len(saturated) == 2 and saturated[0].allocations[0].batch == 32
    assert plan.served_rps("a") == pytest.approx(2000)


def test_batch_rules_with_interference_factor():
    prof = linear_profile("m", {50: (2, 2), 100: (2, 1)})
    # residual at 50 %, 100 req/s, SLO 100: 2 + 2b + 10b <= 100 -> b = 8, l = 18, d = min(82, 80) = 80
    assert residual_batch(prof, 50, 100, 100, ratio=1.0) == (8, pytest.approx(18), pytest.approx(80))
    # with factor 1.5: 1.5 (2 + 2b) + 10b <= 100 -> 13b <= 97 -> b = 7, l = 24, d = min(76, 70) = 70
    assert residual_batch(prof, 50, 100, 100, factor=1.5, ratio=1.0) == (7, pytest.approx(24), pytest.approx(70))
    # saturated at 100 %: 2 * 1.5 * (2 + b) <= 100 -> b = 31
    assert saturated_batch(prof, 100, 100, factor=1.5, ratio=1.0)[0] == 31
    assert saturated_batch(prof, 100, 100, ratio=1.0)[0] == 32


def test_time_share_rejects_a_member_that_would_miss_its_slo():
    prof = linear_profile("m", {100: (2, 1)})
    members = [(Allocation("x", 1, 100, 0, 100), prof), (Allocation("y", 1, 100, 0, 20), prof)]
    # d = 10: b = 1 each, l = 3; 10 + 3 <= 20 -> feasible
    assert [a.batch for a in time_share(members, 10, 100, ratio=1.0)] == [1, 1]
    # d = 18: y needs b = ceil(1.8) = 2, l = 4, 18 + 4 > 20 -> infeasible
    assert time_share(members, 18, 100, ratio=1.0) is None


def test_gpulet_partition_choice():
    prof = linear_profile("m", {50: (2, 2), 100: (2, 1)})
    # saturated throughput: 50 %: 2 (2 + 2b) <= 100 -> b = 24, 24 / 50 ms = 480; 100 %: 32 / 34 ms = 941
    assert efficient_partition(prof, 100, (50, 100), ratio=1.0) == 100
    assert required_partition(prof, 100, 100, (50, 100), ratio=1.0) == 50   # b = 8 at 50 % (above)
    assert required_partition(prof, 100, 900, (50, 100), ratio=1.0) == 100


def test_gpulet_splits_a_gpu_and_places_the_second_model_in_the_other_half():
    # a: SLO 100 at 100 req/s -> p_req = 50 -> the GPU splits into 50 (a) + 50 (free).
    # b: SLO 25 -> at 50 %: b = 1 (l = 4, waits 10), d = 10; time sharing a's gpulet (d = 80) would give
    # b's requests 80 + 18 > 25, so b takes the free 50 % gpulet.
    prof = profiles(a={50: (2, 2), 100: (2, 1)}, b={50: (2, 2), 100: (2, 1)})
    demands = [ModelDemand("a", 100, 100), ModelDemand("b", 100, 25)]
    plan = plan_gpulet(demands, prof, max_gpus=2, partitions=(50, 100), ratio=1.0)
    assert plan.feasible and plan.gpus_used == 1
    parts = {p.models[0]: p for p in plan.gpus[0]}
    assert parts["a"].percent == 50 and parts["a"].allocations[0].batch == 8
    assert parts["b"].percent == 50 and parts["b"].allocations[0].batch == 1
    assert parts["b"].duty_cycle_ms == pytest.approx(10)


def test_gpulet_time_shares_with_glets_rule_when_no_free_gpulet_is_left():
    # glet's order: best fit first, time sharing last. On one GPU a and c (100 req/s, SLO 100) take the two
    # 50 % gpulets (b = 8, l = 18, d = 80); e (20 req/s, SLO 600: rate x SLO 12000, placed last) finds no
    # free gpulet and joins a's (the first of equal occupancy 18/80): b_e = floor(80 x 0.02) = 1,
    # d = 1 / 20 req/s = 50 ms, l_e = 4 (50 + 4 < 600, 4 / 50 < 1 - 0.225); a re-batched to
    # floor(50 x 0.1) = 5, l = 12; 4 + 12 <= 50 and 50 + 16 <= 100.
    prof = profiles(a={50: (2, 2), 100: (2, 1)}, c={50: (2, 2), 100: (2, 1)}, e={50: (2, 2), 100: (2, 1)})
    demands = [ModelDemand("a", 100, 100), ModelDemand("c", 100, 100), ModelDemand("e", 20, 600)]
    plan = plan_gpulet(demands, prof, max_gpus=1, partitions=(50, 100), ratio=1.0)
    assert plan.feasible and len(plan.gpus) == 1 and [p.percent for p in plan.gpus[0]] == [50, 50]
    shared = next(p for p in plan.gpus[0] if len(p.allocations) == 2)
    assert shared.models == ["a", "e"] and shared.duty_cycle_ms == pytest.approx(50)
    assert [(a.batch, a.latency_ms) for a in shared.allocations] == [(5, pytest.approx(12)), (1, pytest.approx(4))]


def test_glet_time_share_rule_leaves_slack_that_nexus_does_not():
    # a's gpulet as above (b = 8, l = 18, d = 80). A newcomer e at 100 req/s, SLO 100: b_e = 8, d = 80,
    # l_e = 18; a keeps b = 8. Nexus accepts (18 + 18 <= 80, 80 + 18 <= 100); glet's rule wants
    # d + l_a + l_e = 116 <= 100 and refuses.
    prof = profiles(a={50: (2, 2)}, e={50: (2, 2)})
    a = Allocation("a", 8, 100, 18, 100)
    e = Allocation("e", 1, 100, 0, 100)
    assert time_share([(a, prof["a"]), (e, prof["e"])], 80, 50, ratio=1.0) is not None
    assert time_share_glet([(a, prof["a"])], e, prof["e"], 80, 18 / 80, 50, ratio=1.0) is None
    shared, duty = time_share_glet([(a, prof["a"])], Allocation("e", 1, 20, 0, 600), prof["e"], 80, 18 / 80, 50,
                                   ratio=1.0)
    assert duty == pytest.approx(50) and [(x.model, x.batch) for x in shared] == [("a", 5), ("e", 1)]


def test_glet_order_is_increasing_rate_times_slo_then_larger_glet_id():
    # scheduler_incremental.cpp cmp_task_dsc sorts increasing rate x SLO; ties: larger id of
    # scheduler_base.h _IDtoModelName first (resnet50 = 7 before lenet6 = 5 before lenet1 = 0).
    demands = [ModelDemand("lenet1", 10, 95), ModelDemand("lenet6", 10, 95), ModelDemand("resnet50", 10, 95),
               ModelDemand("vgg16", 1, 142), ModelDemand("bert_base", 100, 22)]
    assert [d.name for d in sorted(demands, key=glet_order)] == ["vgg16", "resnet50", "lenet6", "lenet1", "bert_base"]


def test_gpulet_readjust_uses_a_leftover_gpulet_smaller_than_p_ideal():
    # a (rate x SLO 200000, before b's 300000) needs 80 % (p_eff = p_req = 80): the GPU splits into
    # 80 + 20. b's p_ideal is 80 too, but no GPU can be added: glet's readjust puts b into the leftover
    # 20 % gpulet, saturated (2 (10 + 10 b) <= 100: b = 4, 50 ms, 80 req/s); time sharing a's gpulet
    # fails (b's batches overflow its share), so the other 2920 req/s stay unserved.
    prof = profiles(a={20: (50, 50), 80: (2, 1), 100: (2, 1)}, b={20: (10, 10), 80: (2, 1), 100: (2, 1)})
    plan = plan_gpulet([ModelDemand("a", 100, 2000), ModelDemand("b", 3000, 100)], prof, max_gpus=1,
                       partitions=(20, 80, 100), ratio=1.0)
    parts = {p.models[0]: p for p in plan.gpus[0] if p.allocations}
    assert parts["a"].percent == 80 and parts["b"].percent == 20
    assert parts["b"].allocations[0].batch == 4 and parts["b"].allocations[0].rate_rps == pytest.approx(80)
    assert plan.unserved_rps == {"b": pytest.approx(2920)}


def test_gpulet_leaves_a_remainder_of_at_most_15_req_s_unplaced():
    # L(b) = 2 + b on a whole GPU, SLO 100: one saturated GPU serves 32 / 34 ms = 941.2 req/s; the other
    # 8.8 of 950 req/s are below glet's TRP_SLACK (15) and get no second GPU.
    prof = profiles(a={100: (2, 1)})
    plan = plan_gpulet([ModelDemand("a", 950, 100)], prof, partitions=(100,), ratio=1.0)
    assert plan.feasible and plan.gpus_used == 1
    assert plan.tolerated_rps == {"a": pytest.approx(950 - 32000 / 34)}


def test_gpulet_takes_a_whole_free_gpu_before_a_larger_leftover_gpulet():
    # glet's findBestFit with all GPUs present: c (20 req/s, p_ideal 20) splits a whole GPU into 20 + 80;
    # a (100 req/s, p_ideal 50) prefers the other whole GPU to the leftover 80 % (not an exact fit).
    part = {50: (2, 2), 80: (2, 1.5), 100: (2, 1)}
    prof = profiles(a={20: (50, 50), **part}, c={20: (2, 2), **part})
    demands = [ModelDemand("a", 100, 100), ModelDemand("c", 20, 100)]
    plan = plan_gpulet(demands, prof, max_gpus=2, partitions=(20, 50, 80, 100), ratio=1.0)
    assert plan.feasible and plan.gpus_used == 2
    assert sorted(p.percent for _, p in plan.partitions() if p.allocations) == [20, 50]


def test_interference_aware_gpulet_rebatches_a_slowed_neighbour():
    # A constant factor 1.5 between a and b. b (SLO 25) joins a's GPU; a's batch of 8 at 50 % would take
    # 1.5 * 18 = 27 ms and 80 + 27 > 100, so a is re-batched for its rate with the factor: b = 7,
    # l = 1.5 * 16 = 24 ms, d = 70 ms (70 + 24 <= 100). Plain gpulet keeps a's batch of 8.
    prof = profiles(a={50: (2, 2), 100: (2, 1)}, b={50: (2, 2), 100: (2, 1)})
    util = {("a", 1): (0.5, 0.5), ("b", 1): (0.5, 0.5)}
    demands = [ModelDemand("a", 100, 100), ModelDemand("b", 100, 25)]
    plain = plan_gpulet(demands, prof, max_gpus=2, partitions=(50, 100), ratio=1.0)
    assert plain.gpus_used == 1 and next(p for _, p in plain.partitions() if "a" in p.models).allocations[0].batch == 8
    aware = plan_gpulet(demands, prof, max_gpus=2, interference=InterferenceModel((0, 0, 0, 0, 1.5), util),
                        partitions=(50, 100), ratio=1.0)
    assert aware.planner == "gpulet+int" and aware.feasible and aware.gpus_used == 1
    part_a = next(p for _, p in aware.partitions() if "a" in p.models)
    assert part_a.allocations[0].batch == 7 and part_a.duty_cycle_ms == pytest.approx(70)
    assert part_a.allocations[0].latency_ms == pytest.approx(24) and part_a.interference_factor == pytest.approx(1.5)
    for _, p in aware.partitions():
        for a in p.allocations:
            assert p.predicted_latency_ms(a) <= a.slo_ms + 1e-9


def test_interference_threshold_tolerates_a_small_loss_and_retries_a_large_one():
    # One GPU. b (100 req/s, SLO 25) first: 50 %, b = 1, l = 4, d = 10. a (100 req/s, SLO 100) joins the
    # other 50 % with a constant factor f, and b is re-checked: l_b = 4 f.
    # f = 2.8: 11.2 ms > d, no residual batch keeps up, saturated b = 1 (22.4 <= 25) serves 89.3 req/s,
    # above 85 % of 100: glet keeps it (10.7 req/s tolerated, not placed again).
    # f = 3: 83.3 req/s < 85: b is placed once more, gets the same, and 16.7 req/s stay unserved.
    prof = profiles(a={50: (2, 2), 100: (2, 1)}, b={50: (2, 2), 100: (2, 1)})
    util = {("a", 1): (0.5, 0.5), ("b", 1): (0.5, 0.5)}
    demands = [ModelDemand("a", 100, 100), ModelDemand("b", 100, 25)]
    kept = plan_gpulet(demands, prof, max_gpus=1, interference=InterferenceModel((0, 0, 0, 0, 2.8), util),
                       partitions=(50, 100), ratio=1.0)
    assert kept.feasible and kept.tolerated_rps == {"b": pytest.approx(100 - 1000 / 11.2)}
    retried = plan_gpulet(demands, prof, max_gpus=1, interference=InterferenceModel((0, 0, 0, 0, 3.0), util),
                          partitions=(50, 100), ratio=1.0)
    assert not retried.feasible and retried.unserved_rps == {"b": pytest.approx(100 - 1000 / 12)}
    for plan in (kept, retried):
        for _, p in plan.partitions():
            for a in p.allocations:
                assert p.predicted_latency_ms(a) <= a.slo_ms + 1e-9


def test_glet_baselines():
    # timesharing_only: whole GPUs; a second model on one GPU time-shares with glet's rule: a residual at
    # 100 req/s (2 + 11 b <= 100: b = 8, l = 10, d = 80); b_e = 8, d = 80, 80 + 10 + 10 <= 100.
    prof = profiles(a={50: (2, 2), 100: (2, 1)}, e={50: (2, 2), 100: (2, 1)})
    demands = [ModelDemand("a", 100, 100), ModelDemand("e", 100, 100)]
    ts = make_plan("glet-timesharing", demands, prof, max_gpus=1, ratio=1.0)
    assert ts.feasible and [p.percent for p in ts.gpus[0]] == [100]
    assert ts.gpus[0][0].duty_cycle_ms == pytest.approx(80) and [a.batch for a in ts.gpus[0][0].allocations] == [8, 8]
    # greedy_part: smallest partition whose saturated throughput exceeds the rate (50 %: 480 req/s),
    # no time sharing: a third model finds no room.
    gr = make_plan("glet-greedy", demands, prof, max_gpus=1, partitions=(50, 100), ratio=1.0)
    assert gr.feasible and sorted(p.percent for p in gr.gpus[0]) == [50, 50]
    prof3 = profiles(a={50: (2, 2), 100: (2, 1)}, e={50: (2, 2), 100: (2, 1)}, f={50: (2, 2), 100: (2, 1)})
    gr3 = make_plan("glet-greedy", demands + [ModelDemand("f", 20, 600)], prof3, max_gpus=1, partitions=(50, 100),
                    ratio=1.0)
    assert gr3.unserved_rps == {"f": pytest.approx(20)}


def test_greedy_and_dedicated():
    prof = profiles(a={50: (2, 2), 100: (2, 1)}, b={50: (2, 2), 100: (2, 1)})
    demands = [ModelDemand("a", 100, 100), ModelDemand("b", 100, 100)]
    greedy = make_plan("greedy", demands, prof, ratio=1.0, partitions=(50, 100))
    assert greedy.gpus_used == 1 and sorted(p.percent for p in greedy.gpus[0]) == [50, 50]
    dedicated = make_plan("dedicated", demands, prof, ratio=1.0)
    assert dedicated.gpus_used == 2 and all(len(g) == 1 and g[0].percent == 100 for g in dedicated.gpus)


def test_max_gpus_leaves_rate_unserved():
    prof = profiles(a={100: (2, 1)})
    plan = plan_sbp([ModelDemand("a", 3000, 100)], prof, max_gpus=2, ratio=1.0)
    assert not plan.feasible and plan.unserved_rps["a"] == pytest.approx(3000 - 2 * 32000 / 34)
