"""TrainingJob specs and `gpufleet train` bad input: one line naming file and field, exit 2, nothing started."""

from __future__ import annotations

import textwrap

import pytest

from gpufleet.cli import main
from gpufleet.training import launcher
from gpufleet.training.spec import load_training_job


def write(tmp_path, body: str, name: str = "job.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


GOOD = """
apiVersion: gpufleet.io/v1alpha1
kind: TrainingJob
metadata:
  name: demo
spec:
  script: train.py
  args: ["--steps", "5"]
  nnodes: "1:3"
  nprocPerNode: 2
  resources: {cpu: "2", memory: 4Gi, nvidia.com/gpu: 2}
  maxRestarts: 2
  checkpointDir: /tmp/ckpt
  env: {FOO: bar}
"""


@pytest.fixture
def no_launch(monkeypatch):
    started = []
    monkeypatch.setattr(launcher, "launch", lambda spec, **kw: started.append(spec) or 0)
    return started


def test_spec_loads_every_field(tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    job = load_training_job(write(tmp_path, GOOD))
    assert (job.name, job.min_nodes, job.max_nodes, job.nproc_per_node, job.max_restarts) == ("demo", 1, 3, 2, 2)
    assert job.script == (tmp_path / "train.py").resolve() and job.args == ["--steps", "5"]
    assert job.resources.gpus == 2 and job.resources.cpu_milli == 2000 and job.resources.memory_mib == 4096
    assert job.env == {"FOO": "bar"} and job.checkpoint_dir == "/tmp/ckpt"
    assert job.world_size == 6  # here the maximum node count is started
    job.check_runnable()


@pytest.mark.parametrize("change, field, words", [
    ("  script: train.py\n", "spec.command", "missing command"),
    ('  nnodes: "1:3"\n', "spec.nnodes", "at least 1"),
    ('  nnodes: "1:3"\n', "spec.nnodes", "MIN > MAX"),
    ("  nprocPerNode: 2\n", "spec.nprocPerNode", ">= 1"),
    ("  maxRestarts: 2\n", "spec.maxRestarts", ">= 0"),
])
def test_bad_spec_is_one_line_with_file_and_field(tmp_path, capsys, no_launch, change, field, words):
    replacement = {"missing command": "", "at least 1": "  nnodes: 0\n", "MIN > MAX": '  nnodes: "4:2"\n',
                   ">= 1": "  nprocPerNode: 0\n", ">= 0": "  maxRestarts: -1\n"}[words]
    (tmp_path / "train.py").write_text("")
    path = write(tmp_path, GOOD.replace(change, replacement))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and field in err and words in err
    assert not no_launch


def test_missing_script_is_reported_before_anything_starts(tmp_path, capsys, no_launch):
    path = write(tmp_path, GOOD)  # train.py is not there
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.script" in err and "does not exist" in err and "train.py" in err
    assert main(["train", "--nnodes", "2", str(tmp_path / "nope.py")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not no_launch


@pytest.mark.parametrize("nnodes, words", [("0", "at least 1"), ("3:1", "MIN > MAX"), ("x", "MIN:MAX")])
def test_bad_nnodes_flag(tmp_path, capsys, no_launch, nnodes, words):
    script = tmp_path / "s.py"
    script.write_text("")
    assert main(["train", "--nnodes", nnodes, str(script)]) == 2
    err = capsys.readouterr().err
    assert "--nnodes" in err and words in err
    assert not no_launch


def test_script_mode_passes_arguments_through(tmp_path, no_launch):
    script = tmp_path / "s.py"
    script.write_text("")
    assert main(["train", "--nnodes", "2", "--nproc-per-node", "3", str(script), "--lr", "0.1", "-x"]) == 0
    (spec,) = no_launch
    assert spec.command[-4:] == [str(script.resolve()), "--lr", "0.1", "-x"]
    assert spec.nnodes == 2 and spec.nproc_per_node == 3
    assert spec.world_size == 6
