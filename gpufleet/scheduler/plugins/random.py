"""Random: every feasible node gets a uniform random score (the FGD paper's Random baseline).

Uses the framework's seeded generator, so a run is reproducible for a seed.
"""

from __future__ import annotations

from ..framework import MAX_NODE_SCORE, Plugin


class Random(Plugin):
    name = "Random"

    def score(self, state, pod, cluster, nodes):
        return self.handle.rng.integers(0, MAX_NODE_SCORE + 1, size=len(nodes))
