"""Scheduler profiles from a KubeSchedulerConfiguration-shaped YAML, and the built-in policies.

Shape and merge rules follow kube-scheduler's config API (kubescheduler.config.k8s.io/v1,
pkg/scheduler/apis/config/v1/default_plugins.go mergePlugins):

* ``profiles[].plugins.<point>.enabled`` appends plugins (a default plugin named again keeps its place
  and takes the new weight), ``disabled`` removes defaults (``*`` removes them all) at that point;
* ``plugins.multiPoint`` enables or disables a plugin at every extension point it implements;
* ``pluginConfig[].args`` are the plugin's arguments; score ``weight`` defaults to 1;
* ``percentageOfNodesToScore`` at the top level or per profile (0 or absent = adaptive);
* every profile must use the same QueueSort plugin, and at least one Bind plugin.

Built-in profiles (``builtin_profile``): ``default`` (kube's default score set among gpufleet's plugins),
``random``, ``spread`` (LeastAllocated over cpu, memory and GPUs) and ``binpack`` (GpuBinPacking plus
MostAllocated); the FGD paper's policies ``random-fgd``, ``dotprod``, ``clustering``, ``packing``, ``bestfit``,
``fgd`` (see FGD_PAPER_POLICIES and docs/fgd.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster import DEFAULT_SCHEDULER_NAME, SpecError
from ..cluster.spec import Field, document_fields
from .framework import EXTENSION_POINTS, Handle, PluginEntry, Profile
from .plugins import REGISTRY

API_VERSIONS = ("kubescheduler.config.k8s.io/v1", "kubescheduler.config.k8s.io/v1beta3")

FILTERS = ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodeResourcesFit", "GpuFit",
           "GpuWorkloadType", "MigPlacement"]  # the last two: partitioned GPUs (docs/devices.md); no-ops otherwise

# Default plugin set per extension point, (name, weight); kube-scheduler's defaults among our plugins.
DEFAULT_PLUGINS: dict[str, list[tuple[str, int]]] = {
    "queueSort": [("PrioritySort", 1)],
    "preFilter": [],
    "filter": [(n, 1) for n in FILTERS],
    "postFilter": [],
    "preScore": [("NodeResourcesBalancedAllocation", 1), ("SelectorSpread", 1)],
    "score": [("TaintToleration", 3), ("NodeResourcesFit", 1), ("NodeResourcesBalancedAllocation", 1),
              ("SelectorSpread", 1)],
    "reserve": [("GpuFit", 1), ("MigPlacement", 1)],
    "permit": [],
    "preBind": [],
    "bind": [("DefaultBinder", 1)],
    "postBind": [],
}


@dataclass
class ProfileConfig:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    plugins: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: {
        k: list(v) for k, v in DEFAULT_PLUGINS.items()})
    plugin_args: dict[str, dict] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None
    source: str = "built-in"


def _policy(name: str, score: list[tuple[str, int]], args: dict[str, dict], pre_score=None) -> ProfileConfig:
    cfg = ProfileConfig(scheduler_name=DEFAULT_SCHEDULER_NAME, source=f"built-in policy {name!r}")
    cfg.plugins["score"] = score
    cfg.plugins["preScore"] = pre_score or []
    cfg.plugin_args = args
    return cfg


GPU_AWARE_RESOURCES = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1},
                       {"name": "nvidia.com/gpu", "weight": 1}]


def builtin_profile(name: str) -> ProfileConfig:
    """A built-in policy by name (BUILTIN_POLICIES); ``NAME+gang`` adds gang scheduling and preemption
    (Coscheduling and PriorityPreemption, docs/training.md) to the policy NAME."""
    if name.endswith("+gang"):
        from .plugins.gang import with_gang
        return with_gang(builtin_profile(name[: -len("+gang")]))
    if name == "default":
        return ProfileConfig(source="built-in policy 'default'")
    if name == "random":
        return _policy(name, [("Random", 1)], {})
    if name == "spread":
        return _policy(name, [("NodeResourcesFit", 1)], {"NodeResourcesFit": {"scoringStrategy": {
            "type": "LeastAllocated", "resources": GPU_AWARE_RESOURCES}}})
    if name == "binpack":
        return _policy(name, [("GpuBinPacking", 2), ("NodeResourcesFit", 1)], {"NodeResourcesFit": {
            "scoringStrategy": {"type": "MostAllocated", "resources": GPU_AWARE_RESOURCES}}})
    if name in FGD_PAPER_POLICIES:
        plugin, args, picks_gpus = FGD_PAPER_POLICIES[name]
        tie = TIE_BREAK_PLUGINS.get(plugin)
        score = [(plugin, 100), (tie, 1)] if tie else [(plugin, 1)]
        cfg = _policy(name, score, {plugin: dict(args)} if args else {})
        if picks_gpus:  # the plugin chooses a fractional pod's GPU even when scoring is skipped
            cfg.plugins["reserve"] = [(plugin, 1)] + cfg.plugins["reserve"]
        return cfg
    raise SpecError(f"unknown policy {name!r} (expected one of {', '.join(BUILTIN_POLICIES)} or a "
                    "KubeSchedulerConfiguration file)")


# The FGD paper's policies (USENIX ATC'23, Sec. 6.1, as its simulator runs them: the one score plugin alone,
# default kube scorers off): policy name -> (score plugin, its args, whether it picks the GPUs in Reserve).
# FGD-family plugins need ``typicalPods`` args, which the simulator adds per experiment (sim.experiment).
FGD_PAPER_POLICIES = {
    "random-fgd": ("Random", {"gpuSelection": "random"}, False),
    "dotprod": ("DotProd", {}, False),
    "clustering": ("GpuClustering", {}, False),
    "packing": ("GpuPacking", {}, False),
    "bestfit": ("BestFit", {}, False),
    "fgd": ("FGD", {}, True),
    # gpufleet's own (docs/fgd.md): FGD's gradient on a CPU- and capacity-aware fragmentation measure.
    "fgd-cap": ("CapacityFGD", {"alpha": 0.5}, True),
    # FGD's score with a look-ahead tie-break (plugins/fgd_lookahead.py), the best of ours on openb default.
    "fgd-la": ("LookaheadFGD", {}, True),
    # the same with the expected hole waste in the primary too (mu = 1): ahead on the fractional-share traces,
    # behind FGD on the multigpu30..50 traces (docs/fgd.md).
    "fgd-la-hole": ("LookaheadFGD", {"mu": 1.0}, True),
    # the hole waste priced by the cutting-stock LP's duals (scheduler/share_prices.py), weighted 5 in the primary:
    # the best of ours (docs/fgd.md).
    "fgd-la-dual": ("LookaheadFGD", {"mu": 5.0, "holeModel": "dual"}, True),
}
# Score plugins whose ties a second plugin breaks: score plugin -> tie-break plugin. The main plugin gets weight
# 100 and the tie-break (scores 0..99) weight 1, so the sum orders nodes lexicographically.
TIE_BREAK_PLUGINS = {"LookaheadFGD": "LookaheadTieBreak"}
# Score plugins that take the workload's typical pods as the ``typicalPods`` arg.
TYPICAL_POD_PLUGINS = {"FGD", "CapacityFGD", "LookaheadFGD"}

BUILTIN_POLICIES = ("default", "random", "spread", "binpack", *FGD_PAPER_POLICIES)


def _names(f: Field) -> list[tuple[str, int, Field]]:
    out = []
    for item in f.items():
        if isinstance(item.value, str):
            out.append((item.value, 1, item))
            continue
        name = item.require("name").string()
        weight = item.get("weight").integer(1, minimum=0) or 1
        out.append((name, weight, item.get("name")))
    return out


def _check_known(name: str, where: Field) -> None:
    if name != "*" and name not in REGISTRY:
        raise where.error(f"unknown plugin {name!r} (known plugins: {', '.join(sorted(REGISTRY))})")


def _implements(name: str, point: str) -> bool:
    return REGISTRY[name](None, None).implements(point) if name in REGISTRY else False


def parse_profile(f: Field, top_percentage: int | None) -> ProfileConfig:
    cfg = ProfileConfig(scheduler_name=f.get("schedulerName").string(DEFAULT_SCHEDULER_NAME), source=f.file)
    pct = f.get("percentageOfNodesToScore")
    cfg.percentage_of_nodes_to_score = pct.integer(minimum=0) if pct.value is not None else top_percentage
    if cfg.percentage_of_nodes_to_score is not None and cfg.percentage_of_nodes_to_score > 100:
        raise pct.error(f"expected 0..100, got {cfg.percentage_of_nodes_to_score}")
    plugins = f.get("plugins")
    for point_name, _ in plugins.keys_fields():
        if point_name != "multiPoint" and point_name not in EXTENSION_POINTS:
            raise plugins.get(point_name).error(
                f"unknown extension point (expected multiPoint or one of {', '.join(EXTENSION_POINTS)})")
    multi = plugins.get("multiPoint")
    for name, _, where in _names(multi.get("disabled")):
        _check_known(name, where)
        for point in EXTENSION_POINTS:
            cfg.plugins[point] = [] if name == "*" else [p for p in cfg.plugins[point] if p[0] != name]
    for name, weight, where in _names(multi.get("enabled")):
        _check_known(name, where)
        for point in EXTENSION_POINTS:
            if _implements(name, point) and name not in [p[0] for p in cfg.plugins[point]]:
                cfg.plugins[point].append((name, weight))
    for point in EXTENSION_POINTS:
        pf = plugins.get(point)
        current = cfg.plugins[point]
        for name, _, where in _names(pf.get("disabled")):
            _check_known(name, where)
            current = [] if name == "*" else [p for p in current if p[0] != name]
        for name, weight, where in _names(pf.get("enabled")):
            _check_known(name, where)
            if not _implements(name, point) and not (point == "preScore" and _implements(name, "score")):
                raise where.error(f"plugin {name!r} does not implement the {point} extension point")
            names = [p[0] for p in current]
            if name in names:
                current[names.index(name)] = (name, weight)
            else:
                current.append((name, weight))
        cfg.plugins[point] = current
    for item in f.get("pluginConfig").items():
        name = item.require("name").string()
        _check_known(name, item.get("name"))
        args = item.get("args").value or {}
        if not isinstance(args, dict):
            raise item.get("args").error("expected a mapping of plugin arguments")
        cfg.plugin_args[name] = _plain(args)
        cfg.plugin_args.setdefault("__lines__", {})[name] = item.get("args")
        try:  # validate on load (kube decodes and validates every pluginConfig entry when loading)
            REGISTRY[name](cfg.plugin_args[name], None)
        except ValueError as exc:
            raise item.get("args").error(f"{name} args: {exc}") from None
    return cfg


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | Path) -> list[ProfileConfig]:
    """Profiles from a KubeSchedulerConfiguration YAML file."""
    docs = document_fields(path)
    if len(docs) != 1:
        raise SpecError(f"expected one KubeSchedulerConfiguration document, found {len(docs)}", file=str(path))
    doc = docs[0]
    if doc.get("kind").value != "KubeSchedulerConfiguration":
        raise doc.get("kind").error(f"expected kind KubeSchedulerConfiguration, got {doc.get('kind').value!r}")
    api = doc.get("apiVersion").value
    if api not in API_VERSIONS:
        raise doc.get("apiVersion").error(f"expected one of {', '.join(API_VERSIONS)}, got {api!r}")
    top = doc.get("percentageOfNodesToScore")
    top_pct = top.integer(minimum=0) if top.value is not None else None
    profiles = [parse_profile(p, top_pct) for p in doc.get("profiles").items()]
    if not profiles:
        profiles = [ProfileConfig(percentage_of_nodes_to_score=top_pct, source=str(path))]
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise SpecError("two profiles share a schedulerName", file=str(path), field="profiles")
    sorts = {tuple(p.plugins["queueSort"]) for p in profiles}
    if len(sorts) > 1:
        raise SpecError("all profiles must use the same queueSort plugin", file=str(path), field="profiles")
    return profiles


def build_profile(cfg: ProfileConfig, handle: Handle) -> Profile:
    """Instantiate the plugins of a profile (one instance per plugin, shared across its points)."""
    instances: dict[str, Any] = {}
    lines = cfg.plugin_args.get("__lines__", {})
    points: dict[str, list[PluginEntry]] = {}
    for point in EXTENSION_POINTS:
        entries = []
        for name, weight in cfg.plugins.get(point, []):
            if name not in instances:
                try:
                    instances[name] = REGISTRY[name](cfg.plugin_args.get(name), handle)
                except ValueError as exc:
                    where = lines.get(name)
                    if where is not None:
                        raise where.error(f"{name} args: {exc}") from None
                    raise SpecError(f"{name} args: {exc}", file=cfg.source) from None
            entries.append(PluginEntry(instances[name], weight))
        points[point] = entries
    if len(points["queueSort"]) != 1:
        raise SpecError(f"profile {cfg.scheduler_name!r} needs exactly one queueSort plugin", file=cfg.source)
    if not points["bind"]:
        raise SpecError(f"profile {cfg.scheduler_name!r} needs a bind plugin", file=cfg.source)
    # Score plugins that have a pre_score run it even when only listed under score.
    listed = {e.plugin.name for e in points["preScore"]}
    for e in points["score"]:
        if e.plugin.name not in listed and e.plugin.implements("preScore"):
            points["preScore"].append(PluginEntry(e.plugin, 1))
    return Profile(cfg.scheduler_name, points, cfg.percentage_of_nodes_to_score)
