"""The GPULet reference data (skipped without ../shared/data/gpulet)."""


from gpufleet.serving.interference import ColocationSample, InterferenceModel
from gpufleet.serving.planners import make_plan
import pytest

from gpufleet.serving.reference import (paper_scenarios, reference_interference, reference_profiles,
                                        with_lenet_copies, with_rate)
from gpufleet.serving.reproduce import planning_demands
from gpufleet.serving.simulator import simulate


def test_reference_profiles_follow_fig4(gpulet_data):
    prof = reference_profiles(gpulet_data)
    assert set(prof) >= {"googlenet", "resnet50", "ssd-mobilenet", "vgg16", "mobilenet_v2", "mnasnet",
                         "densenet", "bert_base", "lenet"}
    assert prof["resnet50"].latency(32, 100) == 54 and prof["resnet50"].latency(32, 20) == 116
    for p in prof.values():  # a smaller partition is never faster
        assert all(p.latency(b, 20) >= p.latency(b, 100) for b in (1, 8, 32))


def test_paper_interference_constants_give_moderate_slowdowns(gpulet_data):
    model = reference_interference(gpulet_data)
    f = model.factor("resnet50", 16, 50, "vgg16", 16, 50)
    assert 1.0 < f < 1.3      # paper Fig. 7: 90 % of pairs below 17.66 % overhead


def test_fit_on_unofficial_colocation_measurements(gpulet_data):
    """Fit c1..c5 on the unofficial re-implementation's co-location runs (latency next to a partner over
    solo latency; features from its per-partition mem_util.csv)."""
    base = gpulet_data / "0909wlgur_Gpulet_unofficial"
    solo = {}
    for line in (base / "inference.csv").read_text().split():
        m, b, p, _, _, _, lat, _ = line.split(",")
        solo[(m, int(b), int(p))] = float(lat)
    feats = {}
    for line in (base / "mem_util.csv").read_text().split():
        m, b, p, _, mem, _, l2, _ = line.split(",")
        feats[(m, int(b), int(p))] = (float(l2) / 100, float(mem) / 100)
    samples = []
    for line in (base / "interference.csv").read_text().split():
        m1, b1, p1, m2, b2, _, _, _, lat, _ = line.split(",")
        k1, k2 = (m1, int(b1), int(p1)), (m2, int(b2), 100 - int(p1))
        if k1 in solo and k1 in feats and k2 in feats:
            samples.append(ColocationSample(feats[k1][0], feats[k2][0], feats[k1][1], feats[k2][1], float(lat) / solo[k1]))
    assert len(samples) > 1000
    fitted = InterferenceModel(InterferenceModel.fit(samples))
    errors = fitted.prediction_errors(samples)
    # the fit explains these runs better than a constant slowdown does
    import numpy as np
    mean = np.mean([s.slowdown for s in samples])
    constant = np.abs(mean - np.array([s.slowdown for s in samples])) / np.array([s.slowdown for s in samples])
    assert errors.mean() <= constant.mean()


def test_every_planner_serves_scen2_at_a_low_rate(gpulet_data):
    # planned with glet's headroom (x 1.2), Poisson requests at the rate itself, interference applied
    prof, inter = reference_profiles(gpulet_data), reference_interference(gpulet_data)
    demands = with_rate(paper_scenarios(gpulet_data)["scen2"], 400)
    for planner in ("gpulet+int", "gpulet", "glet-timesharing", "glet-greedy", "sbp", "greedy", "dedicated"):
        plan = make_plan(planner, planning_demands(demands), prof, max_gpus=4, interference=inter)
        assert plan.feasible, planner
        result = simulate(plan, prof, duration_s=3, interference=inter, rates_rps={d.name: d.rate_rps for d in demands})
        assert result.violation_ratio <= 0.01, planner


@pytest.mark.parametrize("scenario", ["scen1", "scen2", "scen3", "scen4", "scen5", "game", "traffic"])
def test_every_plan_executed_at_its_planned_rates_meets_every_slo(gpulet_data, scenario):
    """Planner and simulator agree: requests evenly spaced at each partition's planned rate (the plan's
    own assumption) never miss an SLO, for every planner and several rates. gpulet+int is simulated with
    the interference it planned for; the others without (they plan without it)."""
    prof, inter = reference_profiles(gpulet_data), reference_interference(gpulet_data)
    prof = with_lenet_copies(prof, inter)
    for total in (200, 800, 1600):
        demands = with_rate(paper_scenarios(gpulet_data)[scenario], total)
        for planner in ("gpulet+int", "gpulet", "glet-timesharing", "glet-greedy", "sbp", "greedy"):
            plan = make_plan(planner, demands, prof, max_gpus=4, interference=inter)
            result = simulate(plan, prof, duration_s=2, process="uniform",
                              interference=inter if planner == "gpulet+int" else None)
            placed = [m for m in result.models if plan.unserved_rps.get(m, 0.0) <= 1e-6]
            assert placed and all(result.models[m].violations == 0 for m in placed), (scenario, total, planner)
