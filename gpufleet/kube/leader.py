"""Leader election on a coordination.k8s.io/v1 Lease, so that of several replicas exactly one schedules.

The algorithm is client-go's (k8s.io/client-go/tools/leaderelection/leaderelection.go tryAcquireOrRenew,
resourcelock/leaselock.go), with kube-scheduler's defaults (leaseDuration 15 s, renewDeadline 10 s,
retryPeriod 2 s):

* GET the Lease; when it does not exist, CREATE it holding it (409 AlreadyExists: someone was faster);
* a Lease held by another identity is taken only when it has expired: ``leaseDurationSeconds`` have
  passed on *our* clock since we last saw its record change (observedTime; no trust in other clocks);
* taking or renewing is an UPDATE carrying the resourceVersion we read: the API server answers 409
  Conflict when someone wrote in between, so two replicas never both win;
* the leader renews every retryPeriod; when it has not renewed for renewDeadline it stops leading
  (``is_leader`` turns false before the lease can expire for the others);
* on a clean stop the leader releases the Lease (empty holder, leaseDurationSeconds 1) so a standby takes
  over at once (client-go ReleaseOnCancel).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from typing import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("gpufleet.kube")


def micro_time(t: float | None = None) -> str:
    """metav1.MicroTime in RFC 3339 with microseconds."""
    when = dt.datetime.fromtimestamp(time.time() if t is None else t, tz=dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    def __init__(self, api_client: client.ApiClient, namespace: str, name: str, identity: str, *,
                 lease_duration_s: float = 15.0, renew_deadline_s: float = 10.0, retry_period_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_started: Callable[[], None] | None = None, on_stopped: Callable[[], None] | None = None):
        if not lease_duration_s > renew_deadline_s > retry_period_s > 0:
            raise ValueError("need leaseDuration > renewDeadline > retryPeriod > 0")
        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_period_s = retry_period_s
        self.clock = clock
        self.on_started, self.on_stopped = on_started, on_stopped
        self._leading = False
        self._last_renew = -1e18
        self._observed: tuple | None = None
        self._observed_time = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self.transitions_seen = 0

    # ------------------------------------------------------------------ state
    @property
    def is_leader(self) -> bool:
        return self._leading and self.clock() - self._last_renew < self.renew_deadline_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        self._thread.join(10)
        if release and self._leading:
            self._release()
        self._set_leading(False)

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        while not self._stop.is_set():
            ok = False
            try:
                ok = self.try_acquire_or_renew()
            except Exception as exc:  # noqa: BLE001 - API unreachable: we simply did not renew
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            now = self.clock()
            if ok:
                self._last_renew = now
                self._set_leading(True)
            elif self._leading and now - self._last_renew >= self.renew_deadline_s:
                log.error("lease %s/%s: failed to renew within %.1fs; leadership lost",
                          self.namespace, self.name, self.renew_deadline_s)
                self._set_leading(False)
            self._stop.wait(self.retry_period_s)

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        log.info("%s %s leadership of lease %s/%s", self.identity, "acquired" if leading else "gave up",
                 self.namespace, self.name)
        callback = self.on_started if leading else self.on_stopped
        if callback is not None:
            callback()

    # ------------------------------------------------------------------ one attempt
    def _read(self) -> dict | None:
        try:
            resp = self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False,
                                                  _request_timeout=self.retry_period_s * 2 + 1)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(resp.data)

    def try_acquire_or_renew(self) -> bool:
        now_wall = time.time()
        lease = self._read()
        spec_new = {"holderIdentity": self.identity, "leaseDurationSeconds": int(round(self.lease_duration_s)),
                    "acquireTime": micro_time(now_wall), "renewTime": micro_time(now_wall),
                    "leaseTransitions": 0}
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec_new}
            try:
                self.api.create_namespaced_lease(self.namespace, client.V1Lease.from_dict(body),
                                                 _preload_content=False).data
            except ApiException as exc:
                if exc.status == 409:
                    return False
                raise
            self._observe(spec_new)
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration_s)
        if holder and holder != self.identity and self._observed_time + duration > self.clock():
            return False  # held by someone else and not expired
        if holder == self.identity:
            spec_new["acquireTime"] = spec.get("acquireTime") or spec_new["acquireTime"]
            spec_new["leaseTransitions"] = spec.get("leaseTransitions") or 0
        else:
            spec_new["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = spec_new
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, client.V1Lease.from_dict(lease),
                                              _preload_content=False).data
        except ApiException as exc:
            if exc.status == 409:  # someone wrote since our read: not ours this round
                return False
            raise
        self._observe(spec_new)
        return True

    def _observe(self, spec: dict) -> None:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed = record
            self._observed_time = self.clock()

    def _release(self) -> None:
        try:
            lease = self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = micro_time()
            lease["spec"].update({"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": now,
                                  "acquireTime": now})
            lease["spec"] = {k: v for k, v in lease["spec"].items() if v is not None}
            self.api.replace_namespaced_lease(self.name, self.namespace, client.V1Lease.from_dict(lease),
                                              _preload_content=False).data
        except Exception as exc:  # noqa: BLE001 - the lease will simply expire
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
