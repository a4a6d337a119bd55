"""LookaheadFGD + LookaheadTieBreak: gpufleet's policies ``fgd-la``, ``fgd-la-hole`` and ``fgd-la-dual``
(docs/fgd.md, "Our policy"): FGD's node score (``fgd-la``; ``fgd-la-hole`` and ``fgd-la-dual`` add a hole waste
to its measure, step 1), with a look-ahead tie-break among the nodes that score equally.

Rule. For each node and candidate placement (fractional pods on every GPU with enough free milli, whole GPUs on
the lowest-index free ones, as FGD, gpufleet.scheduler.fragmentation.candidate_placements):

1. primary = FGD's score (plugins/fgd.py, FGD paper Sec. 4) on a measure that adds the node's hole waste
   (step 3) to FGD's fragmentation F:
       floor(sigmoid(([F_before - F_after] - mu * [sum_gpus W(after) - sum_gpus W(before)]) / 1000) * 100),
   so FGD's gradient also descends the milli the coming shares are expected to leave unused; mu = 0 (the
   default, policy ``fgd-la``) is FGD's score, mu = 1 is policy ``fgd-la-hole``, mu = 5 with the dual hole
   waste (``holeModel: dual``, gpufleet.scheduler.share_prices: W(h) = h - 1000 Phi(h), Phi the value the
   free milli can still earn at the cutting-stock LP's share prices) is policy ``fgd-la-dual``. The term pairs
   fewer shares into remainders only rare shares fill;
2. the fractional pod's GPU: among the node's candidates with the best primary, the one whose hole-waste
   growth W(free - milli) - W(free) is least (FGD takes the first one);
3. look-ahead growth of the chosen placement, lower is better:
       g = [F_cap(after) - F_cap(before)] + lam * [sum_gpus W(after) - sum_gpus W(before)]
   with F_cap the capacity fragmentation (fragmentation.capacity_fragment: free GPU milli that copies of each
   typical pod could not consume, given the node's free CPU and per-GPU free milli) and W the *hole waste*:
   with the default ``holeModel: random-fit`` the expected milli a GPU with h milli free still has free once
   the typical pods have filled it,
       W(h) = (1 - P(h)) * h + P(h) * sum_{s <= h} q_s W(h - s) / Q(h),  Q(h) = sum_{s <= h} q_s,
       P(h) = min(1, fill * Q(h)),
   q_s the frequency of per-GPU share s among the typical GPU pods (multi-GPU pods count as s = 1000, GPU
   models are ignored). The next pod that fits takes the hole, but a hole that only rare shares fit is likely
   never filled (P < 1): W(190) = 177 on openb default (only 160-milli shares fit), W(470) = 65.
4. LookaheadTieBreak (score weight 1, LookaheadFGD weight 100, so the sum is lexicographic): among the nodes
   with the best primary that the model guard (step 5) leaves eligible, 99 - (floor(g / quantum) - the best
   such bucket), at least 1; other nodes 0 (a best-primary node the guard excludes still outranks every other
   node through its primary, and among the excluded the fixed order decides).
   Nodes in the same bucket stay tied and go to the framework's tie-break (the fixed node rank in the FGD
   experiment), which packs; a finer quantum or comparing all nodes lost that packing (docs/fgd.md).
5. Model guard (only when typical pods are restricted to GPU models, the openb gpuspec traces): the tie-break
   must not move a pod onto a GPU model that model-restricted pods need more than the model of FGD's own pick
   (the best-primary node first in the fixed order; without one, the least pressured). The *pressure* of model
   M is the restricted demand per free milli, each restricted typical pod's demand (frequency x GPUs x milli)
   spread over its allowed models in proportion to their free GPU milli,
       pressure(M) = sum_{t restricted, M in S_t} d_t / free(S_t)   /   (sum_t d_t / free(cluster)),
   so 1 means the restricted pods alone want M's free milli at the rate the whole workload wants the
   cluster's. Eligible: nodes of the pick's model or with pressure <= pressureMargin x the pick's; when the
   pick's own pressure exceeds pressureLimit the pick is kept (FGD's choice). Without it the tie-break moved
   unrestricted pods from G2 onto P100/V100 nodes and the P100/V100-only pods failed earlier (gpuspec33 at
   100% arrived: 86.99% against FGD's 87.90%).

Args (LookaheadFGD): ``typicalPods`` (as FGD; without them the pod being placed is the only typical pod),
``mu`` (weight of the hole waste in the primary, step 1, default 0), ``lam`` (weight of the hole-waste term in
the tie-break, default 1), ``holeModel`` (W: ``random-fit``, step 3, the default, or ``dual``, step 1),
``fill`` (random-fit's, default 10), ``quantum`` (milli, default 200),
``pristinePenalty`` (buckets added for an untouched node, default 0; 2..99 keep whole nodes longer: better on
gpuspec33 at 100% arrived, worse on default at 130%, docs/fgd.md), ``modelGuard`` (step 5, default true),
``pressureMargin`` and ``pressureLimit`` (default 0.5 each).
The pod's CPU is the simulator's non-zero request. LookaheadTieBreak reads LookaheadFGD's CycleState entry and
scores 0 everywhere without it.
"""

