"""Startup time of `gpufleet train` against torchrun, measured in the same run.

Time from launching the launcher process until every rank has returned from init_process_group (gloo,
CPU): each worker records time.time() right after init_process_group and a barrier; the figure is the
latest rank's time minus the launch time. Runs alternate between launchers, `--repeats` times each; the
medians and their ratio are printed (target: gpufleet <= 1.2 x torchrun).

    .venv/bin/python bench/training_startup.py [--nproc 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = """
import json, os, sys, time
import torch.distributed as dist
dist.init_process_group("gloo")
dist.barrier()
done = time.time()
with open(os.path.join(sys.argv[1], "rank%s.json" % os.environ["RANK"]), "w") as f:
    json.dump({"done": done}, f)
dist.destroy_process_group()
"""


def measure(command: list[str], out: Path, world: int) -> float:
    for p in out.glob("rank*.json"):
        p.unlink()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    start = time.time()
    proc = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    done = [json.loads(p.read_text())["done"] for p in out.glob("rank*.json")]
    if len(done) != world:
        raise SystemExit(f"{command[:4]}: {len(done)} of {world} ranks reported")
    return max(done) - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        script = out / "worker.py"
        script.write_text(WORKER)
        n = args.nproc
        commands = {
            f"torchrun --standalone --nproc-per-node {n}":
                [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
                 str(script), str(out)],
            f"gpufleet train --nproc-per-node {n}":
                [sys.executable, "-m", "gpufleet.cli", "train", "--nproc-per-node", str(n), str(script), str(out)],
        }
        if n % 2 == 0:
            commands[f"gpufleet train --nnodes 2 --nproc-per-node {n // 2}"] = \
                [sys.executable, "-m", "gpufleet.cli", "train", "--nnodes", "2", "--nproc-per-node", str(n // 2),
                 str(script), str(out)]
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.repeats):
            for label, command in commands.items():
                times[label].append(measure(command, out, n))
    base = statistics.median(times[next(iter(commands))])
    print(f"time from launch until all {n} ranks passed init_process_group (gloo, CPU), median of "
          f"{args.repeats}; {os.cpu_count()} CPUs")
    for label, values in times.items():
        med = statistics.median(values)
        print(f"  {label:48s} {med:6.2f} s   ratio to torchrun {med / base:4.2f}   "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
