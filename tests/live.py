"""Real processes for the tests: the Procfile's web process under honcho, moto's S3 server, free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited early: {process.stdout.read() if process.stdout else ''}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def procfile_web(**env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`honcho start web` from the repo, on a free loopback port, with extra environment."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "PATH": f"{BIN}:{os.environ['PATH']}", **env}
    process = subprocess.Popen([str(BIN / "honcho"), "start", "web"], cwd=ROOT, env=full_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{base}/health", process)
        yield base, process
    finally:
        stop(process)


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 API server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_ready(endpoint, process)
        yield endpoint
    finally:
        stop(process)