from __future__ import annotations

import numpy as np

from ..fragmentation import (MILLI_PER_GPU, FragmentCache, GpuChoice, TypicalPods, candidate_placements,
                             capacity_fragment, fgd_cpu_milli, pod_shape_key, sigmoid_score, typical_or_pod,
                             typical_pods_arg)
from ..framework import MAX_NODE_SCORE, Plugin
from ..share_prices import dual_hole_waste, share_mix

STATE_KEY = "lookahead_tie"
HOLE_MODELS = ("random-fit", "dual")
_BUCKET_BITS = 24  # the cache keeps primary and bucket in one int64: primary << 24 | (bucket + 2^23)


def hole_waste(typical: TypicalPods, fill: float) -> np.ndarray:
    """W(h) for h = 0..1000 milli (float64 [1001]); see the module docstring."""
    size, q = share_mix(typical)
    q = q / q.sum() if q.sum() > 0 else q
    w = np.arange(MILLI_PER_GPU + 1, dtype=np.float64)
    for h in range(1, MILLI_PER_GPU + 1):
        fit = size <= h
        total = q[fit].sum()
        if total > 0:
            p = min(1.0, fill * total)
            w[h] = (1.0 - p) * h + p * float(q[fit] @ w[h - size[fit]]) / total
    return w


