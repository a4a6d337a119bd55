"""MigPlacement: create MIG instances where MIG pods land, keeping the largest profiles placeable.

Rules. MIG geometry (NVIDIA MIG user guide, "GPU Instance Profiles" / ``nvidia-smi mig -lgipp``): a GPU has
``compute`` compute slices and ``memory`` memory slices (A100/H100/H200: 7 and 8); a profile takes c
compute and m memory slices and may start only at its listed memory slices; instances may not overlap.
Nodes offer this on demand when gpufleet.devices labels them ``gpufleet.io/mig.dynamic=true``; the
geometry travels in node labels (``gpufleet.io/mig.gpus``, ``gpufleet.io/mig.slices`` = compute.memory,
``gpufleet.io/mig.<profile>`` = compute.memory.start-start-...), so this plugin needs no GPU catalog.

* Filter: a pod asking for one ``nvidia.com/mig-<profile>`` fits a dynamic node when some GPU has a free
  allowed window of the profile's memory slices and enough free compute slices. Static MIG nodes (fixed
  instances, advertised counts) are left to NodeResourcesFit.
* Score (gpufleet's adaptation of FGD, Weng et al., USENIX ATC'23: pick the placement that fragments least):
  for each profile q the node's GPUs offer, ``windows(q)`` = number of free allowed windows; placing the
  pod at (GPU g, start s) loses ``sum_q compute(q) * (windows_before(q) - windows_after(q))`` on g, so
  losing the only 7g window costs most. Each node keeps its least-loss (g, s); score =
  100 * (1 - loss / loss of an empty GPU). Static and non-MIG nodes score 100 (nothing is stranded).
* Reserve records the instance on the pod (annotation ``gpufleet.io/mig-placement: GPU:START:PROFILE``);
  occupancy is rebuilt from those annotations when the nodes change and released pods are dropped at the
  start of every cycle (a set difference over MIG pods, not a loop over nodes).

:func:`mig_slice_report` measures stranded slices for the simulator.
"""

from __future__ import annotations

import numpy as np

from ..framework import MAX_NODE_SCORE, FilterResult, Plugin, Status

MIG_PREFIX = "nvidia.com/mig-"
DYNAMIC_LABEL = "gpufleet.io/mig.dynamic"
GPUS_LABEL = "gpufleet.io/mig.gpus"
SLICES_LABEL = "gpufleet.io/mig.slices"
PROFILE_LABEL_PREFIX = "gpufleet.io/mig."
UNUSABLE_LABEL = "gpufleet.io/mig.unusable-slices"
PLACEMENT_ANNOTATION = "gpufleet.io/mig-placement"
NO_WINDOW = "node(s) had no free MIG slices for the profile"
ONE_INSTANCE = "node(s) create one MIG instance per pod"


def pod_mig_profile(pod) -> tuple[str, int] | None:
    asks = [(k[len(MIG_PREFIX):], v) for k, v in pod.extended.items() if k.startswith(MIG_PREFIX) and v]
    return asks[0] if len(asks) == 1 else None


