"""SelectorSpread with zones against the formula of shared seed 002 (kube selector_spread.go
NormalizeScore): node = 100*(maxNode-count)/maxNode, zone = 100*(maxZone-zoneCount)/maxZone,
final = node*(1/3) + zone*(2/3) for nodes in a zone, node alone otherwise, truncated."""

from gpufleet.cluster import ClusterState, Node, OwnerReference, Pod, ZONE_LABEL
from gpufleet.scheduler.plugins.spread import SelectorSpread

from .helpers import plugin_scores

OWNER = OwnerReference("ReplicaSet", "web-rs")


def web(name, namespace="default"):
    return Pod(name, labels={"app": "web"}, owner=OWNER, namespace=namespace)


def zoned_cluster(counts_by_node, zones):
    nodes = [Node(f"n{i}", 64000, 64000, labels={ZONE_LABEL: z} if z else {}) for i, z in enumerate(zones)]
    c = ClusterState(nodes)
    for i, count in enumerate(counts_by_node):
        for k in range(count):
            c.assign(web(f"w{i}-{k}"), i)
    return c


def test_spread_with_zones_and_a_node_without_zone():
    # counts: n0 (zone a) 2, n1 (zone a) 1, n2 (zone b) 0, n3 (no zone) 1; maxNode = 2
    # node scores: n0 100*(2-2)/2 = 0, n1 50, n2 100, n3 50
    # zone counts over zoned nodes: a = 3, b = 0; maxZone = 3; zone scores a 0, b 100
    # n0: 0/3 + 0*2/3 = 0; n1: 50/3 + 0 = 16.67 -> 16; n2: 100/3 + 200/3 = 100; n3 (no zone): 50
    c = zoned_cluster([2, 1, 0, 1], ["a", "a", "b", ""])
    assert plugin_scores(SelectorSpread(), c, web("new")) == [0, 16, 100, 50]


def test_spread_zone_weight_outweighs_node_counts():
    # counts: n0 (a) 0, n1 (a) 3, n2 (b) 1, n3 (b) 1; maxNode 3
    # node: n0 100, n1 0, n2 100*(3-1)/3 = 66.67, n3 66.67
    # zones: a 3, b 2; maxZone 3: zone a 0, zone b 100*(3-2)/3 = 33.33
    # n0: 100/3 + 0 = 33.33 -> 33; n1: 0; n2: 66.67/3 + 33.33*2/3 = 22.22 + 22.22 = 44.44 -> 44; n3 44
    c = zoned_cluster([0, 3, 1, 1], ["a", "a", "b", "b"])
    assert plugin_scores(SelectorSpread(), c, web("new")) == [33, 0, 44, 44]


def test_spread_without_zones_uses_node_counts_only_and_other_namespaces_do_not_count():
    # counts n0 1, n1 0, n2 4 (n1's pods are in another namespace); maxNode 4
    # n0 100*3/4 = 75, n1 100, n2 0
    c = zoned_cluster([1, 0, 4], ["", "", ""])
    for k in range(5):
        c.assign(web(f"other-{k}", namespace="other"), 1)
    assert plugin_scores(SelectorSpread(), c, web("new")) == [75, 100, 0]


def test_spread_only_counts_scored_nodes():
    # Scoring only n1 and n2 of [2, 1, 0] (all in zone a): maxNode 1 -> n1 0, n2 100; zone a count 1 -> 0 each
    # n1: 0; n2: 100/3 = 33
    c = zoned_cluster([2, 1, 0], ["a", "a", "a"])
    assert plugin_scores(SelectorSpread(), c, web("new"), nodes=[1, 2]) == [0, 33]


def test_pods_without_owner_or_labels_are_not_spread():
    c = zoned_cluster([1, 0], ["a", "b"])
    assert plugin_scores(SelectorSpread(), c, Pod("loose", labels={"app": "web"})) is None
    assert plugin_scores(SelectorSpread(), c, Pod("bare", owner=OWNER)) is None
