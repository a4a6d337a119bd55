"""What a GPU share is worth in an optimal packing of the workload's mix, and the hole waste that implies: the
``holeModel: dual`` of LookaheadFGD (plugins/fgd_lookahead.py, policy ``fgd-la-dual``, docs/fgd.md).

Rule.

* Items: the per-GPU shares s of the typical GPU pods (share_mix: a multi-GPU or whole-GPU pod is s = 1000), with
  expected counts n_s proportional to their frequencies (GPU models are ignored; the 1000 shares fill a GPU
  alone, so their count changes no other price). Bins: GPUs of 1000 milli.
* The LP relaxation of bin packing, the cutting-stock LP of Gilmore and Gomory ("A linear programming approach
  to the cutting-stock problem", Operations Research 9, 1961):
      min sum_p x_p  s.t.  sum_p a_sp x_p >= n_s,  x >= 0,
  over patterns p (a_sp copies of share s, sum_s a_sp s <= 1000), and its dual
      max sum_s n_s y_s  s.t.  sum_s a_sp y_s <= 1 for every pattern,  y >= 0.
  y_s is the part of a GPU that share s is worth when the mix is packed optimally: 1/2 for a share that pairs
  with its twin, 1/3 for one that fills a GPU beside a 2/3 share, 1 for one that nothing useful fits beside.
* Column generation (Gilmore-Gomory): the pricing problem is the unbounded knapsack
      Phi(h) = max sum_s k_s y_s  s.t.  sum_s k_s s <= h,  k_s >= 0 integer,
  solved for every h = 0..1000 at once by dynamic programming; while Phi(1000) > 1 its pattern enters the LP.
  The LP (HiGHS, through scipy.optimize.linprog) gives y; at the end Phi(1000) <= 1, so y is dual feasible.
* Online use, the primal-dual view of LP-based online stochastic bin packing (Gupta and Radovanovic,
  "Interior-point-based online stochastic bin packing", Operations Research 68(5), 2020): a GPU with h milli
  free can still earn Phi(h) GPUs' worth of shares, so its *dual hole waste* is
      W(h) = h - 1000 Phi(h)   (W(1000) = 0 when whole-GPU pods or a perfect pattern exist).
  Placing share s on it changes W by W(h - s) - W(h) = 1000 [Phi(h) - Phi(h - s) - y_s] - s + 1000 y_s: the
  placement's LP reduced cost, zero when the GPU's content can still end in an optimal pattern, up to the
  constant 1000 y_s - s of the pod. On openb default: y = 1 (810), 2/3 (650, 590, 550), 1/2 (470, 460),
  1/3 (370, 320), 1/4 (230); a 320 beside a 470 (W: 30 -> 210) costs 180 milli, on an empty GPU (0 -> 13)
  13. The random-fit W of LookaheadFGD (hole_waste) charges the empty GPU more (66 -> 156 against
  115 -> 197), since there the next fitting pod, often a 470, takes the hole.
"""

from __future__ import annotations

import numpy as np

from .fragmentation import MILLI_PER_GPU, TypicalPods

_EPS = 1e-9
_MAX_ROUNDS = 1000


def share_mix(typical: TypicalPods) -> tuple[np.ndarray, np.ndarray]:
    """(distinct per-GPU shares in milli, descending, int64 [K]; the total frequency of the typical GPU pods
    with that share, float64 [K]); a multi-GPU pod's share is 1000 (GPU models are ignored). The mix both hole
    waste models read (this module's and plugins/fgd_lookahead.hole_waste)."""
    gpu = typical.num_gpu > 0
    size = np.where(typical.num_gpu[gpu] > 1, MILLI_PER_GPU, typical.gpu_milli[gpu])
    freq = typical.frequency[gpu]
    shares = np.unique(size)[::-1].astype(np.int64)
    return shares, np.array([freq[size == s].sum() for s in shares], dtype=np.float64)


def knapsack(shares: np.ndarray, prices: np.ndarray, capacity: int = MILLI_PER_GPU) -> tuple[np.ndarray, np.ndarray]:
    """Phi(h) for h = 0..capacity (float64) and, per h, the last share index of a best multiset (-1: none)."""
    phi = np.zeros(capacity + 1)
    last = np.full(capacity + 1, -1, dtype=np.int64)
    for h in range(1, capacity + 1):
        phi[h], last[h] = phi[h - 1], last[h - 1]
        fit = np.flatnonzero(shares <= h)
        if len(fit):
            value = phi[h - shares[fit]] + prices[fit]
            k = int(np.argmax(value))
            if value[k] > phi[h] + _EPS:
                phi[h], last[h] = value[k], fit[k]
    return phi, last


def _pattern(shares: np.ndarray, last: np.ndarray, h: int) -> np.ndarray:
    counts = np.zeros(len(shares), dtype=np.int64)
    while h > 0 and last[h] >= 0:
        counts[last[h]] += 1
        h -= int(shares[last[h]])
    return counts


def share_prices(shares: np.ndarray, counts: np.ndarray, capacity: int = MILLI_PER_GPU) -> np.ndarray:
    """Dual prices y_s of the cutting-stock LP (module docstring) for ``shares`` (milli, each 1..capacity) with
    demand ``counts`` (>= 0), by column generation; float64 [K]."""
    from scipy.optimize import linprog

    shares = np.asarray(shares, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    if len(shares) == 0:
        return np.zeros(0)
    if (shares <= 0).any() or (shares > capacity).any() or (counts < 0).any():
        raise ValueError(f"shares must be in 1..{capacity} milli and counts >= 0, got {shares.tolist()}, "
                         f"{counts.tolist()}")
    columns = [np.eye(len(shares), dtype=np.int64)[k] * (capacity // s) for k, s in enumerate(shares)]
    for _ in range(_MAX_ROUNDS):
        a = np.array(columns, dtype=np.float64).T  # [K, patterns]
        res = linprog(np.ones(a.shape[1]), A_ub=-a, b_ub=-counts, bounds=(0, None), method="highs")
        if res.status != 0:
            raise RuntimeError(f"cutting-stock LP failed: {res.message}")
        prices = np.maximum(-res.ineqlin.marginals, 0.0)
        phi, last = knapsack(shares, prices, capacity)
        if phi[capacity] <= 1 + 1e-6:  # HiGHS solves to about 1e-7
            return prices
        columns.append(_pattern(shares, last, capacity))
    raise RuntimeError(f"cutting-stock column generation did not converge in {_MAX_ROUNDS} rounds")


def dual_hole_waste(typical: TypicalPods) -> np.ndarray:
    """W(h) = h - 1000 Phi(h) for h = 0..1000 milli (float64 [1001]); W(h) = h when no typical pod uses GPUs."""
    shares, counts = share_mix(typical)
    h = np.arange(MILLI_PER_GPU + 1, dtype=np.float64)
    if not len(shares) or counts.sum() <= 0:
        return h
    phi, _ = knapsack(shares, share_prices(shares, counts))
    return h - MILLI_PER_GPU * phi