class _Geometry:
    """Per-node MIG geometry from labels and the occupancy of dynamic MIG GPUs."""

    def __init__(self, cluster):
        n = cluster.num_nodes
        self.gpus = np.zeros(n, dtype=np.int64)
        self.compute_total = np.zeros(n, dtype=np.int64)
        self.slots = 8
        profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for i, node in enumerate(cluster.nodes):  # once per node set, not per pod
            if node.labels.get(DYNAMIC_LABEL, "").lower() != "true" or GPUS_LABEL not in node.labels:
                continue
            self.gpus[i] = int(node.labels[GPUS_LABEL])
            compute, memory = (int(x) for x in node.labels[SLICES_LABEL].split("."))
            self.compute_total[i] = compute
            self.slots = max(self.slots, memory)
            for key, value in node.labels.items():
                if not key.startswith(PROFILE_LABEL_PREFIX) or key in (GPUS_LABEL, SLICES_LABEL, UNUSABLE_LABEL, DYNAMIC_LABEL):
                    continue
                c, m, starts = value.split(".")
                has, comp, mem, allowed = profiles.setdefault(key[len(PROFILE_LABEL_PREFIX):], (
                    np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                    np.zeros((n, 8), dtype=bool)))
                has[i], comp[i], mem[i] = True, int(c), int(m)
                for s in starts.split("-"):
                    allowed[i, int(s)] = True
        self.profiles = profiles
        g = max(int(self.gpus.max()) if n else 0, 1)
        s = self.slots
        # Slots of absent GPUs (and memory slices beyond a node's) are marked used so nothing fits there.
        self.occupied = np.ones((n, g, s), dtype=bool)
        for i in np.flatnonzero(self.gpus):
            mem = int(cluster.nodes[i].labels[SLICES_LABEL].split(".")[1])
            self.occupied[i, : self.gpus[i], :mem] = False
        self.compute_used = np.zeros((n, g), dtype=np.int64)
        self.records: dict[str, tuple[int, int, int, str]] = {}  # uid -> node, gpu, start, profile
        for uid, pod in cluster.pods.items():
            text = pod.annotations.get(PLACEMENT_ANNOTATION)
            if text and uid in cluster.placements:
                gpu, start, prof = text.split(":", 2)
                node = cluster.node_index[cluster.placements[uid].node_name]
                self.take(uid, node, int(gpu), int(start), prof)

    def take(self, uid, node, gpu, start, profile) -> None:
        has, comp, mem, _ = self.profiles[profile]
        self.occupied[node, gpu, start: start + mem[node]] = True
        self.compute_used[node, gpu] += comp[node]
        self.records[uid] = (node, gpu, start, profile)

    def free(self, uid) -> None:
        node, gpu, start, profile = self.records.pop(uid)
        _, comp, mem, _ = self.profiles[profile]
        self.occupied[node, gpu, start: start + mem[node]] = False
        self.compute_used[node, gpu] -= comp[node]

    def windows(self, nodes: np.ndarray, occupied: np.ndarray, profile: str) -> np.ndarray:
        """[len(nodes), ..., starts] True where profile's window at that start is allowed and free.

        ``occupied`` is [len(nodes), ..., slots]; any middle axes (GPU, candidate) broadcast.
        """
        has, _, mem, allowed = self.profiles[profile]
        s = occupied.shape[-1]
        cum = np.concatenate([np.zeros(occupied.shape[:-1] + (1,), dtype=np.int64),
                              np.cumsum(occupied, axis=-1, dtype=np.int64)], axis=-1)
        starts = np.arange(8)[:s]
        m = mem[nodes]
        end = starts[None, :] + m[:, None]  # [F, S]
        inside = end <= s
        end = np.minimum(end, s)
        shape = (len(nodes),) + (1,) * (occupied.ndim - 2) + (len(starts),)
        used = np.take_along_axis(cum, np.broadcast_to(end.reshape(shape), occupied.shape[:-1] + (len(starts),)),
                                  axis=-1) - cum[..., : len(starts)]
        ok = (used == 0) & (inside & allowed[nodes][:, :s] & has[nodes][:, None]).reshape(shape)
        return ok


