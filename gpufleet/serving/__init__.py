"""Multi-model inference on shared GPUs (the serving room).

Latency profiles ``L(batch, partition %)`` per model (:mod:`.profiles`, :mod:`.profiler`), the
co-location interference model (:mod:`.interference`), planners that turn per-model request rates and
SLOs into a plan of GPUs, partitions, batch sizes and duty cycles (:mod:`.planners`: GPULet elastic
partitioning, Nexus squishy bin packing, greedy best-fit, one model per GPU), re-planning with hysteresis
(:mod:`.replan`), a request simulator (:mod:`.simulator`), the paper reproduction (:mod:`.reproduce`) and
an HTTP runtime (:mod:`.runtime`). See docs/serving.md.

Importing this package loads numpy only; torch and FastAPI are imported by the profiler and runtime.
"""

from .errors import ProfileError, ServingError
from .interference import InterferenceModel
from .plan import Allocation, ModelDemand, Partition, Plan
from .profiles import LatencyProfile, ProfileSet, load_profiles, write_profiles

__all__ = ["Allocation", "InterferenceModel", "LatencyProfile", "ModelDemand", "Partition", "Plan",
           "ProfileError", "ProfileSet", "ServingError", "load_profiles", "write_profiles"]
