"""Keep the ClusterState and the scheduling queue in step with the API's Nodes and Pods.

The rules are kube-scheduler's event handlers and cache (pkg/scheduler/eventhandlers.go,
pkg/scheduler/internal/cache/cache.go):

* a pod with ``spec.nodeName`` set and not terminal holds resources on its node: it is assigned into the
  ClusterState (with the GPUs of its ``gpufleet.io/gpu-index`` annotation, else best fit) and leaves the
  queue; a pod bound to a node the cache does not know yet waits until the node arrives;
* an unbound, non-terminal pod whose ``spec.schedulerName`` is one of our profiles enters the queue; a pod
  being deleted is not scheduled (skipPodSchedule);
* **assumed pods**: the scheduler assumes a pod into the ClusterState before binding; while it is there
  the watch's older views of the pod (still unbound) are ignored, and the bound view confirms it. So a pod
  is counted once, from the assume to its deletion: no double allocation between bind and watch;
* a terminal or deleted pod gives its resources back (and the parked pods are retried);
* a re-list (after 410 Gone) replaces the known set: objects missing from it are deleted.

Node changes of one batch are applied in one ClusterState rebuild; an update that leaves a node's
scheduling fields unchanged (a heartbeat, a condition) costs nothing.
"""

from __future__ import annotations

import logging
from typing import Iterable

from ..cluster import AssignError, GpufleetError, Node, Pod
from ..scheduler import Scheduler
from .convert import (bound_node, gpu_indices_from_annotation, is_being_deleted, is_terminal, node_from_k8s,
                      object_key, pod_from_k8s)

log = logging.getLogger("gpufleet.kube")

SYNC = "SYNC"  # a full list: (kind, SYNC, items)


