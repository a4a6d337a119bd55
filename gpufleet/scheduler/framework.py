"""The scheduling framework: extension points, CycleState, Status, and the profile runner.

Modelled on kube-scheduler's scheduling framework (kubernetes/kubernetes pkg/scheduler/framework, KEP-624):
QueueSort, PreFilter, Filter, PostFilter, PreScore, Score, NormalizeScore, Reserve/Unreserve, Permit,
PreBind, Bind, PostBind. The framework owns the cycle; a plugin owns one rule.

gpufleet's one change is the shape of the calls (DESIGN.md, "columns, not objects"): Filter receives an
array of candidate node indices and returns a boolean mask over them with the reasons of every failure;
Score receives the feasible node indices and returns an integer array. Rules carried over exactly:

* percentageOfNodesToScore (pkg/scheduler/schedule_one.go numFeasibleNodesToFind): below 100 nodes all are
  scored; otherwise ``percentage`` (0 = adaptive ``50 - numAllNodes/125``, at least 5) percent, at least 100
  nodes; the search starts where the previous one stopped (round robin).
* scores: each plugin's scores are normalised, must lie in [0, 100] (MaxNodeScore), multiplied by the
  plugin's weight and summed; the highest total wins, ties broken uniformly at random (seeded), or by a
  fixed node rank when the backend sets ``Handle.node_rank`` (the FGD simulator's reproducible tie-break).
* unschedulable diagnostics (FitError.Error): "0/N nodes are available: " then "COUNT REASON" for every
  reason, sorted as strings and joined by ", ", ending with "."; a PostFilter message follows.
* when only one node is feasible, scoring is skipped.

The device choice (which GPUs of the node) is made in Reserve and then the pod is assumed into the
ClusterState (kube assumes before Reserve; a GPU pod's assumption needs the device choice first, as DRA's
Reserve does for claims).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from ..cluster import AssignError, ClusterState, GpufleetError, Pod

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

EXTENSION_POINTS = ("queueSort", "preFilter", "filter", "postFilter", "preScore", "score", "reserve",
                    "permit", "preBind", "bind", "postBind")
# Method implementing each extension point; normalize_score and unreserve ride along with score/reserve.
POINT_METHOD = {"queueSort": "less", "preFilter": "pre_filter", "filter": "filter",
                "postFilter": "post_filter", "preScore": "pre_score", "score": "score", "reserve": "reserve",
                "permit": "permit", "preBind": "pre_bind", "bind": "bind", "postBind": "post_bind"}


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass
class Status:
    code: Code = Code.SUCCESS
    reasons: list[str] = field(default_factory=list)
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == Code.SUCCESS

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @staticmethod
    def success() -> "Status":
        return Status()

    @staticmethod
    def unschedulable(*reasons: str, plugin: str = "") -> "Status":
        return Status(Code.UNSCHEDULABLE, list(reasons), plugin)

    @staticmethod
    def error(*reasons: str, plugin: str = "") -> "Status":
        return Status(Code.ERROR, list(reasons), plugin)

    @staticmethod
    def wait(plugin: str = "") -> "Status":
        return Status(Code.WAIT, [], plugin)

    @staticmethod
    def skip() -> "Status":
        return Status(Code.SKIP)


class CycleState(dict):
    """Data plugins pass between extension points of one scheduling cycle (keys are plugin-chosen)."""

    def __init__(self) -> None:
        super().__init__()
        self.skip_score_plugins: set[str] = set()
        self.skip_filter_plugins: set[str] = set()

    def read(self, key: str) -> Any:
        return self[key]

    def write(self, key: str, value: Any) -> None:
        self[key] = value


@dataclass
class FilterResult:
    """Which candidate nodes pass, and per reason the candidates that failed for it."""

    mask: np.ndarray
    failures: list[tuple[str, np.ndarray]] = field(default_factory=list)
    unresolvable: bool = False

    @staticmethod
    def from_failures(n: int, failures: list[tuple[str, np.ndarray]], unresolvable: bool = False) -> "FilterResult":
        """Build from (reason, failing mask) pairs: a node passes when no reason fails it."""
        failing = np.zeros(n, dtype=bool)
        kept = []
        for reason, fail in failures:
            if fail.any():
                failing |= fail
                kept.append((reason, fail))
        return FilterResult(~failing, kept, unresolvable)

    @staticmethod
    def all_pass(n: int) -> "FilterResult":
        return FilterResult(np.ones(n, dtype=bool))


@dataclass
class PreFilterResult:
    """A PreFilter may narrow the candidates to a set of node indices (None = all nodes)."""

    node_indices: np.ndarray | None = None
    status: Status = field(default_factory=Status)


@dataclass
class PostFilterResult:
    nominated_node: str | None = None
    status: Status = field(default_factory=lambda: Status(Code.UNSCHEDULABLE))
    message: str = ""


@dataclass
class Diagnosis:
    num_all_nodes: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_message: str = ""
    post_filter_message: str = ""
    unresolvable: bool = False

    def message(self) -> str:
        """kube-scheduler's FitError.Error() text."""
        msg = f"0/{self.num_all_nodes} nodes are available:"
        if self.pre_filter_message:
            msg += f" {self.pre_filter_message}."
        else:
            parts = sorted(f"{count} {reason}" for reason, count in self.reason_counts.items())
            if parts:
                msg += f" {', '.join(parts)}."
        if self.post_filter_message:
            msg += f" {self.post_filter_message}."  # kube's SeparatorFormat " %v." for every part
        return msg