class LookaheadFGD(Plugin):
    name = "LookaheadFGD"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        known = ("typicalPods", "mu", "lam", "holeModel", "fill", "quantum", "pristinePenalty", "modelGuard",
                 "pressureMargin", "pressureLimit")
        unknown = set(self.args) - set(known)
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} (expected {', '.join(known)})")
        self.model_guard = self.args.get("modelGuard", True)
        if not isinstance(self.model_guard, bool):
            raise ValueError(f"modelGuard: expected true or false, got {self.model_guard!r}")
        self.hole_model = self.args.get("holeModel", "random-fit")
        if self.hole_model not in HOLE_MODELS:
            raise ValueError(f"holeModel: expected one of {', '.join(HOLE_MODELS)}, got {self.hole_model!r}")
        self.typical = typical_pods_arg(self.args, self.name)
        try:
            self.mu = float(self.args.get("mu", 0.0))
            self.lam = float(self.args.get("lam", 1.0))
            self.fill = float(self.args.get("fill", 10.0))
            self.quantum = float(self.args.get("quantum", 200.0))
            self.pristine_penalty = int(self.args.get("pristinePenalty", 0))
            self.pressure_margin = float(self.args.get("pressureMargin", 0.5))
            self.pressure_limit = float(self.args.get("pressureLimit", 0.5))
        except (TypeError, ValueError):
            raise ValueError("mu, lam, fill, quantum, pristinePenalty, pressureMargin and pressureLimit: expected "
                             "numbers") from None
        if self.mu < 0 or self.lam < 0 or self.fill <= 0 or self.quantum <= 0 or self.pristine_penalty < 0 or \
                self.pressure_margin < 0 or self.pressure_limit < 0:
            raise ValueError(f"expected mu, lam >= 0, fill > 0, quantum > 0 and pristinePenalty, pressureMargin, "
                             f"pressureLimit >= 0, got {self.mu}, {self.lam}, {self.fill}, {self.quantum}, "
                             f"{self.pristine_penalty}, {self.pressure_margin}, {self.pressure_limit}")
        self.cache = FragmentCache()
        self._waste: dict = {}
        self._restricted: dict = {}

    def typical_for(self, pod) -> TypicalPods:
        return typical_or_pod(self.typical, pod)

    @staticmethod
    def _content_key(typical: TypicalPods) -> tuple:
        """A cache key by content: without typicalPods every pod brings a new TypicalPods (typical_or_pod)."""
        return (typical.cpu_milli.tobytes(), typical.gpu_milli.tobytes(), typical.num_gpu.tobytes(),
                typical.frequency.tobytes(), typical.models)

    def waste_table(self, typical: TypicalPods) -> np.ndarray:
        key = self._content_key(typical)
        if key not in self._waste:
            self._waste[key] = (dual_hole_waste(typical) if self.hole_model == "dual"
                                else hole_waste(typical, self.fill))
        return self._waste[key]

    def evaluate(self, pod, cluster, nodes):
        """(primary score [D], growth bucket [D], GPU choice [D]) for the pod on ``nodes``."""
        typical = self.typical_for(pod)
        waste = self.waste_table(typical)
        gpu_free = cluster.gpu_free_milli[nodes].astype(np.int64)
        cpu_free = cluster.cpu_free_milli[nodes]
        model = cluster.gpu_model_id[nodes]
        names = cluster.gpu_model_names
        exists = cluster.gpu_exists[nodes]
        cand = candidate_placements(gpu_free, cpu_free, fgd_cpu_milli(pod), pod.num_gpu, pod.gpu_milli)
        d, c, g = cand.gpu_free.shape
        f_before = typical.fragment(gpu_free, cpu_free, model, names)
        f_after = typical.fragment(cand.gpu_free.reshape(d * c, g), np.repeat(cand.cpu_free, c), np.repeat(model, c),
                                   names).reshape(d, c)
        hole_before = (waste[gpu_free] * exists).sum(axis=1)
        hole_after = (waste[np.clip(cand.gpu_free, 0, MILLI_PER_GPU)] * exists[:, None, :]).sum(axis=2)
        descent = (f_before[:, None] - f_after) - self.mu * (hole_after - hole_before[:, None])
        primary = np.where(cand.valid, sigmoid_score(descent), -1)
        # the GPU: best primary, then the least hole-waste growth, then the lowest index
        key = np.where(cand.valid, primary * 1e9 - (hole_after - hole_before[:, None]), -np.inf)
        best = np.argmax(key, axis=1)
        rows = np.arange(d)
        chosen_gpu = cand.gpu_free[rows, best]
        cap_before = capacity_fragment(typical, gpu_free, cpu_free, model, names)
        cap_after = capacity_fragment(typical, chosen_gpu, cand.cpu_free, model, names)
        growth = (cap_after - cap_before) + self.lam * (hole_after[rows, best] - hole_before)
        bucket = np.floor(growth / self.quantum).astype(np.int64)
        if self.pristine_penalty:  # an untouched node (all GPUs and CPU free) counts that many buckets worse
            untouched = (gpu_free == cluster.gpu_capacity_milli[nodes]).all(axis=1) & \
                (cpu_free == cluster.cpu_capacity_milli[nodes])
            bucket = bucket + self.pristine_penalty * untouched
        return np.maximum(primary[rows, best], 0), bucket, cand.choice[rows, best]

    def model_pressure(self, typical: TypicalPods, cluster) -> np.ndarray:
        """Pressure per GPU model id (float64 [models], step 5 of the module docstring); zeros when no typical
        pod is restricted to models."""
        names = tuple(cluster.gpu_model_names)
        key = (self._content_key(typical), names)
        if key not in self._restricted:
            index = {name: i for i, name in enumerate(names)}
            demand = typical.frequency * typical.num_gpu * typical.gpu_milli
            self._restricted[key] = (
                [(np.array([index[m] for m in models if m in index]), float(d))
                 for d, models in zip(demand, typical.models) if d > 0 and any(m in index for m in models)],
                float(demand.sum()))
        restricted, total = self._restricted[key]
        pressure = np.zeros(len(names))
        if not restricted or total <= 0:
            return pressure
        has = cluster.gpu_model_id >= 0
        free = np.bincount(cluster.gpu_model_id[has], weights=cluster.gpu_free_milli[has].sum(axis=1),
                           minlength=len(names))
        for ids, d in restricted:
            pressure[ids] += d / max(free[ids].sum(), 1.0)
        return pressure * max(free.sum(), 1.0) / total

    def guard(self, pod, cluster, nodes, top: np.ndarray, rank) -> np.ndarray:
        """The top nodes the tie-break may choose (step 5): all of them unless the guard applies."""
        if not self.model_guard:
            return top
        per_model = self.model_pressure(self.typical_for(pod), cluster)
        if not per_model.any():
            return top
        model = cluster.gpu_model_id[nodes]
        pressure = np.where(model >= 0, per_model[np.maximum(model, 0)], 0.0)
        first = np.flatnonzero(top)
        pick = first[np.argmin(rank[nodes[first]])] if rank is not None else first[np.argmin(pressure[first])]
        if pressure[pick] > self.pressure_limit:
            eligible = np.zeros_like(top)
            eligible[pick] = True
            return eligible
        return top & ((pressure <= self.pressure_margin * pressure[pick]) | (model == model[pick]))

    def _cached(self, pod):
        half = 1 << (_BUCKET_BITS - 1)

        def evaluate(cluster, nodes):
            primary, bucket, choice = self.evaluate(pod, cluster, nodes)
            return (primary << _BUCKET_BITS) | (np.clip(bucket, 1 - half, half - 1) + half), choice
        return evaluate

    def reserve(self, state, pod, cluster, node_index):
        """The fractional pod's GPU when scoring was skipped (one feasible node); runs before GpuFit."""
        if pod.num_gpu == 1 and pod.gpu_milli < MILLI_PER_GPU and "gpu_choice" not in state:
            self.score(state, pod, cluster, np.array([node_index]))
        return None

    def score(self, state, pod, cluster, nodes):
        packed, choice = self.cache.lookup(cluster, nodes, (pod_shape_key(pod), self.typical is None),
                                           self._cached(pod))
        primary = packed >> _BUCKET_BITS
        bucket = (packed & ((1 << _BUCKET_BITS) - 1)) - (1 << (_BUCKET_BITS - 1))
        top = primary == primary.max() if len(nodes) else np.zeros(0, dtype=bool)
        rank = getattr(self.handle, "node_rank", None)
        eligible = self.guard(pod, cluster, nodes, top, rank) if top.any() else top
        state[STATE_KEY] = (np.asarray(nodes).copy(), eligible, bucket)
        if pod.num_gpu == 1 and pod.gpu_milli < MILLI_PER_GPU:
            state["gpu_choice"] = GpuChoice(cluster.num_nodes, nodes, choice)
        return primary


class LookaheadTieBreak(Plugin):
    name = "LookaheadTieBreak"

    def score(self, state, pod, cluster, nodes):
        entry = state.get(STATE_KEY)
        zeros = np.zeros(len(nodes), dtype=np.int64)
        if entry is None or len(entry[0]) != len(nodes) or not np.array_equal(entry[0], nodes) or not len(nodes):
            return zeros
        _, eligible, bucket = entry
        step = bucket - bucket[eligible].min()
        return np.where(eligible, MAX_NODE_SCORE - 1 - np.minimum(step, MAX_NODE_SCORE - 2), 0).astype(np.int64)
