"""List-and-watch of one resource (client-go's Reflector, k8s.io/client-go/tools/cache/reflector.go).

1. LIST; hand the items to the sink as one ``SYNC`` and remember the list's ``metadata.resourceVersion``.
2. WATCH from that resourceVersion (``?watch=true&resourceVersion=RV&allowWatchBookmarks=true``); every
   event's object carries the next RV; BOOKMARK events only move the RV.
3. The watch ends (server timeout, dropped connection): watch again from the last RV.
4. An ERROR event with code 410 (Expired / Gone), or a 410 answer: the RV is too old, go back to 1.
5. Any other error: back off (0.8 s doubling to 30 s, as client-go's reflector backoff manager) and
   retry the step that failed.

Objects stay plain dicts in the API's JSON (the client is called with ``_preload_content=False``):
nothing is deserialised into client models on this hot path.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Callable

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from .cache import SYNC

log = logging.getLogger("gpufleet.kube")

INITIAL_BACKOFF_S = 0.8
MAX_BACKOFF_S = 30.0


class Reflector:
    """Runs list/watch of ``kind`` in a thread and calls ``sink(kind, type, object)`` for each change."""

    def __init__(self, kind: str, list_call: Callable[..., object], sink: Callable[[str, str, object], None],
                 *, watch_timeout_s: int = 300, initial_backoff_s: float = INITIAL_BACKOFF_S,
                 max_backoff_s: float = MAX_BACKOFF_S):
        self.kind = kind
        self.list_call = list_call
        self.sink = sink
        self.watch_timeout_s = watch_timeout_s
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.resource_version: str | None = None
        self.lists = 0  # how many LISTs succeeded (1 + the re-lists)
        self.errors = 0
        self._stop = threading.Event()
        self._response = None
        self._thread = threading.Thread(target=self._run, name=f"reflector-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        resp = self._response
        if resp is not None:
            try:
                resp.shutdown()  # wake the blocked read
            except Exception:  # noqa: BLE001 - already closed
                pass
        self._thread.join(10)

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        backoff = self.initial_backoff_s
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._list()
                self._watch()
                backoff = self.initial_backoff_s
            except _Gone:
                log.info("%s: resourceVersion %s too old (410 Gone); re-listing", self.kind, self.resource_version)
                self.resource_version = None
            except ApiException as exc:
                if exc.status == 410:
                    self.resource_version = None
                    continue
                self._failed(f"HTTP {exc.status} {exc.reason}", backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            except Exception as exc:  # noqa: BLE001 - connection errors, bad JSON: back off and retry
                if self._stop.is_set():
                    break
                self._failed(f"{type(exc).__name__}: {exc}", backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _failed(self, what: str, backoff: float) -> None:
        self.errors += 1
        log.warning("%s list/watch failed (%s); retrying in %.1fs", self.kind, what, backoff)
        self._stop.wait(backoff)

    def _list(self) -> None:
        resp = self.list_call(_preload_content=False, _request_timeout=60)
        data = json.loads(resp.data)
        self.sink(self.kind, SYNC, data.get("items") or [])
        self.resource_version = (data.get("metadata") or {}).get("resourceVersion") or "0"
        self.lists += 1

    def _watch(self) -> None:
        resp = self.list_call(watch=True, resource_version=self.resource_version, allow_watch_bookmarks=True,
                              timeout_seconds=self.watch_timeout_s, _preload_content=False,
                              _request_timeout=(10, self.watch_timeout_s + 30))
        self._response = resp
        try:
            if self._stop.is_set():
                return
            for line in iter_resp_lines(resp):
                if not line:
                    continue
                event = json.loads(line)
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message", "watch error"))
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if etype != "BOOKMARK":
                    self.sink(self.kind, etype, obj)
                if rv:
                    self.resource_version = rv
                if self._stop.is_set():
                    return
        finally:
            self._response = None
            resp.release_conn()


class _Gone(Exception):
    pass
