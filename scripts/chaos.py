"""Hostile clients and unlucky operators against the Procfile's service on loopback: one line of figures per attack.

Each attack starts the Procfile's web process (from --root, this checkout by default, so an older
checkout can be attacked the same way for a before/after), does its damage on 127.0.0.1 only,
bounded in count and time, and stops every process it started. `--seconds` sets the length of
the slow-client attacks (30 s by default, as in issue #12; the test suite runs them shorter).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "bench" / "heldout_requests.json"
MODEL_PATH = "/predict/noise%20-%20residential?lat=40.7&lon=-73.9&date=2019-06-08%2000:00:09"
P99_LIMIT_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_web(root: Path) -> str:
    for line in (root / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"{root}/Procfile has no web process")


class Service:
    """The Procfile's web command from a checkout, in its own process group, on a free loopback port."""

    def __init__(self, root: Path = ROOT, **env: str):
        self.root = root
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="chaos-web-", suffix=".log", delete=False)  # noqa: SIM115 - the server writes to it until stop()
        self.own_store = "STORE_URI" not in env
        self.store = Path(env["STORE_URI"]) if not self.own_store else Path(tempfile.mkdtemp(prefix="chaos-store-"))
        full_env = {
            **os.environ,
            "STORE_URI": str(self.store),
            "WEB_CONCURRENCY": "2",
            "RELOAD_INTERVAL_SECONDS": "1",
            **env,
            "PORT": str(self.port),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        self.process = subprocess.Popen(
            ["sh", "-c", f"exec {procfile_web(root)}"],
            cwd=root,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.output()[-3000:]}")
            try:
                status, _ = get(self.port, "/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service never answered: {self.output()[-3000:]}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def terminate(self) -> None:
        """SIGTERM to every process of the service at once, as Heroku does on a deploy or restart."""
        os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.stop_only()
        Path(self.log.name).unlink(missing_ok=True)
        if self.own_store:
            shutil.rmtree(self.store, ignore_errors=True)

    def stop_only(self) -> None:
        """Stop the processes, keeping the store (a cold start on it comes next)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def get(port: int, path: str, timeout: float = 5, body: bytes | None = None, headers: dict | None = None):
    """(status, JSON body or None) over a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers or {})
        reply = conn.getresponse()
        data = reply.read()
        try:
            return reply.status, json.loads(data)
        except ValueError:
            return reply.status, None
    finally:
        conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


@dataclass
class Probe:
    """Normal clients, each on a kept-alive connection, timing every request until stopped."""

    port: int
    clients: int = 4
    path: str = MODEL_PATH
    timeout: float = 10.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)]

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                conn.request("GET", self.path)
                reply = conn.getresponse()
                reply.read()
                if reply.status != 200:
                    self.failures.append(f"HTTP {reply.status}")
                self.latencies.append(time.monotonic() - started)
            except OSError as exc:
                self.failures.append(type(exc).__name__)
                self.latencies.append(time.monotonic() - started)
                conn.close() if conn else None
                conn = None
            time.sleep(0.01)  # a normal client, not a flood: the attack is the point, not our own load

    def __enter__(self) -> Probe:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)

    def summary(self) -> str:
        return (
            f"normal requests {len(self.latencies)}, p50 {percentile(self.latencies, 0.5) * 1e3:.0f} ms,"
            f" p99 {percentile(self.latencies, 0.99) * 1e3:.0f} ms, failed {len(self.failures)}"
        )

    @property
    def contained(self) -> bool:
        return bool(self.latencies) and not self.failures and percentile(self.latencies, 0.99) < P99_LIMIT_SECONDS


