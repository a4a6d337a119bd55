"""gpufleet: run deep learning on a fleet of GPUs.

Rooms (see docs/architecture.md): cluster (the model), scheduler (the kube-scheduler-style framework
and plugins), sim (the embedded discrete-event cluster simulator).
"""

__version__ = "0.1.0"