class FitError(GpufleetError):
    """No node fits the pod; ``diagnosis`` holds the per-reason node counts."""

    def __init__(self, pod: Pod, diagnosis: Diagnosis):
        self.pod = pod
        self.diagnosis = diagnosis
        super().__init__(diagnosis.message())


@dataclass
class ScheduleResult:
    node_index: int
    node_name: str
    evaluated_nodes: int
    feasible_nodes: int
    scores: np.ndarray | None = None


class Handle:
    """What the framework offers plugins: the cluster, the RNG, the binder, the waiting pods."""

    def __init__(self, cluster: ClusterState, rng: np.random.Generator | None = None,
                 binder: Callable[[Pod, str], None] | None = None, clock: Callable[[], float] | None = None):
        self.cluster = cluster
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.binder = binder
        self.clock = clock or (lambda: 0.0)
        self.waiting_pods: dict[str, "WaitingPod"] = {}
        # Tie-break among the best-scoring nodes: None = uniformly at random (kube); or a rank per node index,
        # the lowest rank wins (the FGD simulator's kube fork picks the smallest node name, and its node names
        # carry a seeded random prefix: a fixed random node order per run).
        self.node_rank: np.ndarray | None = None
        self.frameworks: dict[str, "Framework"] = {}
        self.events: list[tuple[str, Pod, str]] = []  # (reason, pod, message) for backends to record
        # Every pod the scheduler knows (pending, waiting at Permit, bound) by uid, and pod groups by key
        # (kube's pod and PodGroup listers); group_members indexes pods by "namespace/group".
        self.pods: dict[str, Pod] = {}
        self.pod_groups: dict[str, Any] = {}
        self.group_members: dict[str, dict[str, Pod]] = {}
        self.group_first_seen: dict[str, float] = {}
        self.shared: dict[str, Any] = {}  # state plugins keep across cycles (e.g. gangs denied for a while)
        # Set by the Scheduler (kube's WaitingPod.Allow/Reject, PodsToActivate, and the preemption
        # eviction): plugins call these, never the Scheduler directly.
        self.allow_waiting: Callable[[str, str], Any] = lambda uid, plugin: None
        self.reject_waiting: Callable[[str, str], Any] = lambda uid, message: None
        self.activate: Callable[[list[Pod]], None] = lambda pods: None
        self.evict: Callable[[Pod, str], None] = lambda pod, message: None

    def record_event(self, reason: str, pod: Pod, message: str) -> None:
        self.events.append((reason, pod, message))

    def add_pod(self, pod: Pod) -> None:
        self.pods[pod.uid] = pod
        if pod.pod_group:
            key = f"{pod.namespace}/{pod.pod_group}"
            self.group_members.setdefault(key, {})[pod.uid] = pod
            self.group_first_seen.setdefault(key, self.clock())

    def remove_pod(self, pod: Pod) -> None:
        self.pods.pop(pod.uid, None)
        if pod.pod_group:
            key = f"{pod.namespace}/{pod.pod_group}"
            members = self.group_members.get(key)
            if members is not None:
                members.pop(pod.uid, None)
                if not members:
                    del self.group_members[key]
                    self.group_first_seen.pop(key, None)


