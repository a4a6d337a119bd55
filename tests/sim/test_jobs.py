"""Training-job traces in the simulator: gang replay, queue policies, metrics, CLI outputs."""

from __future__ import annotations

import json

import pytest

from gpufleet.cli import main
from gpufleet.cluster import Node, SpecError
from gpufleet.sim.jobs import JobReplay, JobSpec, read_job_trace, run_jobs


def nodes(count=2, gpus=4):
    return [Node.with_gpus(f"n{i}", 64000, 1 << 20, gpus, "A100") for i in range(count)]


def by_name(result):
    return {j["name"]: j for j in result.per_job}


def test_fifo_runs_jobs_in_submit_order_and_measures_jct_and_delay():
    jobs = [JobSpec("big", 0, 2, 4, 100), JobSpec("small", 10, 1, 1, 10)]
    r = run_jobs(nodes(), jobs, "fifo")
    j = by_name(r)
    assert j["big"]["first_start"] == 0 and j["big"]["finish"] == 100
    assert j["small"]["first_start"] == 100 and j["small"]["jct"] == 100  # waited 90 s, ran 10 s
    assert r.queueing_delay["p50"] == 45 and r.finished == 2 and r.preemptions == 0
    assert r.mean_utilisation == pytest.approx(100 * (8 * 100 + 1 * 10) / 8 / 110)


def test_sjf_starts_the_shortest_waiting_job_first():
    jobs = [JobSpec("running", 0, 2, 4, 100), JobSpec("long", 1, 2, 4, 500), JobSpec("short", 2, 2, 4, 50)]
    j = by_name(run_jobs(nodes(), jobs, "sjf"))
    assert j["short"]["first_start"] == 100 and j["long"]["first_start"] == 150
    j = by_name(run_jobs(nodes(), jobs, "fifo"))
    assert j["long"]["first_start"] == 100 and j["short"]["first_start"] == 600


def test_las_preempts_a_whole_gang_that_has_attained_more_service():
    jobs = [JobSpec("old", 0, 2, 4, 10000), JobSpec("new", 5000, 1, 2, 100)]
    r = run_jobs(nodes(), jobs, "las", las_thresholds=[3600])
    j = by_name(r)
    assert j["new"]["first_start"] == 5000 and j["new"]["finish"] == 5100  # no wait behind the old job
    assert j["old"]["preemptions"] == 1 and r.preemptions == 1
    assert j["old"]["finish"] == pytest.approx(10100)  # resumed: lost only the 100 s it was off
    fifo = by_name(run_jobs(nodes(), jobs, "fifo"))
    assert fifo["new"]["first_start"] == 10000


def test_gangs_are_never_partially_placed_in_a_replay():
    jobs = [JobSpec(f"j{i}", i * 7.0, w, g, 50 + 13 * i) for i, (w, g) in
            enumerate([(3, 2), (2, 4), (4, 1), (1, 3), (2, 2), (3, 1), (2, 3), (1, 4)])]
    for queue in ("fifo", "sjf", "las"):
        sim = JobReplay(nodes(2, 4), jobs, queue, las_thresholds=[200])
        binds: dict[tuple[str, int], list[float]] = {}

        def bound(pod, node, sim=sim, binds=binds):
            job = sim.by_uid[pod.uid]
            binds.setdefault((job.spec.name, job.incarnation), []).append(sim.loop.now)
        sim.scheduler.on_bound.insert(0, bound)
        result = sim.run()
        assert result.finished == len(jobs)
        sim.cluster.check_invariants()
        sizes = {j.name: j.workers for j in jobs}
        for (name, _), times in binds.items():  # every worker of an incarnation bound, at one instant
            assert len(times) == sizes[name] and len(set(times)) == 1


def test_a_job_larger_than_the_cluster_never_runs_and_does_not_stall_the_rest():
    r = run_jobs(nodes(1, 4), [JobSpec("huge", 0, 2, 4, 10), JobSpec("ok", 1, 1, 4, 10)], "fifo")
    assert r.never_ran == 1 and r.finished == 1


def test_trace_readers(tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text("apiVersion: gpufleet.io/v1alpha1\nkind: JobTrace\nspec:\n  jobs:\n"
                 "  - {name: a, submitTime: 5, workers: 2, gpusPerWorker: 4, duration: 60}\n")
    assert read_job_trace(y) == [JobSpec("a", 5, 2, 4, 60)]
    c = tmp_path / "t.csv"
    c.write_text("name,submit_time,workers,gpus_per_worker,duration\na,0,1,2,30\nb,3,x,1,5\n")
    with pytest.raises(SpecError, match=r"t.csv:3: workers: expected an integer"):
        read_job_trace(c)
    y.write_text("apiVersion: gpufleet.io/v1alpha1\nkind: JobTrace\nspec:\n  jobs:\n  - {name: a, workers: 0, duration: 1}\n")
    with pytest.raises(SpecError, match=r"workers: must be >= 1"):
        read_job_trace(y)


def test_cli_writes_table_plot_and_json(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("name,submit_time,workers,gpus_per_worker,duration\n"
                     "a,0,2,4,100\nb,10,1,1,10\nc,20,1,2,30\n")
    out = tmp_path / "out"
    assert main(["sim-jobs", "--jobs", str(trace), "--nodes", "2", "--gpus-per-node", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fifo" in text and "sjf" in text and "las" in text
    assert (out / "jobs.png").stat().st_size > 0
    runs = json.loads((out / "jobs.json").read_text())["runs"]
    assert [r["queue"] for r in runs] == ["fifo", "sjf", "las"] and all(r["finished"] == 3 for r in runs)
    assert main(["sim-jobs", "--jobs", str(trace), "--queue", "lifo"]) == 2