def trickle(port: int, count: int, seconds: float, opening: bytes, drip: bytes, every: float) -> dict:
    """count sockets send `opening`, then `drip` every `every` s, for `seconds`; how many the server kept open."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        sockets.append(s)
    deadline = time.monotonic() + seconds
    first = True
    try:
        while time.monotonic() < deadline:
            for s in list(sockets):
                try:
                    s.send(opening if first else drip)
                except OSError:
                    sockets.remove(s)  # the server closed it: that is a defence, not a failure
            first = False
            time.sleep(min(every, max(0.0, deadline - time.monotonic())))
        return {"opened": count, "still_open": len(sockets)}
    finally:
        for s in sockets:
            s.close()


def slow_attack(service: Service, count: int, seconds: float, opening: bytes, drip: bytes) -> tuple[bool, str]:
    result: dict = {}
    attacker = threading.Thread(
        target=lambda: result.update(trickle(service.port, count, seconds, opening, drip, every=2.0)), daemon=True
    )
    attacker.start()
    time.sleep(min(2.0, seconds / 4))  # every slow socket connected and started before the probe
    with Probe(service.port) as probe:
        attacker.join(timeout=seconds + 30)
    kept = result.get("still_open", "?")
    return probe.contained, f"{count} slow sockets x {seconds:.0f} s ({kept} still open at the end); {probe.summary()}"


def attack_slow_headers(service: Service, args) -> tuple[bool, str]:
    opening = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    return slow_attack(service, args.slow, args.seconds, opening, b"X-Slow: 1\r\n")


def attack_slow_bodies(service: Service, args) -> tuple[bool, str]:
    opening = (
        b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    return slow_attack(service, args.slow, args.seconds, opening + b'{"msg": "', b"x")


class RawClient:
    """HTTP/1.1 over one kept-alive socket, telling apart a refused connection from a request that failed."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.reader = None
        self.last_json = None

    def request(self, data: bytes, timeout: float = 30) -> tuple[str, int, bool]:
        """('ok', status, closed) / ('refused', 0, True) / ('failed', 0, True)."""
        if self.sock is None:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            except ConnectionRefusedError:
                return "refused", 0, True
            self.reader = self.sock.makefile("rb")
        try:
            self.sock.sendall(data)
            status_line = self.reader.readline()
            if not status_line:
                raise ConnectionError("closed before any answer")
            status = int(status_line.split()[1])
            headers = {}
            while (line := self.reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip().lower()
            body = self.reader.read(int(headers.get("content-length", "0")))
            if len(body) != int(headers.get("content-length", "0")):
                raise ConnectionError("answer cut short")
            try:
                self.last_json = json.loads(body) if body[:1] in (b"{", b"[") else None
            except ValueError:
                self.last_json = None
        except (OSError, ValueError, IndexError):
            self.close()
            return "failed", 0, True
        closed = headers.get("connection") == "close"
        if closed:
            self.close()
        return "ok", status, closed

    def close(self) -> None:
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
        self.sock = None


def batch_body(rows: int) -> bytes:
    records = json.loads(HELDOUT.read_text())
    return json.dumps({"records": [records[i % len(records)] for i in range(rows)]}).encode()


IDLE_CLIENTS = 8


def attack_sigterm(service: Service, args) -> tuple[bool, str]:
    """Kept-alive clients in a loop and large batches in flight when every process gets SIGTERM."""
    get_model = f"GET {MODEL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    body = batch_body(10_000)
    post = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    outcomes: dict[str, int] = {"ok": 0, "failed": 0, "refused": 0, "closed": 0, "batches ok": 0, "batches failed": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + 40

    draining = threading.Event()

    def keepalive_client() -> None:
        client = RawClient(service.port)
        while time.monotonic() < stop_at:
            outcome, status, closed = client.request(get_model)
            with lock:
                outcomes[outcome] += 1
                outcomes["closed"] += outcome == "ok" and closed
                if outcome == "ok" and status != 200:
                    outcomes["failed"] += 1
            if outcome == "refused" or (closed and draining.is_set()):
                # The dyno said it is going ("Connection: close" after SIGTERM) or is gone: a router
                # sends the next request to another dyno. A new connection here would only race the
                # listener's close (a connection queued as the last worker closes it is reset).
                return
            time.sleep(0.005)
        client.close()

    def batch_client() -> None:
        outcome, status, _ = RawClient(service.port).request(post, timeout=60)
        with lock:
            outcomes["batches ok" if outcome == "ok" and status == 200 else "batches failed"] += 1

    def idle_client() -> None:
        """One request, then idle through the SIGTERM: the server must close it with a FIN, not a reset."""
        client = RawClient(service.port)
        outcome, _, _ = client.request(get_model)
        if outcome != "ok":
            with lock:
                outcomes["failed"] += 1
            return
        if client.sock is None:  # answered with "Connection: close" and closed: never idle at the SIGTERM
            with lock:
                outcomes["idle closed cleanly"] = outcomes.get("idle closed cleanly", 0) + 1
            return
        client.sock.settimeout(30)
        try:
            ending = "idle closed cleanly" if client.sock.recv(1) == b"" else "idle sent junk"
        except OSError:
            ending = "idle reset"
        with lock:
            outcomes[ending] = outcomes.get(ending, 0) + 1
        client.close()

    idle = [threading.Thread(target=idle_client) for _ in range(IDLE_CLIENTS)]
    for t in idle:
        t.start()
    time.sleep(0.3)  # answered, and idle, before the load starts
    threads = [threading.Thread(target=keepalive_client) for _ in range(args.keepalive_clients)]
    threads += [threading.Thread(target=batch_client) for _ in range(args.batches)]
    for t in threads:
        t.start()
    threads += idle
    time.sleep(1.0)  # connections kept alive, batches on the wire
    signalled = time.monotonic()
    draining.set()
    service.terminate()
    for t in threads:
        t.join(timeout=60)
    service.process.wait(timeout=40)
    exited = time.monotonic() - signalled
    failed = outcomes["failed"] + outcomes["batches failed"]
    line = (
        f"{args.keepalive_clients} kept-alive clients + {args.batches} x 10,000-row batches, SIGTERM to all:"
        f" answered {outcomes['ok']} ({outcomes['closed']} with Connection: close), failed {failed},"
        f" batches {outcomes['batches ok']}/{args.batches}, connections refused {outcomes['refused']},"
        f" exited {exited:.1f} s after SIGTERM"
    )
    clean = outcomes.get("idle closed cleanly", 0)
    line += f"; {clean} of {IDLE_CLIENTS} idle kept-alive connections closed cleanly (FIN)"
    return failed == 0 and outcomes["batches ok"] == args.batches and exited < 25 and clean == IDLE_CLIENTS, line


# --- Memory and hostile inputs ------------------------------------------------------------------

MEMORY_BOUND_MB = 64


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def packed(blob: bytes) -> str:
    return base64.b64encode(gzip.compress(blob)).decode()


def json_post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def chunked_post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    step = 1 << 20
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step]) for i in range(0, len(body), step)
    )
    return head.encode() + chunks + b"0\r\n\r\n"


