"""Hostile clients and unlucky operators against the Procfile's service on loopback: one line of figures per attack.

Each attack starts the Procfile's web process (from --root, this checkout by default, so an older
checkout can be attacked the same way for a before/after), does its damage on 127.0.0.1 only,
bounded in count and time, and stops every process it started. `--seconds` sets the length of
the slow-client attacks (30 s by default, as in issue #12; the test suite runs them shorter).
"""

from __future__ import annotations

import argparse
import http.client
import json
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
        self.store = Path(tempfile.mkdtemp(prefix="chaos-store-"))
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
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        Path(self.log.name).unlink(missing_ok=True)
        shutil.rmtree(self.store, ignore_errors=True)

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

    def keepalive_client() -> None:
        client = RawClient(service.port)
        while time.monotonic() < stop_at:
            outcome, status, closed = client.request(get_model)
            with lock:
                outcomes[outcome] += 1
                outcomes["closed"] += outcome == "ok" and closed
                if outcome == "ok" and status != 200:
                    outcomes["failed"] += 1
            if outcome == "refused":
                return  # the service is gone; the router would send this client elsewhere
            time.sleep(0.005)
        client.close()

    def batch_client() -> None:
        outcome, status, _ = RawClient(service.port).request(post, timeout=60)
        with lock:
            outcomes["batches ok" if outcome == "ok" and status == 200 else "batches failed"] += 1

    threads = [threading.Thread(target=keepalive_client) for _ in range(args.keepalive_clients)]
    threads += [threading.Thread(target=batch_client) for _ in range(args.batches)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # connections kept alive, batches on the wire
    signalled = time.monotonic()
    service.terminate()
    for t in threads:
        t.join(timeout=60)
    service.process.wait(timeout=40)
    exited = time.monotonic() - signalled
    failed = outcomes["failed"] + outcomes["batches failed"]
    line = (
        f"{args.keepalive_clients} kept-alive clients + {args.batches} x 10,000-row batches, SIGTERM to all:"
        f" answered {outcomes['ok']} ({outcomes['closed']} with Connection: close), failed {failed},"
        f" batches {outcomes['batches ok']}/{args.batches}, refused after the drain {outcomes['refused']},"
        f" exited {exited:.1f} s after SIGTERM"
    )
    return failed == 0 and outcomes["batches ok"] == args.batches and exited < 25, line


ATTACKS: dict[str, Callable] = {
    "slow-headers": attack_slow_headers,
    "slow-bodies": attack_slow_bodies,
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
