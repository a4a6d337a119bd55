"""Real DDP runs on CPU with gloo through `gpufleet train`: a 2 x 2 job, and a job that loses a worker.

Each run has a timeout, and its whole process group is killed when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "training" / "ddp_regression.py"
GPUFLEET = [sys.executable, "-m", "gpufleet.cli"]


def start(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([*GPUFLEET, "train", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def finish(proc, timeout):
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def reports(report_dir: Path, name: str) -> dict[int, dict]:
    return {json.loads(p.read_text())["rank"]: json.loads(p.read_text()) for p in report_dir.glob(f"{name}-rank*.json")}


def test_two_nodes_by_two_processes_train_to_identical_parameters(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(textwrap.dedent(f"""
        apiVersion: gpufleet.io/v1alpha1
        kind: TrainingJob
        metadata: {{name: ddp-2x2}}
        spec:
          script: {EXAMPLE}
          args: [--steps, "24", --report-dir, {tmp_path / "r"}]
          nnodes: 2
          nprocPerNode: 2
        """))
    code, out = finish(start([str(job)]), timeout=110)
    assert code == 0, out
    final = reports(tmp_path / "r", "final")
    assert sorted(final) == [0, 1, 2, 3]
    assert len({r["digest"] for r in final.values()}) == 1  # every rank holds the same parameters
    assert all(r["final_loss"] < r["first_loss"] for r in final.values())
    assert all(r["step"] == 24 for r in final.values())
    assert "[rank0]: done at step 24" in out


def test_killed_worker_restarts_the_job_which_resumes_from_its_checkpoint(tmp_path):
    report, ckpt = tmp_path / "r", tmp_path / "ckpt"
    proc = start(["--nnodes", "2", "--nproc-per-node", "1", "--max-restarts", "2", "--checkpoint-dir", str(ckpt),
                  str(EXAMPLE), "--steps", "30", "--save-every", "5", "--step-sleep", "0.1",
                  "--report-dir", str(report)])
    try:
        deadline = time.monotonic() + 90
        victim = None
        while time.monotonic() < deadline and proc.poll() is None:
            progress = report / "progress-rank1.json"
            if progress.exists():
                try:
                    state = json.loads(progress.read_text())
                except ValueError:
                    state = {}
                if state.get("restart") == 0 and state.get("step", 0) >= 12:
                    victim = state
                    os.kill(state["pid"], signal.SIGKILL)  # rank 1 dies mid-training
                    break
            time.sleep(0.05)
        assert victim is not None, "the worker never reached step 12"
        code, out = finish(proc, timeout=100)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert code == 0, out
    assert "restarting all (1 of 2)" in out
    final = reports(report, "final")
    assert sorted(final) == [0, 1]
    for r in final.values():
        assert r["restart"] == 1  # both workers were restarted, not only the one that died
        assert 10 <= r["start_step"] <= victim["step"]  # resumed from a checkpoint: the count continues
        assert r["step"] == 30
    assert final[0]["digest"] == final[1]["digest"]
    assert final[0]["final_loss"] < final[0]["first_loss"]
    saved = sorted(p.name for p in ckpt.iterdir())
    assert saved == ["ckpt-00000025.pt", "ckpt-00000030.pt"]  # the last two kept, no temporary files