def memory_requests() -> dict[str, bytes]:
    """The issue's requests that once cost a worker up to ~0.8 GB each."""
    records_bomb = b'{"records":[' + b"{}," * (11 * 1024 * 1024 // 3) + b"{}]}"  # 33 MB inflated, ~40 KB sent
    return {
        "gzip bomb of {} records": json_post("/predict", json.dumps({"payload": packed(records_bomb)}).encode()),
        "8 MB of [{},{},...] in msg": json_post("/echo", b'{"msg": [' + b"{}," * (8 * 1024 * 1024 // 3 - 10) + b"{}]}"),
        "8 MB of records": json_post(
            "/predict", b'{"records": [' + b'{"complaint_type":"x"},' * (8 * 1024 * 1024 // 23 - 10) + b"{}]}"
        ),
        "6 MB nested 3M deep": json_post(
            "/echo", b'{"msg": ' + b"[" * (3 * 1024 * 1024) + b"]" * (3 * 1024 * 1024) + b"}"
        ),
    }


def attack_memory(service: Service, args) -> tuple[bool, str]:
    """Eight hostile requests at once, twice over; how far each worker's peak memory rose over idle."""
    for _ in range(20):
        get(service.port, MODEL_PATH)
    idle = {pid: peak_rss_mb(pid) for pid in service.workers()}
    requests = list(memory_requests().items()) * 2
    statuses: dict[str, set] = {}
    lock = threading.Lock()

    def send(name: str, data: bytes) -> None:
        outcome, status, _ = RawClient(service.port).request(data, timeout=60)
        with lock:
            statuses.setdefault(name, set()).add(status if outcome == "ok" else outcome)

    threads = [threading.Thread(target=send, args=item) for item in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    growth = max(peak_rss_mb(pid) - before for pid, before in idle.items())
    refused = all(codes <= {400, 413} for codes in statuses.values())
    answers = "; ".join(f"{name}: {'/'.join(map(str, sorted(codes, key=str)))}" for name, codes in statuses.items())
    line = f"{len(requests)} requests, 8 at a time: {answers}; worst worker peak +{growth:.0f} MB over idle (bound {MEMORY_BOUND_MB} MB)"
    return refused and growth <= MEMORY_BOUND_MB, line


HUGE = "4" + "0" * 3_999
GOOD_ROW = {"complaint_type": "residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"}


def hostile_inputs() -> list[tuple[str, bytes, int, str | None]]:
    """(name, raw request, status wanted, field wanted) for each hostile input of issue #12."""
    deep = "[" * 1000 + "]" * 1000
    row = json.dumps(GOOD_ROW)
    return [
        ("deep body", json_post("/predict", deep.encode()), 400, "[0]"),
        ("deep msg", json_post("/echo", f'{{"msg": {deep}}}'.encode()), 400, "msg"),
        ("deep row", json_post("/predict", f'{{"records": [{row}, {deep}]}}'.encode()), 400, "records"),
        (
            "deep payload",
            json_post("/predict", json.dumps({"payload": packed(deep.encode())}).encode()),
            400,
            "payload",
        ),
        (
            "4,000-digit lat",
            json_post(
                "/predict",
                f'{{"complaint_type": "rodent", "lat": {HUGE}, "lon": -73.9, "date": "2019-06-08"}}'.encode(),
            ),
            400,
            "lat",
        ),
        (
            "4,000-digit lat in row 1 of 3",
            json_post(
                "/predict",
                f'{{"records": [{row}, {{"complaint_type": "rodent", "lat": {HUGE}, "lon": -73.9, "date": "2019-06-08"}}, {row}]}}'.encode(),
            ),
            200,
            None,
        ),
        (
            "lat=4_0.7",
            b"GET /predict/rodent?lat=4_0.7&lon=-73.9&date=2019-06-08 HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "lat",
        ),
        (
            "Arabic-Indic lat",
            b"GET /predict/rodent?lat=%D9%A4%D9%A0.%D9%A7&lon=-73.9&date=2019-06-08 HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "lat",
        ),
        (
            "year 0000",
            b"GET /predict/rodent?lat=40.7&lon=-73.9&date=0000-06-08 HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "date",
        ),
        (
            "year 9999",
            b"GET /predict/rodent?lat=40.7&lon=-73.9&date=9999-06-08 HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "date",
        ),
        ("NaN in a body", json_post("/echo", b'{"msg": NaN}'), 400, "msg"),
        ("url-safe base64 with *", json_post("/echo", b'{"msg": "aGV*sbG8-", "encoding": "base64"}'), 400, "msg"),
        ("chunked body over 8 MiB", chunked_post("/echo", b'{"msg": "hi"}' + b" " * (9 * 1024 * 1024)), 413, None),
    ]


def attack_inputs(service: Service, args) -> tuple[bool, str]:
    wrong = []
    for name, data, status, field_wanted in hostile_inputs():
        client = RawClient(service.port)
        outcome, got, _ = client.request(data, timeout=30)
        body = client.last_json
        client.close()
        if outcome != "ok" or got != status or (field_wanted and (body or {}).get("field") != field_wanted):
            wrong.append(f"{name}: {got or outcome} {(body or {}).get('field')}")
        elif name.endswith("of 3") and [p["status"] for p in body["predictions"]] != ["success", "failure", "success"]:
            wrong.append(f"{name}: {[p['status'] for p in body['predictions']]}")
    count = len(hostile_inputs())
    return not wrong, f"{count - len(wrong)} of {count} answered as they should (4xx naming the field)" + (
        f"; wrong: {'; '.join(wrong)}" if wrong else ""
    )


# --- Bad publishes --------------------------------------------------------------------------------


def publish(store: Path, tag: bytes, corrupt: bool = False) -> str:
    """The bundled model republished under a new version (its pickle bytes tagged); optionally with a corrupt bundle."""
    models = ROOT / "models"
    card = json.loads((models / "model_card.json").read_text())
    pickle_bytes = tag + (models / card["artifact"]["name"]).read_bytes()
    bundle = (models / card["serving_artifact"]["name"]).read_bytes()
    if corrupt:
        bundle = bytearray(bundle)
        middle = len(bundle) // 3
        bundle[middle : middle + 64] = bytes(b ^ 0x5A for b in bundle[middle : middle + 64])
        bundle = bytes(bundle)
    sha, bundle_sha = hashlib.sha256(pickle_bytes).hexdigest(), hashlib.sha256(bundle).hexdigest()
    name, bundle_name = f"model-{sha[:12]}.pkl", f"model-{sha[:12]}-serving-{bundle_sha[:12]}.npz"
    card = {
        **card,
        "version": f"gbm-{sha[:12]}",
        "artifact": {"name": name, "sha256": sha, "bytes": len(pickle_bytes)},
        "serving_artifact": {"name": bundle_name, "sha256": bundle_sha, "bytes": len(bundle)},
    }
    store.mkdir(parents=True, exist_ok=True)
    (store / name).write_bytes(pickle_bytes)
    (store / bundle_name).write_bytes(bundle)
    (store / "model_card.tmp").write_text(json.dumps(card))
    os.replace(store / "model_card.tmp", store / "model_card.json")  # the card last: it is the switch
    return card["version"]


def versions_served(service: Service, tries: int = 40) -> set[str]:
    """The model versions the workers answer with (many requests, so every worker is asked)."""
    seen = set()
    for _ in range(tries):
        try:
            _, body = get(service.port, MODEL_PATH)
            seen.add((body or {}).get("model_version"))
        except OSError:
            seen.add("no answer")
    return seen


def wait_for(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def every_reason(service: Service) -> str:
    return get(service.port, "/health")[1].get("last_reload_error") or ""


def attack_publishes(service: Service, args) -> tuple[bool, str]:
    published = service.store / "published"
    good = publish(published, b"chaos good ")
    steps = [f"good {good} served: {wait_for(lambda: versions_served(service, 10) == {good})}"]
    publish(published, b"chaos bad ", corrupt=True)
    (published / "medians.json").write_text(
        json.dumps({**json.loads((ROOT / "models/medians.json").read_text()), "rodent": 7.5})
    )
    medians_new = wait_for(
        lambda: all((get(service.port, "/predict/rodent")[1] or {}).get("estimated_time") == 7.5 for _ in range(10))
    )
    wait_for(lambda: all("model_card.json: refused" in every_reason(service) for _ in range(10)))
    health = get(service.port, "/health")[1]
    reasons = health.get("last_reload_error") or ""
    steps.append(
        f"bad bundle: health {health['status']}, medians reloaded alone {medians_new}, model_card reason given {'model_card.json: refused' in reasons}"
    )
    worker = service.workers()[0]
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: worker not in service.workers() and len(service.workers()) == 2)
    recycled = versions_served(service)
    steps.append(f"worker killed and re-forked: serving {sorted(map(str, recycled))}")
    for name in ("model_card.json", "medians.json"):
        (published / name).unlink()
    time.sleep(2.5)
    vanished = get(service.port, "/health")[1]
    steps.append(
        f"published files deleted: health {vanished['status']}, reported {'vanished' in (vanished.get('last_reload_error') or '')}, serving {sorted(map(str, versions_served(service, 10)))}"
    )
    publish(published, b"chaos bad again ", corrupt=True)
    service.stop_only()
    cold = Service(service.root, STORE_URI=str(service.store))
    try:
        cold_versions = versions_served(cold)
        cold_health = get(cold.port, "/health")[1]["status"]
    finally:
        cold.stop()
    steps.append(f"cold start with a bad card: serving {sorted(map(str, cold_versions))}, health {cold_health}")
    contained = (
        health["status"] == "degraded"
        and medians_new
        and "model_card.json: refused" in reasons
        and recycled == {good}
        and vanished["status"] == "degraded"
        and cold_versions == {good}
    )
    return contained, "; ".join(steps)


# --- Redis stalled --------------------------------------------------------------------------------

STALL_SECONDS = 8.0
KEY_COPY_SECONDS = 10  # API_KEY_CACHE_SECONDS for this attack (60 by default): longer than the stall above
SLOW_MS = 200  # a request slower than this paid a Redis timeout (250 ms)


class RedisServer:
    """A real redis-server on a free loopback port, nothing persisted."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        wait_for(lambda: self._pong(), 10)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stall(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)  # connections accepted, never answered

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.terminate()
        self.process.wait(timeout=10)


def keys_cli(url: str, *args: str) -> str:
    env = {**os.environ, "REDIS_URL": url}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "keys.py"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def keyed_load(port: int, key: str, seconds: float, clients: int = 4) -> list[tuple[float, int]]:
    """(seconds, status) of every request from `clients` kept-alive clients with the key, for `seconds`."""
    results: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    request = f"GET {MODEL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n\r\n".encode()

    def run() -> None:
        client = RawClient(port)
        while time.monotonic() < deadline:
            started = time.monotonic()
            outcome, status, _ = client.request(request, timeout=10)
            results.append((time.monotonic() - started, status if outcome == "ok" else -1))
        client.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    return results


WORKERS = int(os.environ.get("WEB_CONCURRENCY", "2"))  # gunicorn.conf.py's default, as the Service starts it


def confirm_in_every_worker(port: int, key: str, workers: int, seconds: float = 5.0) -> int:
    """Requests on fresh connections until `workers` distinct workers (X-Request-ID prefixes) answered."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < workers and time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", MODEL_PATH, headers={"x-api-key": key, "Connection": "close"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                seen.add(response.getheader("X-Request-ID", "").rsplit("-", 1)[0])
        finally:
            connection.close()
    return len(seen)


def load_summary(results: list[tuple[float, int]], seconds: float) -> str:
    times = [t for t, _ in results]
    slow = sum(t * 1e3 >= SLOW_MS for t in times)
    bad = sum(status != 200 for _, status in results)
    return (
        f"{len(results) / seconds:.0f} req/s, p99 {percentile(times, 0.99) * 1e3:.0f} ms,"
        f" {slow} slower than {SLOW_MS} ms, {bad} not 200"
    )


def attack_redis_stall(service: Service, args) -> tuple[bool, str]:
    """Keyed requests while redis-server is stopped (stalled, not down); a key revoked just before the stall."""
    redis = RedisServer()
    service.stop()
    stalled_service = None
    unlimited = ("--rate", "100000", "--burst", "100000", "--quota", "100000000")
    try:
        key = keys_cli(redis.url, "create", "--name", "chaos", *unlimited)
        revoked_key = keys_cli(redis.url, "create", "--name", "chaos revoked", *unlimited)
        # No recycling by max_requests here: this load passes 20,000 requests a worker within the stall,
        # and a worker forked during it has only the master's start-up copies of the keys, older than
        # they are trusted (a limit the README states). The stall itself is what this attack measures.
        env = {
            "REDIS_URL": redis.url,
            "API_KEY_CACHE_SECONDS": str(KEY_COPY_SECONDS),
            "GUNICORN_CMD_ARGS": "--max-requests 0",
        }
        stalled_service = Service(service.root, **env)
        port = stalled_service.port
        keyed_load(port, revoked_key, 0.5)  # every worker has seen it, not revoked
        last_confirmed = time.monotonic()
        keys_cli(redis.url, "revoke", revoked_key.split("_")[1])  # and has not looked since
        before = keyed_load(port, key, 3)
        # Every worker confirms the key just before the stall: kept-alive clients can all land on one
        # worker, and the other's copy would date from its start, older than the copies are trusted.
        confirmed_in = confirm_in_every_worker(port, key, WORKERS)
        redis.stall()
        stalled_at = time.monotonic()
        during = keyed_load(port, key, STALL_SECONDS)
        time.sleep(max(0.0, KEY_COPY_SECONDS + 1 - (time.monotonic() - last_confirmed)))
        late = {s for _, s in keyed_load(port, revoked_key, 0.2, clients=1)}
        late_at, age = time.monotonic() - stalled_at, time.monotonic() - last_confirmed
        redis.resume()
    finally:
        if stalled_service is not None:
            stalled_service.stop()
        redis.stop()
    windows = math.ceil(STALL_SECONDS / 5) + 1
    allowed_slow = windows * 2 * 4  # a timeout per window per worker, for each client caught in it
    slow = sum(t * 1e3 >= SLOW_MS for t, _ in during)
    line = (
        f"before: {load_summary(before, 3)}; stalled {STALL_SECONDS:.0f} s: {load_summary(during, STALL_SECONDS)}"
        f" (at most {allowed_slow} allowed); a key revoked just before the stall, asked {late_at:.0f} s into it"
        f" ({age:.0f} s after Redis last confirmed it; copies trusted {KEY_COPY_SECONDS} s): {sorted(late)};"
        f" the valid key confirmed in {confirmed_in} of {WORKERS} workers just before the stall"
    )
    contained = slow <= allowed_slow and all(s == 200 for _, s in during) and 200 not in late
    return contained, line


ATTACKS: dict[str, Callable] = {
    "slow-headers": attack_slow_headers,
    "slow-bodies": attack_slow_bodies,
    "memory": attack_memory,
    "inputs": attack_inputs,
    "publishes": attack_publishes,
    "redis-stall": attack_redis_stall,
    "sigterm": attack_sigterm,
}


def run(names: list[str], args, out=print) -> dict[str, bool]:
    verdicts = {}
    for name in names:
        with Service(Path(args.root)) as service:
            started = time.monotonic()
            try:
                contained, figures = ATTACKS[name](service, args)
            except Exception as exc:  # noqa: BLE001 - an attack that crashes the harness is reported, not hidden
                contained, figures = False, f"harness error {type(exc).__name__}: {exc}"
            verdicts[name] = contained
            verdict = "contained" if contained else "NOT CONTAINED"
            out(f"{name:<16} {verdict:<14} {figures} [{time.monotonic() - started:.0f} s]")
    return verdicts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(ROOT), help="checkout whose Procfile to attack (for a before/after)")
    p.add_argument("--only", default=",".join(ATTACKS), help=f"comma-separated, from: {', '.join(ATTACKS)}")
    p.add_argument("--seconds", type=float, default=30, help="length of the slow-client attacks")
    p.add_argument("--slow", type=int, default=200, help="slow sockets per slow-client attack")
    p.add_argument("--keepalive-clients", type=int, default=16)
    p.add_argument("--batches", type=int, default=6)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ATTACKS))
    if unknown:
        raise SystemExit(f"unknown attacks: {', '.join(unknown)}")
    print(f"# chaos against {procfile_web(Path(args.root))} in {args.root}")
    verdicts = run(names, args)
    print(f"# {sum(verdicts.values())} of {len(verdicts)} attacks contained")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
