"""The Kubernetes backend: informers -> ClusterState, binder, events, leader election, metrics, manifests.

It drives the scheduler room over a ClusterState kept in step with the API server; the scheduler and its
plugins never import this room (DESIGN.md: data flows one way).
"""

from .runner import KubeOptions, KubeScheduler

__all__ = ["KubeOptions", "KubeScheduler"]
