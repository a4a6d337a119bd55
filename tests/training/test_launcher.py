"""The launcher's contract with plain Python workers (no torch: fast): env, log prefixes, restarts, exit codes."""

from __future__ import annotations

import io
import json
import sys
import textwrap

from gpufleet.training.launcher import Agent, WorkerSpec

DUMP_ENV = textwrap.dedent("""
    import json, os, sys
    keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "MASTER_ADDR",
            "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID",
            "GPUFLEET_CHECKPOINT_DIR", "FROM_SPEC"]
    env = {k: os.environ.get(k) for k in keys}
    out = sys.argv[1]
    with open(os.path.join(out, "env-%s-%s.json" % (env["RANK"], env["TORCHELASTIC_RESTART_COUNT"])), "w") as f:
        json.dump(env, f)
    print("hello from", env["RANK"])
    print("to stderr", file=sys.stderr)
    fail = sys.argv[2] if len(sys.argv) > 2 else ""
    if fail == "always" and env["RANK"] == "1":
        sys.exit(3)
    if fail == "first" and env["RANK"] == "1" and env["TORCHELASTIC_RESTART_COUNT"] == "0":
        sys.exit(5)
    if fail == "hang" and env["RANK"] != "1":
        import time; time.sleep(60)
    if fail == "hang" and env["RANK"] == "1":
        sys.exit(7)
""")


def run(tmp_path, *worker_args, nnodes=2, nproc=2, max_restarts=0):
    script = tmp_path / "w.py"
    script.write_text(DUMP_ENV)
    out, err = io.StringIO(), io.StringIO()
    spec = WorkerSpec([sys.executable, str(script), str(tmp_path), *worker_args], nnodes=nnodes,
                      nproc_per_node=nproc, max_restarts=max_restarts, run_id="job-1", env={"FROM_SPEC": "yes"},
                      checkpoint_dir="/ckpt", stop_grace_seconds=2)
    code = Agent(spec, stdout=out, stderr=err, log=lambda m: err.write(m + "\n")).run()
    envs = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("env-*.json")}
    return code, out.getvalue(), err.getvalue(), envs


def test_every_worker_gets_torchruns_environment(tmp_path):
    code, out, err, envs = run(tmp_path)
    assert code == 0
    ranks = {}
    for env in envs.values():
        rank = int(env["RANK"])
        ranks[rank] = env
        assert rank == int(env["NODE_RANK"]) * 2 + int(env["LOCAL_RANK"])  # node_rank * nproc + local_rank
        assert env["GROUP_RANK"] == env["NODE_RANK"]
        assert (env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"]) == ("4", "2")
        assert (env["TORCHELASTIC_RESTART_COUNT"], env["TORCHELASTIC_MAX_RESTARTS"]) == ("0", "0")
        assert env["TORCHELASTIC_RUN_ID"] == "job-1" and env["FROM_SPEC"] == "yes"
        assert env["GPUFLEET_CHECKPOINT_DIR"] == "/ckpt" and env["MASTER_ADDR"] == "127.0.0.1"
    assert sorted(ranks) == [0, 1, 2, 3]
    assert len({e["MASTER_PORT"] for e in envs.values()}) == 1
    for r in range(4):  # each line prefixed with its rank, stdout and stderr kept apart
        assert f"[rank{r}]: hello from {r}" in out
        assert f"[rank{r}]: to stderr" in err


def test_a_failure_restarts_every_worker_and_the_job_then_succeeds(tmp_path):
    code, out, err, envs = run(tmp_path, "first", max_restarts=2)
    assert code == 0
    # every rank ran again as attempt 1 (the others may have been stopped before writing in attempt 0)
    assert {f"env-{r}-1.json" for r in range(4)} | {"env-1-0.json"} <= set(envs)
    assert all(e["TORCHELASTIC_MAX_RESTARTS"] == "2" for e in envs.values())
    assert "restarting all (1 of 2)" in err


def test_exit_code_reports_the_failure_when_restarts_run_out(tmp_path):
    code, out, err, envs = run(tmp_path, "always", max_restarts=1)
    assert code == 3
    assert "restarts exhausted (1 of 1)" in err
    assert {e["TORCHELASTIC_RESTART_COUNT"] for e in envs.values()} == {"0", "1"}


def test_a_failed_worker_stops_the_others(tmp_path):
    code, out, err, envs = run(tmp_path, "hang", nnodes=1, nproc=3)  # ranks 0 and 2 would sleep 60 s
    assert code == 7
