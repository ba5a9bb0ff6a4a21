"""Real processes for the tests: the Procfile's web process under honcho, moto's S3 server, free ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from eta311.web.gate.limiter import local_counter_uri

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# moto accepts any credentials; boto3 needs some.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited early: {output(process)}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def wait_for_workers(process: subprocess.Popen, count: int, timeout: float = 30) -> None:
    """Gunicorn answers as soon as one worker is up; wait until count have booted, so that all take requests."""
    deadline = time.monotonic() + timeout
    while output(process).count("Booting worker") < count:
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"{count} workers never booted: {output(process)}")
        time.sleep(0.1)


def descendants(pid: int) -> list[int]:
    """Every process below pid (honcho puts each of its processes in a process group of its own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(process: subprocess.Popen, grace: float = 10) -> None:
    """TERM the process and everything it started, KILL what is left after grace seconds."""
    tree = descendants(process.pid)
    for pid in [process.pid, *tree]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pid in [process.pid, *tree]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    # Its output was read while it ran; the log goes with it.
    Path(process.log_path).unlink(missing_ok=True)


def output(process: subprocess.Popen) -> str:
    """Everything the process has written so far (its output goes to a file, so it can never block)."""
    return Path(process.log_path).read_text(errors="replace")


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A server in its own process group, its output to a file: a pipe nobody reads fills and blocks it."""
    with tempfile.NamedTemporaryFile(prefix=Path(args[0]).name + "-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log_path = log.name
    return process


@contextmanager
def procfile_web(**env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`honcho start web` from the repo, on a free loopback port, with extra environment."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "PATH": f"{BIN}:{os.environ['PATH']}", **env}
    process = spawn([str(BIN / "honcho"), "start", "web"], full_env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{base}/health", process)
        yield base, process
    finally:
        stop(process)
        remove_port_files(port)


def remove_port_files(port: int) -> None:
    """Remove the per-port counters a server keeps in /dev/shm (they outlive it on purpose: a restart keeps
    quotas), then fail if the server left anything else named after its port there."""
    counters = Path(local_counter_uri(str(port)).removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm", "-journal"):
        counters.with_name(counters.name + suffix).unlink(missing_ok=True)
    named = re.compile(rf"eta311-.*-{port}(?:[.-].*)?")
    left = sorted(str(p) for p in counters.parent.iterdir() if named.fullmatch(p.name))
    assert not left, f"the server on port {port} left {left}: remove them in tests/live.py"


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 API server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    process = spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], dict(os.environ))
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_ready(endpoint, process)
        yield endpoint
    finally:
        stop(process)


@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen]]:
    """A real redis-server on a free loopback port, nothing persisted; yields its URL and process."""
    port = free_port()
    process = spawn(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"redis-server did not start: {output(process)}") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        stop(process)
