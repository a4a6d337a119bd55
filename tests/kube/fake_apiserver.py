"""A small in-process Kubernetes API server for the tests: the REST and watch wire protocol, nothing more.

No kube-apiserver can run on the test machines, so the real ``kubernetes`` client talks to this threaded
``http.server`` on 127.0.0.1. It follows the documented API behaviour for the resources gpufleet uses
(https://kubernetes.io/docs/reference/using-api/api-concepts/):

* every write bumps one cluster-wide revision (etcd's); an object's ``metadata.resourceVersion`` is the
  revision of its last write; a list answers ``{kind: XList, metadata: {resourceVersion}, items}``;
* ``?watch=true&resourceVersion=RV`` streams every change after RV as chunked JSON lines
  ``{"type": ADDED|MODIFIED|DELETED|ERROR, "object": ...}``; an RV older than the compacted history gets
  one ERROR event carrying a 410 Gone ``Status`` (reason Expired), as the API server does; no RV (or
  "0") starts with synthetic ADDED events for the current objects; ``timeoutSeconds`` ends the stream;
* ``POST pods/NAME/binding`` sets ``spec.nodeName`` (pkg/registry/core/pod/storage: assignPod); 409
  Conflict when the pod is already assigned or the binding's UID precondition does not match;
* update (PUT) with a stale ``metadata.resourceVersion`` is 409 Conflict ("the object has been
  modified"); create of an existing name is 409 AlreadyExists; a missing object is 404 NotFound;
* PATCH takes merge-patch (RFC 7386), strategic-merge (treated as merge for the maps used here) and
  JSON patch (RFC 6902 add/replace/remove).

Test controls: :meth:`FakeApiServer.inject` (answer the next matching requests with an error such as
500), :meth:`drop_watches` (cut every watch stream without its final chunk), :meth:`compact` (forget the
event history so re-watches get 410), ``bind_hook`` (runs before a binding is applied), ``requests``
(every request as verb/group/resource/subresource, the RBAC view) and ``bindings`` (every successful
binding).
"""

from __future__ import annotations

import bisect
import copy
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

# resource -> (group, version, kind, namespaced)
RESOURCES = {
    "nodes": ("", "v1", "Node", False),
    "pods": ("", "v1", "Pod", True),
    "events": ("", "v1", "Event", True),
    "events.events.k8s.io": ("events.k8s.io", "v1", "Event", True),
    "leases": ("coordination.k8s.io", "v1", "Lease", True),
    "podgroups": ("scheduling.x-k8s.io", "v1alpha1", "PodGroup", True),
}


def _resource_key(group: str, resource: str) -> str:
    return resource if not group or resource != "events" else f"{resource}.{group}"


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target: dict, ops: list) -> dict:
    """RFC 6902 add / replace / remove (the operations the tests need)."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON patch operation {op['op']!r}")
    return doc


@dataclass
class Injection:
    method: str
    path: re.Pattern
    code: int
    remaining: int


@dataclass
class RequestRecord:
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    user_agent: str


class Store:
    """Objects by (resource, namespace, name), one revision counter, and the event history watches read."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.revision = 1
        self.history: list[tuple[int, str, str, str, dict]] = []  # (rev, resource, ns, type, object)
        self.history_revs: list[int] = []
        self.compacted = 0  # watches from an RV below this get 410 Gone

    def _record(self, resource: str, ns: str, kind: str, obj: dict) -> None:
        self.history.append((self.revision, resource, ns, kind, obj))
        self.history_revs.append(self.revision)
        self.cond.notify_all()

    def _stamp(self, resource: str, obj: dict) -> dict:
        group, version, kind, _ = RESOURCES[resource]
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        return obj

    def create(self, resource: str, obj: dict, namespace: str = "") -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if RESOURCES[resource][3]:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        ns = meta.get("namespace", "")
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        with self.cond:
            key = (resource, ns, meta["name"])
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{resource} "{meta["name"]}" already exists')
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self._stamp(resource, obj)
            self.objects[key] = obj
            self._record(resource, ns, "ADDED", obj)
            return copy.deepcopy(obj)

    def get(self, resource: str, namespace: str, name: str) -> dict:
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            return copy.deepcopy(obj)

    def update(self, resource: str, namespace: str, name: str, obj: dict,
               check: Callable[[dict], None] | None = None) -> dict:
        """Replace an object; 409 when ``obj`` carries a resourceVersion that is not the current one."""
        with self.cond:
            key = (resource, namespace, name)
            old = self.objects.get(key)
            if old is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the '
                                                f"object has been modified; please apply your changes to the "
                                                f"latest version and try again")
            if check is not None:
                check(old)
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "namespace", "name"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
            self._stamp(resource, new)
            self.objects[key] = new
            self._record(resource, namespace, "MODIFIED", new)
            return copy.deepcopy(new)

    def mutate(self, resource: str, namespace: str, name: str, fn: Callable[[dict], dict]) -> dict:
        """Read-modify-write under the lock (PATCH and the binding subresource)."""
        with self.cond:
            old = self.get(resource, namespace, name)
            new = fn(old)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.update(resource, namespace, name, new)

    def delete(self, resource: str, namespace: str, name: str) -> dict:
        with self.cond:
            obj = self.objects.pop((resource, namespace, name), None)
            if obj is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            obj = copy.deepcopy(obj)
            self.revision += 1
            obj["metadata"]["resourceVersion"] = str(self.revision)
            self._record(resource, namespace, "DELETED", obj)
            return obj

    def list(self, resource: str, namespace: str = "") -> tuple[list[dict], int]:
        with self.cond:
            items = [copy.deepcopy(o) for (r, ns, _), o in self.objects.items()
                     if r == resource and (not namespace or ns == namespace)]
            return items, self.revision

    def compact(self) -> None:
        """Forget the event history (etcd compaction): older resourceVersions are now 410 Gone."""
        with self.cond:
            self.compacted = self.revision + 1
            self.history.clear()
            self.history_revs.clear()

    def events_after(self, rv: int, resource: str, namespace: str) -> list[tuple[int, str, dict]]:
        start = bisect.bisect_right(self.history_revs, rv)
        return [(rev, kind, obj) for rev, r, ns, kind, obj in self.history[start:]
                if r == resource and (not namespace or ns == namespace)]


