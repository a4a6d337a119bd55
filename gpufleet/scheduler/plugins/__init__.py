"""The plugin registry: plugin name -> class. One module per plugin, each citing its rule."""

from __future__ import annotations

from ..framework import Plugin
from .affinity import NodeAffinity
from .balanced import NodeResourcesBalancedAllocation
from .bestfit import BestFit
from .binder import DefaultBinder
from .clustering import GpuClustering
from .dotprod import DotProd
from .fgd import FGD
from .fgd_capacity import CapacityFGD
from .fgd_lookahead import LookaheadFGD, LookaheadTieBreak
from .fit import NodeResourcesFit
from .gang import Coscheduling
from .gpu_fit import GpuFit
from .gpu_workload import GpuWorkloadType
from .gpupacking import GpuPacking
from .mig_placement import MigPlacement
from .node_basics import NodeName, NodeUnschedulable
from .packing import GpuBinPacking
from .preemption import PriorityPreemption
from .queuesort import PrioritySort
from .random import Random
from .spread import SelectorSpread
from .taints import TaintToleration

REGISTRY: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    """Add a plugin class to the registry (usable as a decorator); names are unique."""
    if not cls.name:
        raise ValueError(f"plugin class {cls.__name__} has no name")
    if REGISTRY.get(cls.name, cls) is not cls:
        raise ValueError(f"a plugin named {cls.name!r} is already registered")
    REGISTRY[cls.name] = cls
    return cls


for _cls in (PrioritySort, NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodeResourcesFit,
             NodeResourcesBalancedAllocation, SelectorSpread, GpuFit, GpuBinPacking, Random, DefaultBinder,
             DotProd, GpuClustering, GpuPacking, BestFit, FGD, CapacityFGD, LookaheadFGD, LookaheadTieBreak,
             Coscheduling, PriorityPreemption, GpuWorkloadType, MigPlacement):
    register(_cls)

__all__ = ["REGISTRY", "register"]
