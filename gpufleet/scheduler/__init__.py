"""The scheduler room: the kube-scheduler-style framework, queue, profiles and plugins.

It sees pods and a ClusterState only; it never imports sim or kube.
"""

from .config import BUILTIN_POLICIES, ProfileConfig, builtin_profile, load_config
from .framework import (MAX_NODE_SCORE, Code, CycleState, Diagnosis, FilterResult, FitError, Framework, Handle,
                        Plugin, Status)
from .plugins import REGISTRY, register
from .queue import SchedulingQueue
from .scheduler import Outcome, Scheduler

__all__ = ["BUILTIN_POLICIES", "ProfileConfig", "builtin_profile", "load_config", "MAX_NODE_SCORE", "Code",
           "CycleState", "Diagnosis", "FilterResult", "FitError", "Framework", "Handle", "Plugin", "Status",
           "REGISTRY", "register", "SchedulingQueue", "Outcome", "Scheduler"]
