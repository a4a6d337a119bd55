"""The HTTP inference API (FastAPI on uvicorn) in front of the :class:`~.router.Router`.

    POST /v1/models/{model}/infer   {"inputs": [...]}  one request: the model's input as a flat list of
                                    numbers or nested lists of the model's input shape
        200 {"model", "outputs", "batch_size", "partition", "queue_ms", "compute_ms", "overhead_ms",
             "total_ms", "slo_ms", "deadline_met"}     total_ms = queue_ms + compute_ms + overhead_ms
        400 body is not JSON or Content-Length is not a number      404 unknown model
        413 body larger than spec.runtime.maxBodyBytes (checked on Content-Length before reading, and while
            reading)                                                 422 JSON of the wrong shape or type
        503 + Retry-After: queue full, SLO unreachable, dropped in the queue, worker down
        504 no answer in max(10 s, 5 x SLO)
    GET  /v1/models                 the models, their SLOs, input shapes and the plan
    GET  /healthz                   200 {"status": "ok", "workers": {...}} when every worker is up, else 503
    GET  /metrics                   Prometheus text format (:mod:`.metrics`)

Every error body is ``{"error": reason, "detail": a sentence saying what was expected}``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..errors import ServingError
from .models import ARCHS, input_size
from .router import Rejected, Router


def _error(status: int, reason: str, detail: str, retry_after: int | None = None, **extra):
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": reason, "detail": detail, **extra}, status_code=status, headers=headers)


def parse_inputs(body: bytes, arch: str) -> np.ndarray:
    """The request's input as a float32 array of the arch's shape; Rejected(400/422) with a clear message."""
    shape, size = ARCHS[arch], input_size(arch)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, "malformed", f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "inputs" not in data:
        raise Rejected(422, "malformed", 'expected a JSON object {"inputs": [...]} with the model input')
    try:
        array = np.asarray(data["inputs"], dtype=np.float32)
    except (ValueError, TypeError):
        raise Rejected(422, "malformed", f"inputs: expected a list of {size} numbers or nested lists of shape "
                       f"{list(shape)} (got ragged lists or non-numbers)") from None
    if array.size != size or array.dtype.kind != "f":
        raise Rejected(422, "malformed", f"inputs: arch {arch} expects {size} numbers (shape {list(shape)}), "
                       f"got {array.size}")
    if not np.isfinite(array).all():
        raise Rejected(422, "malformed", "inputs: NaN or infinite values are not accepted")
    return array.reshape(shape)


def create_app(router: Router):
    @asynccontextmanager
    async def lifespan(app):
        await router.start()
        try:
            yield
        finally:
            await router.stop()

    app = FastAPI(title=f"gpufleet serve: {router.service.name}", lifespan=lifespan)
    max_body = router.service.runtime.max_body_bytes

    @app.post("/v1/models/{model}/infer")
    async def infer(model: str, request: Request):
        arrival = time.perf_counter()
        spec = router.specs.get(model)
        if spec is None:
            return _error(404, "unknown_model", f"no model {model!r}; this server has {', '.join(router.specs)}")
        try:
            length = request.headers.get("content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    raise Rejected(400, "malformed", f"Content-Length must be an integer, got {length!r}") from None
                if declared > max_body:
                    raise Rejected(413, "body_too_large", f"the body has {declared} bytes, more than the limit of "
                                   f"{max_body} (spec.runtime.maxBodyBytes)")
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body:
                    raise Rejected(413, "body_too_large", f"the body is larger than the limit of {max_body} bytes "
                                   "(spec.runtime.maxBodyBytes)")
            inputs = parse_inputs(bytes(body), spec.arch)
            result = await router.submit(model, inputs, arrival)
        except Rejected as rej:
            router.metrics.answered(model, rej.status, reason=rej.reason)
            return _error(rej.status, rej.reason, rej.message, rej.retry_after, queue_ms=round(rej.queue_ms, 3))
        router.metrics.answered(model, 200, result)
        return JSONResponse({"model": model, "slo_ms": spec.slo_ms, **result})

    @app.get("/v1/models")
    async def models():
        return {"service": router.service.name, "planner": router.plan.planner, "device": router.device,
                "max_queue": router.max_queue, "max_body_bytes": max_body,
                "models": [{"name": m.name, "arch": m.arch, "seed": m.seed, "slo_ms": m.slo_ms,
                            "input_shape": list(ARCHS[m.arch]),
                            "partitions": [p.id for p, _ in router.by_model[m.name]]} for m in router.service.models],
                "plan": router.plan.to_dict()}

    @app.get("/healthz")
    async def healthz():
        health = router.health()
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    @app.get("/metrics")
    async def metrics():
        router.health()  # refresh worker_up
        return Response(router.metrics.render(), media_type=router.metrics.content_type)

    return app


def build_router(service, planner: str | None = None, device: str = "cpu", max_queue: int | None = None) -> Router:
    """Plan the spec's rates (each model at least 1 req/s, so that every model gets a partition)."""
    from ..plan import ModelDemand
    from ..planners import make_plan

    profiles = service.profiles()
    demands = [ModelDemand(m.name, max(m.rate_rps, 1.0), m.slo_ms) for m in service.models]
    plan = make_plan(planner or service.planner, demands, profiles, max_gpus=service.gpus,
                     interference=service.interference, partitions=service.partitions)
    if not plan.feasible:
        short = ", ".join(f"{m} {r:.0f} req/s" for m, r in plan.unserved_rps.items() if r > 1e-6)
        print(f"warning: the plan does not place all of the spec's rate ({short} unplaced); serving what it places",
              file=sys.stderr)
    return Router(service, plan, profiles, device=device, max_queue=max_queue)


def serve(service, host: str | None = None, port: int | None = None, planner: str | None = None,
          device: str = "cpu", max_queue: int | None = None, log_level: str = "warning") -> int:
    """Bind, print ``listening on http://HOST:PORT`` (port 0 picks a free one) and serve until SIGINT/SIGTERM."""
    import uvicorn

    host = host or service.runtime.host
    port = service.runtime.port if port is None else port
    router = build_router(service, planner, device, max_queue)
    app = create_app(router)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServingError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}, reachable from other machines; the API has no authentication",
              file=sys.stderr)
    bound = sock.getsockname()[1]
    print(f"gpufleet serve: {service.name}: {router.plan.planner} plan, {len(router.partitions)} worker(s) on "
          f"{device}: {', '.join(p.id + ' ' + '+'.join(p.slots) for p in router.partitions)}", flush=True)
    print(f"listening on http://{host}:{bound}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return 0 if server.started else 1
