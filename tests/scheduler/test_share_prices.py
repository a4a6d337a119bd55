"""Dual prices of GPU shares (the cutting-stock LP) and the dual hole waste, on mixes worked out by hand from the
rules in gpufleet/scheduler/share_prices.py's docstring."""

from __future__ import annotations

import numpy as np
import pytest

from gpufleet.scheduler.fragmentation import TypicalPods
from gpufleet.scheduler.share_prices import dual_hole_waste, knapsack, share_mix, share_prices


def typical(*shares_freq):
    return TypicalPods.from_args([{"cpuMilli": 1000, "numGpu": k, "gpuMilli": s, "frequency": f}
                                  for k, s, f in shares_freq])


def test_prices_of_a_mix_with_one_optimal_dual():
    # Three 810 shares and one 160: an optimal packing is (810, 160), (810), (810): 3 GPUs. Dual: y_810 <= 1,
    # y_810 + y_160 <= 1, 6 y_160 <= 1, maximise 3 y_810 + y_160 = 3: only y = (1, 0). A 160 earns nothing: the
    # GPUs an 810 leaves are paid for anyway.
    assert share_prices(np.array([810, 160]), np.array([3.0, 1.0])) == pytest.approx([1.0, 0.0])
    # Two 500 shares fill one GPU: y = 1/2.
    assert share_prices(np.array([500]), np.array([2.0])) == pytest.approx([0.5])


def test_column_generation_reaches_the_lp_optimum():
    # 600 x 1, 400 x 1, 300 x 2. The start patterns are (600), (400, 400), (300, 300, 300); the LP optimum,
    # 5/3 GPUs ((600, 400) once and (300, 300, 300) two thirds of a time, or any mix with (400, 300, 300)), needs
    # patterns the pricing knapsack adds. Strong duality: sum n_s y_s = 5/3; feasibility: Phi(1000) <= 1.
    shares, counts = np.array([600, 400, 300]), np.array([1.0, 1.0, 2.0])
    y = share_prices(shares, counts)
    assert counts @ y == pytest.approx(5 / 3)
    phi, _ = knapsack(shares, y)
    assert phi[1000] <= 1 + 1e-6


def test_knapsack_by_hand():
    # Values 0.5 (500) and 0.3 (300): Phi(800) = 0.8 (500 + 300), Phi(900) = 0.9 (three 300s),
    # Phi(1000) = 1.0 (two 500s), Phi(299) = 0.
    phi, last = knapsack(np.array([500, 300]), np.array([0.5, 0.3]))
    assert phi[[299, 800, 900, 1000]] == pytest.approx([0, 0.8, 0.9, 1.0])
    assert last[299] == -1


def test_dual_hole_waste_by_hand():
    # 810 (3/4 of the pods) and 160: y = (1, 0) as above, so Phi(h) = 1 from 810 on, else 0:
    # W(190) = 190 (only a 160 fits, worth nothing), W(809) = 809, W(840) = 840 - 1000 = -160 (an 810 still
    # fits), W(1000) = 0.
    w = dual_hole_waste(typical((1, 810, 0.75), (1, 160, 0.25)))
    assert w[[190, 809, 840, 1000]] == pytest.approx([190, 809, -160, 0])
    # Shares of 500 and whole GPUs (a 2-GPU pod is a 1000 share): y = 1/2 and 1.
    # W(500) = 0, W(700) = 200, W(999) = 999 - 500 = 499, W(1000) = 0.
    t = typical((1, 500, 0.5), (2, 1000, 0.5))
    shares, counts = share_mix(t)
    assert shares.tolist() == [1000, 500] and counts.tolist() == [0.5, 0.5]
    assert dual_hole_waste(t)[[500, 700, 999, 1000]] == pytest.approx([0, 200, 499, 0])
    # No typical pod uses a GPU: every free milli is waste.
    assert dual_hole_waste(TypicalPods.from_args([{"cpuMilli": 1000, "frequency": 1.0}]))[700] == 700


def test_bad_mix_is_refused():
    with pytest.raises(ValueError, match="shares must be in 1..1000"):
        share_prices(np.array([1200]), np.array([1.0]))
    with pytest.raises(ValueError, match="counts >= 0"):
        share_prices(np.array([500]), np.array([-1.0]))
