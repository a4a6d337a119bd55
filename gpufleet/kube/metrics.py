"""/metrics (Prometheus text format, prometheus-client) and /healthz for the Kubernetes scheduler.

Metric names follow kube-scheduler's (pkg/scheduler/metrics/metrics.go) under the ``gpufleet_`` prefix:

* ``gpufleet_schedule_attempts_total{result, profile}``: attempts by result (scheduled, unschedulable,
  error), as ``scheduler_schedule_attempts_total``;
* ``gpufleet_scheduling_attempt_duration_seconds{result, profile}``: a histogram of one attempt's
  latency (exponential buckets from 1 ms), as ``scheduler_scheduling_attempt_duration_seconds``;
* ``gpufleet_pending_pods{queue}``: pods in the active, backoff and unschedulable sub-queues, as
  ``scheduler_pending_pods``;
* ``gpufleet_leader``: 1 while this replica holds the Lease.

Each scheduler has its own registry (two replicas can live in one test process). /healthz answers 200
"ok" while the scheduling loop is alive and 500 otherwise.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))  # 1 ms .. 16 s, as kube's ExponentialBuckets


class SchedulerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter("gpufleet_schedule_attempts", "Scheduling attempts by result.",
                                ["result", "profile"], registry=self.registry)
        self.attempt_duration = Histogram("gpufleet_scheduling_attempt_duration_seconds",
                                          "Latency of one scheduling attempt (cycle and bind).",
                                          ["result", "profile"], buckets=LATENCY_BUCKETS,
                                          registry=self.registry)
        self.pending = Gauge("gpufleet_pending_pods", "Pending pods by sub-queue.", ["queue"],
                             registry=self.registry)
        self.leader = Gauge("gpufleet_leader", "1 while this replica holds the leader Lease.",
                            registry=self.registry)

    def observe(self, result: str, profile: str, seconds: float) -> None:
        self.attempts.labels(result, profile).inc()
        self.attempt_duration.labels(result, profile).observe(seconds)

    def set_pending(self, counts: dict[str, int]) -> None:
        for name, count in counts.items():
            self.pending.labels(name).set(count)


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on (address, port); port 0 picks a free one (``port``)."""

    def __init__(self, metrics: SchedulerMetrics, healthy: Callable[[], bool], address: str = "0.0.0.0",
                 port: int = 10259):
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    body, ctype, code = generate_latest(registry), CONTENT_TYPE_LATEST, 200
                elif path in ("/healthz", "/livez", "/readyz"):
                    ok = healthy()
                    body, ctype, code = (b"ok" if ok else b"scheduling loop not running"), "text/plain", \
                        200 if ok else 500
                else:
                    body, ctype, code = b"not found", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((address, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="metrics-server", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
