"""Two Procfile servers (two workers each) on one real redis-server: one quota, counted once."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import requests
from live import ROOT, output, procfile_web, redis_server, wait_for_workers

QUOTA = 37


def create_key(env: dict[str, str], name: str) -> str:
    """A key on a plan with room for every request but QUOTA a day, made as an operator would: scripts/keys.py."""
    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "keys.py"), "create", "--name", name]
        + ["--rate", "1000", "--burst", "1000", "--quota", str(QUOTA)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip().splitlines()[-1]


def test_a_quota_of_n_admits_exactly_n_across_processes(tmp_path):
    with ExitStack() as stack:
        redis_url, _ = stack.enter_context(redis_server())
        env = {"REDIS_URL": redis_url, "RELOAD_INTERVAL_SECONDS": "0", "STORE_URI": str(tmp_path / "data")}
        key = create_key(env, "quota test")
        servers = [stack.enter_context(procfile_web(**env)) for _ in range(2)]
        bases = [base for base, _ in servers]
        assert requests.get(f"{bases[0]}/predict/residential", timeout=5).status_code == 401

        def call(i: int) -> int:
            reply = requests.get(f"{bases[i % 2]}/predict/residential", headers={"x-api-key": key}, timeout=10)
            return reply.status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(call, range(100)))
        logs = "".join(output(process) for _, process in servers)
    print(
        f"\n100 requests over 2 servers x 2 workers, quota {QUOTA}: {codes.count(200)} admitted, {codes.count(429)} refused"
    )
    assert codes.count(200) == QUOTA and codes.count(429) == 100 - QUOTA
    assert key not in logs and key.split("_", 2)[2] not in logs  # keys are never logged
    assert "API keys required (kept in Redis)" in logs


def test_without_redis_the_workers_of_one_server_share_a_quota(tmp_path):
    keys_file = tmp_path / "keys.json"
    env = {"API_KEYS_FILE": str(keys_file), "RELOAD_INTERVAL_SECONDS": "0", "STORE_URI": str(tmp_path / "data")}
    key = create_key(env, "local")
    with procfile_web(**env) as (base, process):
        # /health answers once the first worker is up; the second booting late made this run on one worker
        wait_for_workers(process, 2)
        with ThreadPoolExecutor(16) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        requests.get(f"{base}/predict/residential", headers={"x-api-key": key}, timeout=10).status_code
                    ),
                    range(80),
                )
            )
        workers = output(process).count("Booting worker")
    assert workers == 2 and codes.count(200) == QUOTA and codes.count(429) == 80 - QUOTA
