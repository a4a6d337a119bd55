"""The training room: distributed data-parallel jobs.

* ``spec``: the Kubernetes-shaped ``TrainingJob`` YAML, validated on load (file, line, field);
* ``launcher``: the agent: starts nnodes x nproc_per_node worker processes with torchrun's environment
  contract, prefixes their logs by rank, stops every worker when one fails and restarts them all (up to
  max_restarts);
* ``worker``: what a training script imports: ``init()`` from the environment, a DistributedSampler
  helper, a rank-0 atomic ``Checkpointer``;
* ``k8s``: the TrainingJob rendered as an Indexed Job, a headless Service and a PodGroup for gpufleet's
  gang scheduler;
* ``cli``: ``gpufleet train``.

Modelled on torch.distributed.elastic: agent, rendezvous and worker are kept apart and the environment
variables are the only interface between them. Importing this package does not import torch.
"""
