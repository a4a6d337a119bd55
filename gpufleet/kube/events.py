"""Scheduling Events (Scheduled, FailedScheduling) posted as events.k8s.io/v1 Events, off the hot path.

Shape as kube-scheduler's recorder writes them (pkg/scheduler/schedule_one.go: ``Scheduled`` "Successfully
assigned NS/NAME to NODE", ``FailedScheduling`` with the FitError text "0/N nodes are available: ...";
reportingController, reportingInstance, action "Scheduling", regarding the Pod). Like client-go's event
broadcaster the posting happens in a background thread with a bounded queue: a slow API server drops
events, it never slows scheduling.
"""

from __future__ import annotations

import logging
import queue
import threading
import itertools
import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..cluster import Pod
from .leader import micro_time

log = logging.getLogger("gpufleet.kube")

REPORTING_CONTROLLER = "gpufleet.io/scheduler"
MAX_NOTE = 1024  # events.k8s.io/v1 note is at most 1 kB


class EventRecorder:
    def __init__(self, api_client: client.ApiClient, instance: str, max_queued: int = 10000):
        self.api = client.EventsV1Api(api_client)
        self.instance = instance
        self.posted = 0
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(max_queued)
        self._serial = itertools.count()
        self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def record(self, reason: str, pod: Pod, message: str) -> None:
        body = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{pod.name}.{time.time_ns():x}{next(self._serial):x}",
                         "namespace": pod.namespace},
            "eventTime": micro_time(), "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.instance, "action": "Scheduling", "reason": reason,
            "type": "Normal" if reason == "Scheduled" else "Warning", "note": message[:MAX_NOTE],
            "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name,
                          "uid": pod.uid},
        }
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            try:
                self.api.create_namespaced_event(body["metadata"]["namespace"],
                                                 client.EventsV1Event.from_dict(body),
                                                 _preload_content=False, _request_timeout=10).data
                self.posted += 1
            except (ApiException, OSError, ValueError) as exc:
                self.dropped += 1
                log.debug("event for %s not recorded: %s", body["regarding"]["name"], exc)
            except Exception as exc:  # noqa: BLE001 - urllib3 errors: the event is lost, not the scheduler
                self.dropped += 1
                log.debug("event for %s not recorded: %s", body["regarding"]["name"], exc)
