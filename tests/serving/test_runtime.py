"""The HTTP runtime for real on CPU: `gpufleet serve run` in a subprocess (its own process group, killed on
teardown), concurrent requests over HTTP, answers checked against the same model run here."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import numpy as np
import pytest

from gpufleet.cli import main
from gpufleet.serving.runtime.models import ARCHS, build_model
from gpufleet.serving.runtime.router import Rejected
from gpufleet.serving.runtime.server import parse_inputs
from gpufleet.serving.runtime.worker import core_shares

MAX_QUEUE = 16
SPEC = textwrap.dedent(f"""\
    apiVersion: gpufleet.io/v1alpha1
    kind: InferenceService
    metadata: {{name: runtime-test}}
    spec:
      planner: gpulet+int
      gpus: 1
      partitions: [50, 100]
      models:
      - {{name: classifier, arch: mlp, seed: 3, sloMs: 2000, rateRps: 50}}
      - {{name: digits, arch: lenet, sloMs: 3000, rateRps: 20}}
      runtime: {{host: 127.0.0.1, maxQueue: {MAX_QUEUE}, maxBodyBytes: 20000}}
    """)
START_TIMEOUT_S = 150


def _lines(proc) -> "queue.Queue[str]":
    """The server's stdout lines, read by a thread (a bounded wait on a queue, no buffered-pipe stalls)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _stop(proc) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too, whatever state they are in
    except ProcessLookupError:
        pass
    proc.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    spec = tmp_path_factory.mktemp("serve") / "models.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-c", "import sys; from gpufleet.cli import main; sys.exit(main())",
           "serve", "run", str(spec), "--port", "0"]
    log = spec.parent / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    request.addfinalizer(lambda: _stop(proc))
    deadline = time.monotonic() + START_TIMEOUT_S
    lines, url = _lines(proc), None
    while url is None:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = ""
        if not line:
            pytest.fail(f"server did not print its address: {log.read_text()[-2000:]}")
        if line.startswith("listening on "):
            url = line.split()[-1]
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    else:
        pytest.fail("workers did not become healthy")
    return url, proc


def _post_many(url: str, model: str, bodies: list, max_connections: int = 100) -> list[tuple[httpx.Response, float]]:
    async def go():
        limits = httpx.Limits(max_connections=max_connections)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            async def one(body):
                t0 = time.perf_counter()
                r = await client.post(f"/v1/models/{model}/infer", json=body)
                return r, (time.perf_counter() - t0) * 1000.0
            return await asyncio.gather(*(one(b) for b in bodies))
    return asyncio.run(go())