class Plugin:
    """Base class. A plugin implements any of: less, pre_filter, filter, post_filter, pre_score, score,
    normalize_score, reserve, unreserve, permit, pre_bind, bind, post_bind (see Framework for signatures).

    ``args`` is the plugin's pluginConfig args mapping; constructors validate it and raise
    ``ValueError`` naming the field (turned into a SpecError pointing at the profile file).
    """

    name: ClassVar[str] = ""

    def __init__(self, args: dict | None = None, handle: Handle | None = None):
        self.args = dict(args or {})
        self.handle = handle

    def implements(self, point: str) -> bool:
        method = POINT_METHOD[point]
        return getattr(type(self), method, None) is not getattr(Plugin, method, None) and hasattr(self, method)


@dataclass
class WaitingPod:
    pod: Pod
    node_index: int
    framework: "Framework"
    state: CycleState
    deadline: float
    pending: set[str]


@dataclass
class PluginEntry:
    plugin: Plugin
    weight: int = 1


@dataclass
class Profile:
    """A scheduler name and, per extension point, the ordered plugins (score plugins with weights)."""

    scheduler_name: str
    points: dict[str, list[PluginEntry]]
    percentage_of_nodes_to_score: int | None = None

    def plugins(self, point: str) -> list[PluginEntry]:
        return self.points.get(point, [])