class ClusterSync:
    """Applies (kind, type, object) events from the informers to a Scheduler and its ClusterState."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.cluster = scheduler.cluster
        self.pods: dict[str, dict] = {}  # uid -> latest API object seen
        self.pod_uids: dict[str, str] = {}  # namespace/name -> uid
        self.waiting_for_node: dict[str, tuple[Pod, str]] = {}  # uid -> (pod, node name)
        self.nodes: dict[str, Node] = {n.name: n for n in self.cluster.nodes}
        self.synced: set[str] = set()  # kinds whose first list was applied

    # ------------------------------------------------------------------ batches
    def apply(self, events: Iterable[tuple[str, str, object]]) -> None:
        node_events, pod_events = [], []
        for kind, etype, obj in events:
            (node_events if kind == "nodes" else pod_events).append((etype, obj))
        if node_events:
            self._apply_nodes(node_events)
            self.synced.add("nodes") if any(t == SYNC for t, _ in node_events) else None
        for etype, obj in pod_events:
            if etype == SYNC:
                self._relist_pods(obj)
                self.synced.add("pods")
            elif etype == "DELETED":
                self._pod_gone(obj.get("metadata", {}).get("uid", ""))
            else:
                self._pod_seen(obj)

    # ------------------------------------------------------------------ nodes
    def _apply_nodes(self, events: list[tuple[str, object]]) -> None:
        wanted = dict(self.nodes)
        for etype, obj in events:
            if etype == SYNC:
                wanted = {}
                for item in obj:
                    node = self._node(item)
                    if node is not None:
                        wanted[node.name] = node
            elif etype == "DELETED":
                wanted.pop((obj.get("metadata") or {}).get("name", ""), None)
            else:
                node = self._node(obj)
                if node is not None:
                    wanted[node.name] = node
        if wanted == self.nodes:
            return
        order = [n.name for n in self.cluster.nodes if n.name in wanted]
        order += [name for name in wanted if name not in self.nodes]
        nodes = [wanted[name] for name in order]
        try:
            evicted = self.cluster.replace_nodes(nodes)
        except AssignError as exc:
            evicted = self._replace_nodes_forcing(nodes, exc)
        self.nodes = wanted
        for pod in evicted:  # its node is gone: it waits in case the node comes back
            self.waiting_for_node[pod.uid] = (pod, pod.node_name or "")
        for uid, (pod, node_name) in list(self.waiting_for_node.items()):
            if node_name in self.cluster.node_index:
                del self.waiting_for_node[uid]
                self._assign_bound(pod, node_name)
        self.scheduler.cluster_changed("NodeChanged")

    def _node(self, obj: dict) -> Node | None:
        try:
            return node_from_k8s(obj)
        except GpufleetError as exc:
            log.warning("ignoring node %s: %s", object_key(obj), exc)
            return None

    def _replace_nodes_forcing(self, nodes: list[Node], exc: AssignError) -> list[Pod]:
        """A node shrank under its pods (the API allows it): take the pods off, rebuild, put them back."""
        log.warning("node update leaves pods over capacity (%s); keeping them counted", exc)
        held = [(self.cluster.pods[uid], p) for uid, p in self.cluster.placements.items()]
        for uid in list(self.cluster.placements):
            self.cluster.release(uid)
        evicted = self.cluster.replace_nodes(nodes)
        for pod, placement in held:
            if placement.node_name in self.cluster.node_index:
                self._assign_bound(pod, placement.node_name, placement.gpu_indices)
            else:
                evicted.append(pod)
        return evicted

    # ------------------------------------------------------------------ pods
    def _relist_pods(self, items: list[dict]) -> None:
        present = {(it.get("metadata") or {}).get("uid") for it in items}
        for uid in list(self.pods):
            if uid not in present:
                self._pod_gone(uid)
        # Pods whose GPUs are recorded go first, so best-fit guesses never take a recorded GPU.
        items = sorted(items, key=lambda it: "gpufleet.io/gpu-index" not in
                       ((it.get("metadata") or {}).get("annotations") or {}))
        for it in items:
            self._pod_seen(it)

    def _pod_seen(self, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid", "")
        if is_terminal(obj):
            self._pod_gone(uid)
            return
        self.pods[uid] = obj
        self.pod_uids[object_key(obj)] = uid
        node_name = bound_node(obj)
        placement = self.cluster.placements.get(uid)
        if placement is not None:
            if not node_name or placement.node_name == node_name:
                return  # assumed by us (an older, unbound view) or already counted: confirmed
            # bound somewhere else than we counted it: count it where it really is
            pod = self.cluster.pods[uid]
            self.scheduler.pod_deleted(pod)
        if uid in self.waiting_for_node and self.waiting_for_node[uid][1] == node_name:
            return
        try:
            pod = pod_from_k8s(obj)
        except GpufleetError as exc:
            log.warning("ignoring pod %s: %s", object_key(obj), exc)
            return
        if node_name:
            self.scheduler.queue.delete(pod)  # bound by someone (or by us, before a restart)
            if node_name in self.cluster.node_index:
                self._assign_bound(pod, node_name)
            else:
                self.waiting_for_node[uid] = (pod, node_name)
        elif self.scheduler.responsible_for(pod) and not is_being_deleted(obj):
            self.scheduler.add(pod)

    def _assign_bound(self, pod: Pod, node_name: str, gpus: tuple[int, ...] | None = None) -> None:
        """Count a pod the API says is on ``node_name``; over capacity it is still counted (forced)."""
        n = self.cluster.node_index[node_name]
        pod.node_name = node_name
        recorded = gpus if gpus is not None else gpu_indices_from_annotation(pod)
        choice = None
        if pod.num_gpu:
            if recorded is not None and self.cluster.can_assign(pod, n, recorded) is None:
                choice = recorded
            else:
                choice = self.cluster.default_gpu_choice(pod, n) or None
        if self.cluster.can_assign(pod, n, choice) is None:
            self.cluster.assign(pod, n, choice)
        else:
            valid = tuple(g for g in (recorded or ()) if 0 <= g < self.cluster.gpu_count[n])
            log.warning("pod %s on node %s does not fit the node's free capacity; counting it anyway",
                        pod.key, node_name)
            self.cluster.assign(pod, n, valid if pod.num_gpu and len(valid) == pod.num_gpu else (), force=True)
        pod.gpu_indices = self.cluster.placements[pod.uid].gpu_indices

    def _pod_gone(self, uid: str) -> None:
        obj = self.pods.pop(uid, None)
        if obj is not None:
            self.pod_uids.pop(object_key(obj), None)
        self.waiting_for_node.pop(uid, None)
        pod = self.cluster.pods.get(uid)
        if pod is None and obj is not None:
            try:
                pod = pod_from_k8s(obj)
            except GpufleetError:
                return
        if pod is not None:
            self.scheduler.pod_deleted(pod)

    # ------------------------------------------------------------------ lookups
    def bound_in_cache(self, pod: Pod) -> bool:
        """kube's handleSchedulingFailure check: the informer's copy of the pod already has a node."""
        obj = self.pods.get(pod.uid)
        return obj is None or bool(bound_node(obj))
