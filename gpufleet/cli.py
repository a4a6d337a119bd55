"""The ``gpufleet`` command. Each room adds its subcommands from its own ``cli.py`` through ``register``.

Errors a user can fix (a bad spec, a missing file, an unknown plugin) are printed as one line on stderr
with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from . import __version__
from .errors import GpufleetError

# Each room's cli module exposes register(subparsers) and sets args.func on its parsers.
ROOM_CLIS = ("gpufleet.scheduler.cli", "gpufleet.sim.cli", "gpufleet.compiler.cli", "gpufleet.kube.cli",
             "gpufleet.devices.cli", "gpufleet.training.cli", "gpufleet.serving.cli",
             "gpufleet.kernels.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpufleet",
        description="Run deep learning on a fleet of GPUs: schedule pods onto GPU nodes with a "
                    "kube-scheduler-style framework, on an embedded simulated cluster or on Kubernetes.",
        epilog="Run 'gpufleet COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"gpufleet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = sub.add_parser("version", help="print the gpufleet version")
    version.set_defaults(func=lambda args: print(f"gpufleet {__version__}") or 0)
    import importlib
    for module_name in ROOM_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # room not built yet
            raise
        module.register(sub)
    if "schedule" in sub.choices:  # the scheduler may not import devices; the top level wires the view in
        sub.choices["schedule"].set_defaults(load_cluster_nodes=_load_cluster_nodes)
    return parser


def _load_cluster_nodes(path: str):
    """``gpufleet schedule``'s cluster: nodes as the GPU Operator configures them (sim.traces.read_cluster)."""
    from .sim.traces import read_cluster
    return read_cluster(path)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except GpufleetError as exc:
        print(f"gpufleet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpufleet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