def num_feasible_nodes_to_find(percentage: int | None, num_all_nodes: int) -> int:
    """kube-scheduler's numFeasibleNodesToFind (adaptive when percentage is 0 or unset)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    pct = percentage or 0
    if pct == 0:
        pct = 50 - num_all_nodes // 125
        pct = max(pct, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if pct >= 100:
        return num_all_nodes
    num = num_all_nodes * pct // 100
    return max(num, MIN_FEASIBLE_NODES_TO_FIND)


class Framework:
    """Runs one profile's plugins over a ClusterState."""

    def __init__(self, profile: Profile, handle: Handle):
        self.profile = profile
        self.handle = handle
        self.next_start_node_index = 0

    @property
    def name(self) -> str:
        return self.profile.scheduler_name

    # ------------------------------------------------------------------ queue sort
    def less(self, a: Any, b: Any) -> bool:
        entries = self.profile.plugins("queueSort")
        return entries[0].plugin.less(a, b) if entries else a.timestamp < b.timestamp

    # ------------------------------------------------------------------ filtering
    def run_pre_filter(self, state: CycleState, pod: Pod) -> tuple[np.ndarray | None, Status]:
        cluster = self.handle.cluster
        nodes: np.ndarray | None = None
        for entry in self.profile.plugins("preFilter"):
            result = entry.plugin.pre_filter(state, pod, cluster)
            if result is None:
                continue
            if isinstance(result, Status):
                result = PreFilterResult(status=result)
            status = result.status
            if status.code == Code.SKIP:
                state.skip_filter_plugins.add(entry.plugin.name)
                continue
            if not status.ok:
                status.plugin = status.plugin or entry.plugin.name
                return None, status
            if result.node_indices is not None:
                idx = np.asarray(result.node_indices, dtype=np.int64)
                nodes = idx if nodes is None else np.intersect1d(nodes, idx)
        return nodes, Status()

    def run_filter(self, state: CycleState, pod: Pod, nodes: np.ndarray,
                   diagnosis: Diagnosis | None = None) -> np.ndarray:
        """Indices of ``nodes`` that pass every Filter plugin; failure reasons counted into ``diagnosis``."""
        cluster = self.handle.cluster
        for entry in self.profile.plugins("filter"):
            if len(nodes) == 0:
                break
            if entry.plugin.name in state.skip_filter_plugins:
                continue
            result: FilterResult = entry.plugin.filter(state, pod, cluster, nodes)
            if diagnosis is not None and result.failures:
                diagnosis.unschedulable_plugins.add(entry.plugin.name)
                diagnosis.unresolvable |= result.unresolvable
                for reason, fail in result.failures:
                    diagnosis.reason_counts[reason] = diagnosis.reason_counts.get(reason, 0) + int(fail.sum())
            if not result.mask.all():
                nodes = nodes[result.mask]
        return nodes

    def find_nodes_that_fit(self, state: CycleState, pod: Pod) -> tuple[np.ndarray, Diagnosis, int]:
        """Feasible node indices (at most numFeasibleNodesToFind of them, round robin), diagnosis, and how
        many nodes were evaluated."""
        cluster = self.handle.cluster
        n_all = cluster.num_nodes
        diagnosis = Diagnosis(n_all)
        candidates, status = self.run_pre_filter(state, pod)
        if not status.ok:
            diagnosis.pre_filter_message = status.message
            diagnosis.unschedulable_plugins.add(status.plugin)
            diagnosis.unresolvable = status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
            return np.empty(0, dtype=np.int64), diagnosis, 0
        if candidates is None:
            start = self.next_start_node_index % max(n_all, 1)
            candidates = np.roll(np.arange(n_all, dtype=np.int64), -start)
        feasible = self.run_filter(state, pod, candidates, diagnosis)
        want = num_feasible_nodes_to_find(self.profile.percentage_of_nodes_to_score, len(candidates))
        evaluated = len(candidates)
        if len(feasible) > want:
            # Nodes are visited in candidate order; the search stops at the want-th feasible node.
            last = feasible[want - 1]
            evaluated = int(np.flatnonzero(candidates == last)[0]) + 1
            feasible = feasible[:want]
        if n_all:
            self.next_start_node_index = (self.next_start_node_index + evaluated) % n_all
        return feasible, diagnosis, evaluated

    # ------------------------------------------------------------------ scoring
    def run_pre_score(self, state: CycleState, pod: Pod, nodes: np.ndarray) -> Status:
        for entry in self.profile.plugins("preScore"):
            status = entry.plugin.pre_score(state, pod, self.handle.cluster, nodes)
            if status is None:
                continue
            if status.code == Code.SKIP:
                state.skip_score_plugins.add(entry.plugin.name)
            elif not status.ok:
                status.plugin = entry.plugin.name
                return status
        return Status()

    def run_score(self, state: CycleState, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """Weighted sum of normalised plugin scores over ``nodes``."""
        cluster = self.handle.cluster
        total = np.zeros(len(nodes), dtype=np.int64)
        for entry in self.profile.plugins("score"):
            plugin = entry.plugin
            if plugin.name in state.skip_score_plugins:
                continue
            scores = np.asarray(plugin.score(state, pod, cluster, nodes), dtype=np.int64)
            if hasattr(plugin, "normalize_score"):
                scores = np.asarray(plugin.normalize_score(state, pod, cluster, nodes, scores), dtype=np.int64)
            if len(scores) and (scores.min() < 0 or scores.max() > MAX_NODE_SCORE):
                raise GpufleetError(f"plugin {plugin.name} returned a score outside [0, {MAX_NODE_SCORE}] "
                                    f"for pod {pod.key}")
            total += scores * entry.weight
        return total

    def select_host(self, nodes: np.ndarray, scores: np.ndarray) -> int:
        best = np.flatnonzero(scores == scores.max())
        if len(best) == 1:
            return int(nodes[best[0]])
        if self.handle.node_rank is not None:
            return int(nodes[best[np.argmin(self.handle.node_rank[nodes[best]])]])
        return int(nodes[best[self.handle.rng.integers(len(best))]])

    def schedule_pod(self, state: CycleState, pod: Pod) -> ScheduleResult:
        """Filter and score; raise FitError when nothing fits."""
        cluster = self.handle.cluster
        if cluster.num_nodes == 0:
            raise FitError(pod, Diagnosis(0, pre_filter_message="no nodes available to schedule pods"))
        feasible, diagnosis, evaluated = self.find_nodes_that_fit(state, pod)
        if len(feasible) == 0:
            raise FitError(pod, diagnosis)
        if len(feasible) == 1:
            idx = int(feasible[0])
            return ScheduleResult(idx, cluster.nodes[idx].name, evaluated, 1)
        status = self.run_pre_score(state, pod, feasible)
        if not status.ok:
            raise GpufleetError(f"PreScore plugin {status.plugin} failed for pod {pod.key}: {status.message}")
        scores = self.run_score(state, pod, feasible)
        idx = self.select_host(feasible, scores)
        return ScheduleResult(idx, cluster.nodes[idx].name, evaluated, len(feasible), scores)

    # ------------------------------------------------------------------ post filter
    def run_post_filter(self, state: CycleState, pod: Pod, diagnosis: Diagnosis) -> PostFilterResult | None:
        for entry in self.profile.plugins("postFilter"):
            result = entry.plugin.post_filter(state, pod, self.handle.cluster, diagnosis)
            if result is None:
                continue
            if result.message:
                diagnosis.post_filter_message = result.message
            if result.status.ok:
                return result
        return None

    # ------------------------------------------------------------------ reserve, assume, permit, bind
    def run_reserve(self, state: CycleState, pod: Pod, node_index: int) -> Status:
        done: list[PluginEntry] = []
        for entry in self.profile.plugins("reserve"):
            status = entry.plugin.reserve(state, pod, self.handle.cluster, node_index)
            done.append(entry)
            if status is not None and not status.ok:
                status.plugin = entry.plugin.name
                self.run_unreserve(state, pod, node_index)
                return status
        return Status()

    def run_unreserve(self, state: CycleState, pod: Pod, node_index: int) -> None:
        """Unreserve every Reserve plugin, in reverse order (kube: RunReservePluginsUnreserve)."""
        for entry in reversed(self.profile.plugins("reserve")):
            if hasattr(entry.plugin, "unreserve"):
                entry.plugin.unreserve(state, pod, self.handle.cluster, node_index)

    def assume(self, state: CycleState, pod: Pod, node_index: int) -> Status:
        """Take the pod's resources in the ClusterState, with the GPUs chosen in Reserve."""
        gpus = state.get("gpu_indices")
        try:
            self.handle.cluster.assign(pod, node_index, gpus)
        except AssignError as exc:
            return Status.unschedulable(str(exc), plugin="assume")
        return Status()

    def forget(self, pod: Pod) -> None:
        if pod.uid in self.handle.cluster.placements:
            self.handle.cluster.release(pod.uid)

    def run_permit(self, state: CycleState, pod: Pod, node_index: int) -> Status:
        """Success, a rejection, or WAIT (the pod is parked in handle.waiting_pods until allowed)."""
        pending: set[str] = set()
        timeout = math.inf
        for entry in self.profile.plugins("permit"):
            result = entry.plugin.permit(state, pod, self.handle.cluster, node_index)
            status, plugin_timeout = result if isinstance(result, tuple) else (result, 0.0)
            if status is None or status.ok:
                continue
            if status.code == Code.WAIT:
                pending.add(entry.plugin.name)
                timeout = min(timeout, plugin_timeout)
                continue
            status.plugin = entry.plugin.name
            return status
        if pending:
            self.handle.waiting_pods[pod.uid] = WaitingPod(pod, node_index, self, state,
                                                           self.handle.clock() + timeout, pending)
            return Status.wait()
        return Status()

    def run_bind(self, state: CycleState, pod: Pod, node_index: int) -> Status:
        cluster = self.handle.cluster
        for entry in self.profile.plugins("preBind"):
            status = entry.plugin.pre_bind(state, pod, cluster, node_index)
            if status is not None and not status.ok:
                status.plugin = entry.plugin.name
                return status
        bound = False
        for entry in self.profile.plugins("bind"):
            status = entry.plugin.bind(state, pod, cluster, node_index)
            if status is not None and status.code == Code.SKIP:
                continue
            if status is not None and not status.ok:
                status.plugin = entry.plugin.name
                return status
            bound = True
            break
        if not bound:
            return Status.error("no bind plugin bound the pod")
        for entry in self.profile.plugins("postBind"):
            entry.plugin.post_bind(state, pod, cluster, node_index)
        return Status()
