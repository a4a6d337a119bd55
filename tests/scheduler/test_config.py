"""Profiles from a KubeSchedulerConfiguration YAML: merge rules, weights, args, and clear errors."""

import textwrap

import pytest

from gpufleet.cluster import ClusterState, Node, SpecError
from gpufleet.scheduler import REGISTRY, Handle, load_config
from gpufleet.scheduler.config import DEFAULT_PLUGINS, build_profile


def write(tmp_path, text):
    path = tmp_path / "profile.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_enabled_disabled_star_multipoint_weights_and_args(tmp_path):
    path = write(tmp_path, """
        apiVersion: kubescheduler.config.k8s.io/v1
        kind: KubeSchedulerConfiguration
        percentageOfNodesToScore: 30
        profiles:
        - schedulerName: binpack
          plugins:
            multiPoint:
              enabled:
              - name: GpuBinPacking
                weight: 5
            score:
              disabled:
              - name: "*"
              enabled:
              - {name: NodeResourcesFit, weight: 2}
              - {name: GpuBinPacking, weight: 4}
            filter:
              disabled: [{name: NodeUnschedulable}]
          pluginConfig:
          - name: NodeResourcesFit
            args:
              scoringStrategy:
                type: MostAllocated
                resources: [{name: cpu, weight: 1}, {name: nvidia.com/gpu, weight: 3}]
        - schedulerName: default-scheduler
          percentageOfNodesToScore: 0
          plugins:
            score:
              enabled: [{name: TaintToleration, weight: 7}]
        """)
    binpack, default = load_config(path)
    assert binpack.scheduler_name == "binpack" and binpack.percentage_of_nodes_to_score == 30
    assert binpack.plugins["score"] == [("NodeResourcesFit", 2), ("GpuBinPacking", 4)]
    assert binpack.plugins["filter"] == [(n, 1) for n, _ in DEFAULT_PLUGINS["filter"] if n != "NodeUnschedulable"]
    # a default plugin named again keeps its place and takes the new weight
    assert default.plugins["score"][0] == ("TaintToleration", 7)
    assert [n for n, _ in default.plugins["score"]] == [n for n, _ in DEFAULT_PLUGINS["score"]]
    assert default.percentage_of_nodes_to_score == 0
    profile = build_profile(binpack, Handle(ClusterState([Node("n", 1, 1)])))
    fit = next(e.plugin for e in profile.plugins("score") if e.plugin.name == "NodeResourcesFit")
    assert fit.strategy == "MostAllocated" and fit.resources == [("cpu", 1), ("nvidia.com/gpu", 3)]
    assert [e.weight for e in profile.plugins("score")] == [2, 4]


def test_multipoint_disable_star_then_enable(tmp_path):
    path = write(tmp_path, """
        apiVersion: kubescheduler.config.k8s.io/v1
        kind: KubeSchedulerConfiguration
        profiles:
        - plugins:
            multiPoint:
              disabled: [{name: "*"}]
              enabled: [{name: PrioritySort}, {name: GpuFit}, {name: Random}, {name: DefaultBinder}]
        """)
    (cfg,) = load_config(path)
    assert cfg.plugins["queueSort"] == [("PrioritySort", 1)]
    assert cfg.plugins["filter"] == [("GpuFit", 1)]
    assert cfg.plugins["reserve"] == [("GpuFit", 1)]
    assert cfg.plugins["score"] == [("Random", 1)]
    assert cfg.plugins["bind"] == [("DefaultBinder", 1)]


def test_unknown_plugin_names_file_line_field_and_the_known_plugins(tmp_path):
    path = write(tmp_path, """
        apiVersion: kubescheduler.config.k8s.io/v1
        kind: KubeSchedulerConfiguration
        profiles:
        - plugins:
            score:
              enabled:
              - name: GpuBinPackingg
        """)
    with pytest.raises(SpecError) as info:
        load_config(path)
    known = ", ".join(sorted(REGISTRY))
    assert str(info.value) == (f"{path}:7: profiles[0].plugins.score.enabled[0].name: unknown plugin "
                               f"'GpuBinPackingg' (known plugins: {known})")
    assert "GpuBinPacking" in known and "NodeResourcesFit" in known


def test_bad_plugin_args_name_the_plugin_and_the_field(tmp_path):
    path = write(tmp_path, """
        apiVersion: kubescheduler.config.k8s.io/v1
        kind: KubeSchedulerConfiguration
        profiles:
        - pluginConfig:
          - name: NodeResourcesFit
            args:
              scoringStrategy:
                type: Foo
        """)
    with pytest.raises(SpecError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:6: profiles[0].pluginConfig[0].args: NodeResourcesFit args: scoringStrategy.type: expected "
        "one of LeastAllocated, MostAllocated, RequestedToCapacityRatio, got 'Foo'")


@pytest.mark.parametrize("body, message", [
    ("profiles:\n- plugins:\n    scoring: {}\n", ":5: profiles[0].plugins.scoring: unknown extension point"),
    ("profiles:\n- plugins:\n    bind:\n      enabled: [{name: Random}]\n",
     ":6: profiles[0].plugins.bind.enabled[0].name: plugin 'Random' does not implement the bind extension point"),
    ("percentageOfNodesToScore: many\n", ":3: percentageOfNodesToScore: expected an integer, got 'many'"),
    ("profiles:\n- percentageOfNodesToScore: 150\n", ":4: profiles[0].percentageOfNodesToScore: expected 0..100"),
    ("profiles:\n- schedulerName: a\n- schedulerName: a\n", ": profiles: two profiles share a schedulerName"),
])
def test_other_config_errors(tmp_path, body, message):
    path = write(tmp_path, "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n" + body)
    with pytest.raises(SpecError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}{message}")


def test_wrong_kind(tmp_path):
    path = write(tmp_path, "apiVersion: v1\nkind: Pod\n")
    with pytest.raises(SpecError, match=r"profile.yaml:2: kind: expected kind KubeSchedulerConfiguration, got 'Pod'"):
        load_config(path)
