"""The simulator room: a discrete-event loop on a virtual clock driving the Scheduler over a ClusterState.

Modules: events (the loop), traces (openb CSV and YAML readers), fill (the FGD paper's fill experiment),
replay (arrivals and departures in virtual time), metrics (allocation, fragmentation, queueing delay),
experiment (policies x seeds), report (tables, plot, JSON/CSV), synthetic (the demo's openb-like cluster and
workload), cli (``gpufleet sim`` and ``gpufleet demo``). Imports cluster and scheduler, never kube.
"""

from .experiment import Experiment, ExperimentResult, run_experiment
from .fill import FillResult, run_fill, tune_to_demand
from .replay import ReplayResult, run_replay
from .traces import read_nodes, read_pods

__all__ = ["Experiment", "ExperimentResult", "run_experiment", "FillResult", "run_fill", "tune_to_demand",
           "ReplayResult", "run_replay", "read_nodes", "read_pods"]
