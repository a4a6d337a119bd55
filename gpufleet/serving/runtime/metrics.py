"""Prometheus metrics of the serving runtime (``GET /metrics``, text exposition format).

| metric | type | labels | meaning |
|---|---|---|---|
| ``gpufleet_serve_requests_total`` | counter | model, code | answered requests by HTTP status |
| ``gpufleet_serve_rejected_total`` | counter | model, reason | requests answered without a result (queue_full, slo_unreachable, slo_expired, body_too_large, malformed, ...) |
| ``gpufleet_serve_request_latency_seconds`` | histogram | model | arrival to answer, served requests |
| ``gpufleet_serve_queue_seconds`` | histogram | model | arrival to dispatch, served requests |
| ``gpufleet_serve_compute_seconds`` | histogram | model | one batch's forward pass in the worker |
| ``gpufleet_serve_batch_size`` | histogram | model | requests per dispatched batch |
| ``gpufleet_serve_slo_violations_total`` | counter | model | served, but after the deadline |
| ``gpufleet_serve_queue_length`` | gauge | model | requests queued now |
| ``gpufleet_serve_queue_high_water`` | gauge | model | the most requests ever queued at once |
| ``gpufleet_serve_queue_limit`` | gauge | | ``spec.runtime.maxQueue`` |
| ``gpufleet_serve_worker_up`` | gauge | partition | 1 while the partition's worker process serves |

Each server has its own registry (no process-global state).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class RuntimeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, models: list[str], queue_limit: int = 0):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("gpufleet_serve_requests", "Answered requests by HTTP status", ["model", "code"], registry=r)
        self.rejected = Counter("gpufleet_serve_rejected", "Requests answered without a result", ["model", "reason"], registry=r)
        self.latency = Histogram("gpufleet_serve_request_latency_seconds", "Arrival to answer of served requests",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_time = Histogram("gpufleet_serve_queue_seconds", "Arrival to dispatch of served requests",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram("gpufleet_serve_compute_seconds", "Forward pass of one batch in the worker",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("gpufleet_serve_batch_size", "Requests per dispatched batch", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.violations = Counter("gpufleet_serve_slo_violations", "Served after the deadline", ["model"], registry=r)
        self.queue = Gauge("gpufleet_serve_queue_length", "Requests queued now", ["model"], registry=r)
        self.high_water = Gauge("gpufleet_serve_queue_high_water", "Most requests queued at once", ["model"], registry=r)
        self.limit = Gauge("gpufleet_serve_queue_limit", "Queue limit per model (spec.runtime.maxQueue)", registry=r)
        self.up = Gauge("gpufleet_serve_worker_up", "1 while the partition worker serves", ["partition"], registry=r)
        self.limit.set(queue_limit)
        self._high = {}
        for m in models:
            self.queue.labels(m).set(0)
            self.high_water.labels(m).set(0)
            self._high[m] = 0

    def queue_length(self, model: str, n: int) -> None:
        self.queue.labels(model).set(n)
        if n > self._high.get(model, 0):
            self._high[model] = n
            self.high_water.labels(model).set(n)

    def high_water_mark(self, model: str) -> int:
        return self._high.get(model, 0)

    def batch(self, model: str, n: int, compute_ms: float) -> None:
        self.batch_size.labels(model).observe(n)
        self.compute.labels(model).observe(compute_ms / 1000.0)

    def answered(self, model: str, code: int, result: dict | None = None, reason: str | None = None) -> None:
        self.requests.labels(model, str(code)).inc()
        if reason:
            self.rejected.labels(model, reason).inc()
        if result is not None:
            self.latency.labels(model).observe(result["total_ms"] / 1000.0)
            self.queue_time.labels(model).observe(result["queue_ms"] / 1000.0)
            if not result["deadline_met"]:
                self.violations.labels(model).inc()

    def worker_up(self, partition: str, up: bool) -> None:
        self.up.labels(partition).set(1 if up else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
