"""A small local HTTP server imitating Grafana's folder and dashboard API (for push tests).

It answers ``GET /api/folders/<uid>`` (404 until created), ``POST /api/folders`` and
``POST /api/dashboards/db`` like Grafana 11 does, records every request, and can be told
to answer a path with a list of statuses first (401, 412, 503...).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from limone_obs.stack import procs

_MESSAGES = {
    401: "Unauthorized",
    404: "Dashboard not found",
    412: "A dashboard with the same name in the folder already exists",
    500: "Internal server error",
    503: "Service unavailable",
}


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class FakeGrafana:
    """State of the fake: folders, dashboards, scripted failures, requests seen."""

    url: str = ""
    folders: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with ``statuses``, in order."""
        self.failures.setdefault(path, []).extend(statuses)

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Grafana's answer to one request."""
        scripted = self.failures.get(path)
        if scripted:
            status = scripted.pop(0)
            return status, {"message": _MESSAGES.get(status, "error"), "status": "error"}
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.folders:
                return 200, {"uid": uid, "title": self.folders[uid]}
            return 404, {"message": "folder not found"}
        if method == "POST" and path == "/api/folders":
            self.folders[body["uid"]] = body["title"]
            return 200, {"uid": body["uid"], "title": body["title"]}
        if method == "POST" and path == "/api/dashboards/db":
            return self._save(body)
        return 404, {"message": "Not found"}

    def _save(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("folderUid") not in self.folders:
            return 400, {"message": "folder not found"}
        uid = body["dashboard"]["uid"]
        self.dashboards[uid] = body
        return 200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1}


def _handler(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with fake.lock:
                auth = self.headers.get("Authorization", "")
                fake.seen.append(Seen(method, self.path, auth, body))
                status, answer = fake.answer(method, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # the stdlib names it so
            del format, args

    return Handler


@contextmanager
def running() -> Iterator[FakeGrafana]:
    """Start the fake on 127.0.0.1:<free port> in a thread; stop it afterwards."""
    fake = FakeGrafana()
    server = ThreadingHTTPServer((procs.LOOPBACK, procs.free_port()), _handler(fake))
    fake.url = f"http://{procs.LOOPBACK}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
