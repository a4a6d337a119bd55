"""``gpufleet train``: run a TrainingJob (or a script) on this machine, or render it for Kubernetes.

    gpufleet train job.yaml                                   # the TrainingJob's nodes x processes, here
    gpufleet train --nnodes 2 --nproc-per-node 2 train.py --lr 0.1   # a script and its arguments
    gpufleet train job.yaml --render k8s [--job-uid UID]      # print the Job, Service and PodGroup

Bad input (a missing command, ``nnodes: 0``, ``MIN:MAX`` with MIN > MAX, a script that does not exist)
is one line naming the file and field, exit code 2, and nothing is started.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cluster import SpecError
from ..errors import GpufleetError
from .spec import TrainingJob, load_training_job, parse_nnodes, script_command


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="run a distributed training job here (torchrun's env contract, restarts) or render it "
                      "for Kubernetes",
        description="Start nnodes x nproc-per-node worker processes on this machine with torchrun's "
                    "environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...). When a worker "
                    "fails every worker stops and all restart, up to --max-restarts times. TARGET is a "
                    "TrainingJob YAML or a Python script followed by its arguments.",
        epilog="examples: gpufleet train examples/training/ddp_regression.yaml; "
               "gpufleet train --nnodes 2 --nproc-per-node 2 examples/training/ddp_regression.py --steps 40; "
               "gpufleet train examples/training/ddp_regression.yaml --render k8s")
    p.add_argument("--nnodes", default=None, help="nodes (N or MIN:MAX; here MAX are started); default 1")
    p.add_argument("--nproc-per-node", type=int, default=None, help="worker processes per node (default 1)")
    p.add_argument("--max-restarts", type=int, default=None, help="restarts of all workers after a failure")
    p.add_argument("--checkpoint-dir", default=None, help="given to workers as GPUFLEET_CHECKPOINT_DIR")
    p.add_argument("--run-id", default=None, help="TORCHELASTIC_RUN_ID (default: the job name)")
    p.add_argument("--node-rank", type=int, default=None,
                   help="start only this node's workers (one machine of a multi-machine job; needs "
                        "--master-addr and --master-port)")
    p.add_argument("--master-addr", default=None, help="rank 0's address (default 127.0.0.1)")
    p.add_argument("--master-port", type=int, default=None, help="rank 0's port (default: a free port)")
    p.add_argument("--render", choices=("k8s",), default=None,
                   help="print Kubernetes manifests (Indexed Job, headless Service, PodGroup) instead of running")
    p.add_argument("--job-uid", default=None, help="with --render: the Job's uid for the owner references")
    p.add_argument("target", metavar="TARGET", help="a TrainingJob YAML, or a Python script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    p.set_defaults(func=run_train)
    global _PARSER
    _PARSER = p


_PARSER: argparse.ArgumentParser | None = None


def _is_spec(target: str) -> bool:
    return Path(target).suffix.lower() in (".yaml", ".yml")


def job_from_args(args: argparse.Namespace) -> TrainingJob:
    if _is_spec(args.target):
        if args.args and _PARSER is not None and args.args[0].startswith("-"):
            # Options written after the YAML file (gpufleet train job.yaml --render k8s).
            later = _PARSER.parse_args([*args.args, args.target])
            for key, value in vars(later).items():
                if key not in ("target", "args", "func") and value is not None:
                    setattr(args, key, value)
            args.args = later.args
        if args.args:
            raise GpufleetError(f"unexpected arguments after {args.target}: {' '.join(args.args)} "
                                "(a TrainingJob's arguments go in spec.args)")
        job = load_training_job(args.target)
        if args.nnodes is not None:
            job.min_nodes, job.max_nodes = parse_nnodes(args.nnodes)
    else:
        script = Path(args.target)
        lo, hi = parse_nnodes(args.nnodes if args.nnodes is not None else 1)
        name = "".join(c if c.isalnum() else "-" for c in script.stem.lower()).strip("-") or "job"
        job = TrainingJob(name=name[:52], command=script_command(script.resolve()), args=list(args.args),
                          script=script.resolve(), min_nodes=lo, max_nodes=hi, script_arg=str(script))
    if args.nproc_per_node is not None:
        if args.nproc_per_node < 1:
            raise SpecError(f"must be at least 1, got {args.nproc_per_node}", field="--nproc-per-node")
        job.nproc_per_node = args.nproc_per_node
    if args.max_restarts is not None:
        if args.max_restarts < 0:
            raise SpecError(f"must be >= 0, got {args.max_restarts}", field="--max-restarts")
        job.max_restarts = args.max_restarts
    if args.checkpoint_dir is not None:
        job.checkpoint_dir = args.checkpoint_dir
    return job


def run_train(args: argparse.Namespace) -> int:
    job = job_from_args(args)
    if args.render:
        if not job.image:
            raise SpecError("--render k8s needs the container image (expected spec.image, e.g. "
                            "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime)",
                            file=job.source if _is_spec(args.target) else None, field="spec.image")
        from .k8s import render_yaml

        sys.stdout.write(render_yaml(job, args.job_uid))
        return 0
    job.check_runnable()
    if args.node_rank is not None:
        if not 0 <= args.node_rank < job.nnodes:
            raise SpecError(f"expected 0..{job.nnodes - 1}, got {args.node_rank}", field="--node-rank")
        if job.nnodes > 1 and (args.master_addr is None or args.master_port is None):
            raise SpecError("a single node of a multi-node job needs --master-addr and --master-port",
                            field="--node-rank")
    from .launcher import WorkerSpec, launch

    spec = WorkerSpec.from_job(job, run_id=args.run_id, master_addr=args.master_addr,
                               master_port=args.master_port,
                               node_ranks=[args.node_rank] if args.node_rank is not None else None)
    print(f"gpufleet train: {job.name}: {job.nnodes} node(s) x {job.nproc_per_node} process(es), "
          f"max restarts {job.max_restarts}", file=sys.stderr, flush=True)
    return launch(spec)