def _metric(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_concurrent_requests_get_the_models_answers_and_honest_latency(server):
    url, _ = server
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((12, 64)).astype(np.float32)
    digits = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    answers = _post_many(url, "classifier", [{"inputs": x.tolist()} for x in xs])
    digit_answers = _post_many(url, "digits", [{"inputs": d.tolist()} for d in digits])  # nested shape accepted

    import torch
    with torch.inference_mode():
        expected = build_model("mlp", seed=3)(torch.from_numpy(xs)).numpy()
        expected_digits = build_model("lenet", seed=0)(torch.from_numpy(digits)).numpy()
    info = httpx.get(f"{url}/v1/models", timeout=10).json()
    planned = {m["model"]: m["batch"] for g in info["plan"]["gpus"] for p in g for m in p["models"]}
    for (r, client_ms), want in zip(answers + digit_answers, list(expected) + list(expected_digits)):
        assert r.status_code == 200, r.text
        body = r.json()
        np.testing.assert_allclose(body["outputs"], want, rtol=1e-4, atol=1e-5)
        # latency accounting: the parts add up to the total, which is inside the SLO (under capacity)
        assert body["queue_ms"] >= 0 and body["compute_ms"] > 0 and body["overhead_ms"] >= 0
        assert body["queue_ms"] + body["compute_ms"] + body["overhead_ms"] == pytest.approx(body["total_ms"], abs=1e-6)
        assert body["total_ms"] <= body["slo_ms"] and body["deadline_met"]
        assert client_ms >= body["total_ms"] - 1.0
        assert 1 <= body["batch_size"] <= planned[body["model"]]
    # concurrent requests were batched together
    assert max(r.json()["batch_size"] for r, _ in answers) > 1
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert _metric(metrics, "gpufleet_serve_requests_total", '{code="200",model="classifier"}') >= 12
    assert _metric(metrics, "gpufleet_serve_batch_size_count", '{model="classifier"}') < 12


def test_bad_requests_get_clear_4xx(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/v1/models/classifier/infer", content=b"x" * 30000)
        assert r.status_code == 413 and "maxBodyBytes" in r.json()["detail"]
        r = client.post("/v1/models/classifier/infer", content=b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
        r = client.post("/v1/models/classifier/infer", json={"inputs": [1, 2, 3]})
        assert r.status_code == 422 and "expects 64 numbers" in r.json()["detail"]
        r = client.post("/v1/models/classifier/infer", json={"x": 1})
        assert r.status_code == 422 and '"inputs"' in r.json()["detail"]
        r = client.post("/v1/models/nope/infer", json={"inputs": [0] * 64})
        assert r.status_code == 404 and "classifier" in r.json()["detail"]
        metrics = client.get("/metrics").text
    assert _metric(metrics, "gpufleet_serve_rejected_total", '{model="classifier",reason="body_too_large"}') >= 1
    assert _metric(metrics, "gpufleet_serve_rejected_total", '{model="classifier",reason="malformed"}') >= 3


def test_overload_gets_503_at_admission_with_bounded_queue_and_stays_healthy(server):
    url, proc = server
    x = np.zeros(64, dtype=np.float32).tolist()
    answers = []
    for _ in range(3):  # bounded: a few bursts far beyond the planned 50 req/s
        answers += _post_many(url, "classifier", [{"inputs": x}] * 200)
        if any(r.status_code == 503 and r.json()["error"] == "queue_full" for r, _ in answers):
            break
    codes = [r.status_code for r, _ in answers]
    assert set(codes) <= {200, 503}
    rejected = [r for r, _ in answers if r.status_code == 503]
    for r in rejected:
        assert int(r.headers["Retry-After"]) >= 1
        body = r.json()
        assert body["error"] in {"queue_full", "slo_unreachable", "slo_expired"}
        if body["error"] == "queue_full":
            assert body["queue_ms"] == 0.0  # answered at admission, never queued
    assert any(r.json()["error"] == "queue_full" for r in rejected)
    served = [r.json() for r, _ in answers if r.status_code == 200]
    assert served and all(b["deadline_met"] for b in served)
    with httpx.Client(base_url=url, timeout=10) as client:
        metrics = client.get("/metrics").text
        assert _metric(metrics, "gpufleet_serve_queue_high_water", '{model="classifier"}') <= MAX_QUEUE
        assert _metric(metrics, "gpufleet_serve_queue_length", '{model="classifier"}') == 0
        up = [line for line in metrics.splitlines() if line.startswith("gpufleet_serve_worker_up{")]
        assert up and all(line.endswith(" 1.0") for line in up)
        health = client.get("/healthz")
        assert health.status_code == 200 and all(health.json()["workers"].values())
        after = client.post("/v1/models/classifier/infer", json={"inputs": x})
        assert after.status_code == 200
    assert proc.poll() is None


# ---------------------------------------------------------------------------- pieces, no processes
def test_parse_inputs_rules():
    assert parse_inputs(b'{"inputs": ' + str([0.5] * 64).encode() + b"}", "mlp").shape == ARCHS["mlp"]
    for body, status, words in [(b"[1,2]", 422, '"inputs"'), (b'{"inputs": [[1], [2, 3]]}', 422, "ragged"),
                                (b'{"inputs": ["a"]}', 422, "numbers"), (b'{"inputs": [1e999]}', 422, "expects"),
                                (b"\xff", 400, "JSON")]:
        with pytest.raises(Rejected) as exc:
            parse_inputs(body, "mlp")
        assert exc.value.status == status and words in exc.value.message
    nan = b'{"inputs": [' + b",".join([b"NaN"] * 64) + b"]}"
    with pytest.raises(Rejected, match="NaN"):
        parse_inputs(nan, "mlp")


def test_core_shares_split_groups_then_partitions():
    assert core_shares([[50, 50]], [0, 1]) == {(0, 0): [0], (0, 1): [1]}
    assert core_shares([[100], [100]], [0, 1, 2, 3]) == {(0, 0): [0, 1], (1, 0): [2, 3]}
    assert core_shares([[20, 80]], [0, 1]) == {(0, 0): [0], (0, 1): [1, 0]}  # at least one core each
    assert core_shares([[100], [50, 50]], [0]) == {(0, 0): [0], (1, 0): [0], (1, 1): [0]}


def test_run_rejects_bad_port(tmp_path, capsys):
    spec = tmp_path / "m.yaml"
    spec.write_text(SPEC)
    assert main(["serve", "run", str(spec), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
