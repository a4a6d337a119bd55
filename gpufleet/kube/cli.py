"""``gpufleet kube run`` (the secondary scheduler on a real cluster) and ``gpufleet kube manifests``.

Bad input (a kubeconfig that does not exist or does not load, no in-cluster service account, a bad
profile) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from ..cluster import GpufleetError
from ..scheduler import BUILTIN_POLICIES, builtin_profile, load_config


class KubeConfigError(GpufleetError):
    """The Kubernetes connection settings cannot be loaded."""


def register(subparsers) -> None:
    kube = subparsers.add_parser("kube", help="run gpufleet as a scheduler on a Kubernetes cluster",
                                 description="Run gpufleet as a secondary scheduler on Kubernetes, or print "
                                             "the manifests that deploy it.")
    sub = kube.add_subparsers(dest="kube_command", metavar="SUBCOMMAND")
    kube.set_defaults(func=lambda args: kube.print_help() or 0)

    run = sub.add_parser("run", help="schedule the pods whose spec.schedulerName matches a profile",
                         description="Watch Nodes and Pods, schedule the pods whose spec.schedulerName names a "
                                     "profile, bind them, record Events; leader election through a Lease.")
    run.add_argument("--kubeconfig", metavar="PATH",
                     help="kubeconfig file (default: in-cluster service account)")
    run.add_argument("--context", help="kubeconfig context (default: the current one)")
    how = run.add_mutually_exclusive_group()
    how.add_argument("--config", metavar="PROFILE.yaml", help="a KubeSchedulerConfiguration file")
    how.add_argument("--policy", choices=BUILTIN_POLICIES, help="a built-in policy (default: binpack)")
    run.add_argument("--scheduler-name", default="gpufleet-scheduler",
                     help="schedulerName served with --policy (default: gpufleet-scheduler)")
    run.add_argument("--identity", default=None,
                     help="leader-election identity (default: $POD_NAME or the hostname, plus a unique id)")
    run.add_argument("--lease-namespace", default="gpufleet-system")
    run.add_argument("--lease-name", default="gpufleet-scheduler")
    run.add_argument("--no-leader-elect", action="store_true", help="schedule without a Lease (one replica only)")
    run.add_argument("--metrics-address", default="0.0.0.0")
    run.add_argument("--metrics-port", type=int, default=10259, help="/metrics and /healthz port (0: any)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)

    man = sub.add_parser("manifests", help="print the Deployment, RBAC and ConfigMap that run gpufleet",
                         description="Print Namespace, ServiceAccount, least-privilege ClusterRole and binding, "
                                     "the ConfigMap with the profile and the Deployment, as YAML.")
    man.add_argument("--config", metavar="PROFILE.yaml", help="profile to ship (default: a binpack profile "
                                                              "with schedulerName gpufleet-scheduler)")
    man.add_argument("--namespace", default="gpufleet-system")
    man.add_argument("--image", default=None, help="container image with gpufleet[kube] installed")
    man.add_argument("--name", default="gpufleet-scheduler")
    man.add_argument("--replicas", type=int, default=2)
    man.set_defaults(func=cmd_manifests)


def client_factory(kubeconfig: str | None, context: str | None = None):
    """A function making ApiClients for the kubeconfig (or the in-cluster account); errors are one line."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if kubeconfig:
            if not os.path.isfile(kubeconfig):
                raise KubeConfigError(f"kubeconfig {kubeconfig}: no such file")
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster config (no --kubeconfig given)"
        raise KubeConfigError(f"{where}: {' '.join(str(exc).split())}") from None
    except KubeConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad YAML, wrong shapes: the loader raises many kinds
        first = (str(exc).strip().splitlines() or [""])[0]
        raise KubeConfigError(f"kubeconfig {kubeconfig}: cannot load it ({type(exc).__name__}: {first})") from None
    return lambda: client.ApiClient(configuration)


def profiles_for(args) -> list:
    if args.config:
        return load_config(args.config)
    profile = builtin_profile(args.policy or "binpack")
    profile.scheduler_name = args.scheduler_name
    return [profile]


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import KubeOptions, KubeScheduler, default_identity

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    profiles = profiles_for(args)
    if any(p.scheduler_name == "default-scheduler" for p in profiles):
        print("gpufleet: warning: a profile is named default-scheduler; gpufleet will compete with the "
              "cluster's own scheduler for those pods", file=sys.stderr)
    make_client = client_factory(args.kubeconfig, args.context)
    identity = args.identity or (f"{os.environ['POD_NAME']}_{default_identity().split('_')[-1]}"
                                 if os.environ.get("POD_NAME") else default_identity())
    options = KubeOptions(identity=identity, leader_elect=not args.no_leader_elect,
                          lease_namespace=args.lease_namespace, lease_name=args.lease_name,
                          metrics_address=args.metrics_address, metrics_port=args.metrics_port, seed=args.seed)
    try:
        sched = KubeScheduler(make_client, profiles, options)
    except OSError as exc:
        raise GpufleetError(f"cannot serve metrics on {args.metrics_address}:{args.metrics_port}: "
                            f"{exc.strerror}") from None
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    sched.start()
    names = ", ".join(p.scheduler_name for p in profiles)
    logging.getLogger("gpufleet.kube").info("gpufleet scheduler %s serving schedulerName %s", identity, names)
    while not done.wait(0.5):
        if sched.lost_leadership.is_set() or not sched._loop_thread.is_alive():
            break
    sched.stop()
    if sched.lost_leadership.is_set():
        print("gpufleet: error: leader election lost", file=sys.stderr)
        return 1
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    from .manifests import DEFAULT_IMAGE, render, render_yaml

    if args.replicas < 1:
        raise GpufleetError(f"--replicas must be at least 1, got {args.replicas}")
    docs = render(args.config, namespace=args.namespace, image=args.image or DEFAULT_IMAGE, name=args.name,
                  replicas=args.replicas)
    sys.stdout.write(render_yaml(docs))
    return 0
