"""A local HTTP server that speaks Socrata's paging over fixture records, with faults on demand."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DAY_WHERE = re.compile(r"^created_date >= '([0-9T:.\-]+)' AND created_date < '([0-9T:.\-]+)'$")
FAULTS = ("timeout", "429", "500", "truncated", "object", "repeat")


class FakeSocrata:
    """Serves /resource/<id>.json like Socrata 2.0: string fields, nulls omitted, $where/$order/$limit/$offset.

    Queue faults with `fail(...)`; each request takes the next one: "timeout" stalls past the
    client's read timeout, "429" and "500" answer with that status, "truncated" cuts the body
    short, "object" answers 200 with an error object, "repeat" shifts this and every later page
    back by one row, as a row inserted ahead of a running query does, so one record comes twice.
    """

    def __init__(self, records: list[dict], stall_seconds: float = 2.0):
        self.records = records
        self.stall_seconds = stall_seconds
        self.faults: list[str] = []
        self.shift = 0
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}/resource/erm2-nwe9.json"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSocrata:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, *faults: str) -> None:
        assert all(f in FAULTS for f in faults), faults
        with self._lock:
            self.faults.extend(faults)

    def query(self, params: dict[str, str]) -> list[dict]:
        match = DAY_WHERE.match(params.get("$where", ""))
        if not match:
            raise ValueError(f"unsupported $where: {params.get('$where')!r}")
        start, end = match.groups()
        rows = [r for r in self.records if start <= r.get("created_date", "") < end]
        if "$order" in params:
            fields = [f.strip() for f in params["$order"].split(",")]
            rows.sort(key=lambda r: tuple(r.get(f, "") for f in fields))
        offset, limit = max(int(params.get("$offset", 0)) - self.shift, 0), int(params.get("$limit", 1000))
        return rows[offset : offset + limit]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None, declared: int | None = None
            ):
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(declared if declared is not None else len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                parts = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with fake._lock:
                    fault = fake.faults.pop(0) if fake.faults else None
                    fake.requests.append(
                        {"path": parts.path, "params": params, "headers": dict(self.headers), "fault": fault}
                    )
                if not parts.path.startswith("/resource/"):
                    return self._send(404, b'{"error": true, "message": "not found"}')
                if fault == "repeat":
                    fake.shift = 1
                try:
                    page = fake.query(params)
                except ValueError as exc:
                    return self._send(400, json.dumps({"error": True, "message": str(exc)}).encode())
                if fault == "timeout":
                    time.sleep(fake.stall_seconds)
                elif fault in ("429", "500"):
                    return self._send(int(fault), b'{"error": true}', {"Retry-After": "0"} if fault == "429" else None)
                elif fault == "object":
                    return self._send(200, b'{"error": true, "message": "query timed out"}')
                body = json.dumps(page).encode()
                if fault == "truncated":
                    self._send(200, body[: len(body) // 2], declared=len(body))
                    self.close_connection = True
                    return
                self._send(200, body)

        return Handler