class MigPlacement(Plugin):
    name = "MigPlacement"

    def __init__(self, args=None, handle=None):
        super().__init__(args, handle)
        self._geo: _Geometry | None = None
        self._nodes_key = None

    def geometry(self, cluster) -> _Geometry:
        key = (id(cluster), id(cluster.nodes))
        if self._geo is None or self._nodes_key != key:
            self._geo, self._nodes_key = _Geometry(cluster), key
        geo = self._geo
        for uid in geo.records.keys() - cluster.placements.keys():
            geo.free(uid)
        return geo

    def _fits(self, geo, profile, nodes):
        """[F, G, S] feasible (gpu, start) per node."""
        has, comp, _, _ = geo.profiles[profile]
        ok = geo.windows(nodes, geo.occupied[nodes], profile)
        room = geo.compute_used[nodes] + comp[nodes][:, None] <= geo.compute_total[nodes][:, None]
        return ok & room[:, :, None]

    def filter(self, state, pod, cluster, nodes):
        ask = pod_mig_profile(pod)
        if ask is None:
            return FilterResult.all_pass(len(nodes))
        geo = self.geometry(cluster)
        dynamic = geo.gpus[nodes] > 0
        if not dynamic.any():
            return FilterResult.all_pass(len(nodes))
        profile, count = ask
        if count != 1:
            return FilterResult.from_failures(len(nodes), [(ONE_INSTANCE, dynamic)])
        if profile not in geo.profiles:
            return FilterResult.from_failures(len(nodes), [(NO_WINDOW, dynamic)])
        fits = self._fits(geo, profile, nodes).any(axis=(1, 2))
        return FilterResult.from_failures(len(nodes), [(NO_WINDOW, dynamic & ~fits)])

    def _loss(self, geo, profile, nodes):
        """(loss [F, G, S] with inf where infeasible, loss of an empty GPU [F])."""
        fits = self._fits(geo, profile, nodes)
        _, _, mem, _ = geo.profiles[profile]
        occ = geo.occupied[nodes]  # [F, G, S]
        s = occ.shape[-1]
        starts = np.arange(s)
        window = (starts[None, None, :] >= starts[None, :, None]) & \
                 (starts[None, None, :] < starts[None, :, None] + mem[nodes][:, None, None])  # [F, start, slot]
        after = occ[:, :, None, :] | window[:, None, :, :]  # [F, G, start, slot]
        loss = np.zeros(fits.shape, dtype=np.int64)
        empty = np.zeros(len(nodes), dtype=np.int64)
        for q, (has, comp, _, _) in geo.profiles.items():
            before_q = geo.windows(nodes, occ, q).sum(axis=-1)  # [F, G]
            after_q = geo.windows(nodes, after, q).sum(axis=-1)  # [F, G, start]
            weight = np.where(has[nodes], comp[nodes], 0)
            loss += weight[:, None, None] * (before_q[:, :, None] - after_q)
            empty += weight * geo.profiles[q][3][nodes].sum(axis=1)
        return np.where(fits, loss, np.iinfo(np.int64).max), empty

    def score(self, state, pod, cluster, nodes):
        ask = pod_mig_profile(pod)
        scores = np.full(len(nodes), MAX_NODE_SCORE, dtype=np.int64)
        if ask is None or ask[1] != 1:
            return scores
        geo = self.geometry(cluster)
        profile = ask[0]
        dynamic = np.flatnonzero(geo.gpus[nodes] > 0)
        if not len(dynamic) or profile not in geo.profiles:
            return scores
        sub = nodes[dynamic]
        loss, empty = self._loss(geo, profile, sub)
        flat = loss.reshape(len(sub), -1)
        best = flat.argmin(axis=1)
        best_loss = flat[np.arange(len(sub)), best]
        feasible = best_loss < np.iinfo(np.int64).max
        g, s = np.divmod(best, loss.shape[2])
        choice = state.setdefault("mig_choice", {})
        for k in np.flatnonzero(feasible):
            choice[int(sub[k])] = (int(g[k]), int(s[k]))
        safe = np.maximum(empty, 1)
        scores[dynamic] = np.where(feasible, MAX_NODE_SCORE - np.minimum(best_loss, safe) * MAX_NODE_SCORE // safe, 0)
        return scores

    def reserve(self, state, pod, cluster, node_index):
        ask = pod_mig_profile(pod)
        if ask is None:
            return None
        geo = self.geometry(cluster)
        if geo.gpus[node_index] == 0:
            return None
        chosen = state.get("mig_choice", {}).get(node_index)
        if chosen is None:
            nodes = np.array([node_index])
            loss, _ = self._loss(geo, ask[0], nodes)
            flat = loss.reshape(-1)
            if flat.min() == np.iinfo(np.int64).max:
                return Status.unschedulable(NO_WINDOW)
            chosen = divmod(int(flat.argmin()), loss.shape[2])
        gpu, start = chosen
        geo.take(pod.uid, node_index, gpu, start, ask[0])
        pod.annotations[PLACEMENT_ANNOTATION] = f"{gpu}:{start}:{ask[0]}"
        return None

    def unreserve(self, state, pod, cluster, node_index):
        geo = self._geo
        if geo is not None and pod.uid in geo.records:
            geo.free(pod.uid)
        pod.annotations.pop(PLACEMENT_ANNOTATION, None)


def mig_slice_report(cluster) -> dict[str, int]:
    """Free and stranded MIG compute slices of a ClusterState.

    * ``unusable_slices``: compute slices static layouts leave outside every instance (node label
      ``gpufleet.io/mig.unusable-slices``, e.g. 4 x 1g.10gb on an A100-40GB leaves 3);
    * on dynamic MIG GPUs, ``free_slices`` = free compute slices, ``stranded_slices`` = the free compute
      slices of GPUs where no profile fits any more (no free allowed window with enough compute), plus the
      unusable slices; ``gpus_fitting_largest`` = dynamic GPUs where the node's largest profile still fits.
    """
    geo = _Geometry(cluster)
    unusable = sum(int(n.labels.get(UNUSABLE_LABEL, 0)) for n in cluster.nodes)
    nodes = np.flatnonzero(geo.gpus)
    report = {"dynamic_gpus": int(geo.gpus.sum()), "free_slices": 0, "stranded_slices": unusable,
              "unusable_slices": unusable, "gpus_fitting_largest": 0}
    if not len(nodes):
        return report
    exists = np.arange(geo.occupied.shape[1])[None, :] < geo.gpus[nodes][:, None]
    free = np.where(exists, geo.compute_total[nodes][:, None] - geo.compute_used[nodes], 0)
    any_fit = np.zeros(free.shape, dtype=bool)
    largest_fit = np.zeros(free.shape, dtype=bool)
    for q, (has, comp, _, _) in geo.profiles.items():
        ok = geo.windows(nodes, geo.occupied[nodes], q).any(axis=-1) & \
            (geo.compute_used[nodes] + comp[nodes][:, None] <= geo.compute_total[nodes][:, None]) & exists
        any_fit |= ok
        largest_fit |= ok & (has[nodes] & (comp[nodes] == geo.compute_total[nodes]))[:, None]
    report["free_slices"] = int(free.sum())
    report["stranded_slices"] = unusable + int(np.where(any_fit, 0, free).sum())
    report["gpus_fitting_largest"] = int(largest_fit.sum())
    return report