_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class FakeApiServer:
    """Start with :meth:`start` (or as a context manager); ``url`` is the base a kubeconfig points at."""

    def __init__(self) -> None:
        self.store = Store()
        self.requests: list[RequestRecord] = []
        self.bindings: list[dict] = []  # {namespace, name, uid, node, user_agent}
        self.bind_hook: Callable[[str, str, dict], None] | None = None
        self._injections: list[Injection] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._drop_generation = 0
        self._sockets: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeApiServer":
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-apiserver", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._stopping.set()
        with self.store.cond:
            self.store.cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            with self._lock:
                socks = list(self._sockets)
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._httpd.server_close()  # joins the handler threads
            self._thread.join(5)

    def __enter__(self) -> "FakeApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def kubeconfig(self, path) -> str:
        """Write a kubeconfig for this server to ``path`` and return it."""
        import yaml
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
               "users": [{"name": "fake", "user": {"token": "test-token"}}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}
        with open(path, "w") as fh:
            yaml.safe_dump(cfg, fh)
        return str(path)

    # ------------------------------------------------------------------ test controls
    def inject(self, method: str, path_regex: str, code: int = 500, count: int = 1) -> None:
        """Answer the next ``count`` requests matching METHOD and the path regex with ``code``."""
        with self._lock:
            self._injections.append(Injection(method.upper(), re.compile(path_regex), code, count))

    def drop_watches(self) -> None:
        """Cut every open watch stream (no final chunk): clients see a broken connection."""
        with self.store.cond:
            self._drop_generation += 1
            self.store.cond.notify_all()

    def compact(self) -> None:
        self.store.compact()

    def _injected(self, method: str, path: str) -> int | None:
        with self._lock:
            for inj in self._injections:
                if inj.remaining > 0 and inj.method == method and inj.path.search(path):
                    inj.remaining -= 1
                    return inj.code
        return None

    # ------------------------------------------------------------------ conveniences for tests
    def pods(self) -> list[dict]:
        return self.store.list("pods")[0]

    def nodes(self) -> list[dict]:
        return self.store.list("nodes")[0]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        import sys
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not an error
            super().handle_error(request, client_address)


_REASONS = {400: "BadRequest", 404: "NotFound", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
            422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


class _Handler(BaseHTTPRequestHandler):
    api: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without TCP_NODELAY the body waits for a delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.api._lock:
            self.api._sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.api._lock:
                self.api._sockets.discard(self.connection)

    # ------------------------------------------------------------------ plumbing
    def _send_json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not JSON") from None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        m = _PATH.match(url.path)
        record = RequestRecord("", "", "", "", "", "", 0, self.headers.get("User-Agent", ""))
        try:
            body = self._body() if method in ("POST", "PUT", "PATCH") else None
            if m is None:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource {url.path}")
            group = m.group("group") or ""
            resource, name, sub = m.group("resource"), m.group("name") or "", m.group("sub") or ""
            ns = m.group("ns") or ""
            if m.group("core") is None and m.group("group") is None:
                raise ApiError(404, "NotFound", "unknown API")
            key = _resource_key(group, resource)
            watch = query.get("watch") in ("true", "1")
            verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create",
                    "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
            record = RequestRecord(verb, group, resource, sub, ns, name, 0, record.user_agent)
            if key not in RESOURCES or RESOURCES[key][0] != group:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource {resource}")
            injected = self.api._injected(method, url.path)
            if injected is not None:
                raise ApiError(injected, _REASONS.get(injected, "InternalError"), "injected failure")
            if watch:
                record.code = 200
                self.api.requests.append(record)
                self._watch(key, ns, query)
                return
            code, out = self._handle(method, key, ns, name, sub, body, query, record.user_agent)
        except ApiError as err:
            record.code = err.code
            self.api.requests.append(record)
            self._send_json(err.code, status_body(err.code, err.reason, err.message))
            return
        record.code = code
        self.api.requests.append(record)
        self._send_json(code, out)

    # ------------------------------------------------------------------ REST
    def _handle(self, method, key, ns, name, sub, body, query, user_agent) -> tuple[int, dict]:
        store = self.api.store
        group, version, kind, namespaced = RESOURCES[key]
        if method == "GET" and not name:
            items, rev = store.list(key, ns)
            for it in items:  # items of a typed list carry no kind/apiVersion
                it.pop("kind", None)
                it.pop("apiVersion", None)
            return 200, {"kind": f"{kind}List", "apiVersion": f"{group}/{version}" if group else version,
                         "metadata": {"resourceVersion": str(rev)}, "items": items}
        if method == "GET":
            return 200, store.get(key, ns, name)
        if method == "POST" and key == "pods" and sub == "binding":
            return self._bind(ns, name, body or {}, user_agent)
        if sub:
            raise ApiError(404, "NotFound", f"subresource {sub} not served")
        if method == "POST":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "expected an object")
            return 201, store.create(key, body, ns)
        if method == "PUT":
            if (body.get("metadata") or {}).get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            return 200, store.update(key, ns, name, body)
        if method == "PATCH":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0]
            if ctype == "application/json-patch+json":
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "json patch must be a list of operations")
                return 200, store.mutate(key, ns, name, lambda o: json_patch(o, body))
            if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "merge patch must be an object")
                return 200, store.mutate(key, ns, name, lambda o: merge_patch(o, body))
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format "
                                                        f"- accepted media types include: "
                                                        f"application/json-patch+json, "
                                                        f"application/merge-patch+json (got {ctype})")
        if method == "DELETE":
            return 200, store.delete(key, ns, name)
        raise ApiError(405, "MethodNotAllowed", method)

    def _bind(self, ns: str, name: str, binding: dict, user_agent: str) -> tuple[int, dict]:
        """pods/binding (pkg/registry/core/pod/storage/storage.go BindingREST.Create / assignPod)."""
        target = binding.get("target") or {}
        node = target.get("name")
        if not node or target.get("kind", "Node") != "Node":
            raise ApiError(422, "Invalid", "target.name: Required value")
        if self.api.bind_hook is not None:
            self.api.bind_hook(ns, name, binding)
        want_uid = (binding.get("metadata") or {}).get("uid")
        store = self.api.store

        def assign(pod: dict) -> dict:
            if want_uid and pod["metadata"].get("uid") != want_uid:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding "{name}": '
                                                f"Precondition failed: UID in precondition: {want_uid}, UID in "
                                                f"object meta: {pod['metadata'].get('uid')}")
            if pod["spec"].get("nodeName"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding "{name}": pod '
                                                f'{name} is already assigned to node "{pod["spec"]["nodeName"]}"')
            pod["spec"]["nodeName"] = node
            ann = (binding.get("metadata") or {}).get("annotations") or {}
            if ann:
                pod["metadata"].setdefault("annotations", {}).update(ann)
            status = pod.setdefault("status", {})
            status.setdefault("conditions", []).append({"type": "PodScheduled", "status": "True"})
            return pod

        with store.cond:
            pod = store.mutate("pods", ns, name, assign)
            self.api.bindings.append({"namespace": ns, "name": name, "uid": pod["metadata"]["uid"], "node": node,
                                      "user_agent": user_agent})
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # ------------------------------------------------------------------ watch
    def _watch(self, key: str, ns: str, query: dict) -> None:
        store = self.api.store
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv_text = query.get("resourceVersion") or ""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with store.cond:
            generation = self.api._drop_generation
            if rv_text in ("", "0"):
                # "Get State and Start at Most Recent": synthetic ADDED events for what exists now.
                initial = [("ADDED", o) for o in store.list(key, ns)[0]]
                rv = store.revision
            else:
                initial = []
                rv = int(rv_text)
                if rv + 1 < store.compacted:
                    gone = status_body(410, "Expired", f"too old resource version: {rv} ({store.compacted - 1})")
                    self._chunk({"type": "ERROR", "object": gone})
                    self._end()
                    return
        try:
            for kind, obj in initial:
                self._chunk({"type": kind, "object": obj})
            while True:
                with store.cond:
                    events = store.events_after(rv, key, ns)
                    if not events:
                        if self.api._stopping.is_set() or self.api._drop_generation != generation:
                            break
                        if time.monotonic() >= deadline:
                            self._end()
                            return
                        store.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                        continue
                rv = events[-1][0]
                data = b"".join(json.dumps({"type": kind, "object": obj}).encode() + b"\n" for _, kind, obj in events)
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            # dropped or stopping: cut the connection without the final chunk
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _chunk(self, event: dict) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def serve() -> None:
    """Run the server on its own (the benchmark runs it in a second process): print the URL, serve until
    stdin closes."""
    import sys
    srv = FakeApiServer().start()
    print(srv.url, flush=True)
    try:
        sys.stdin.read()
    finally:
        srv.stop()


if __name__ == "__main__":
    serve()
