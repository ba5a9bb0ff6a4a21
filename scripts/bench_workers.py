"""Serving figures of two checkouts side by side (say, before and after a worker-class change), interleaved.

Both Procfile services run at once, pinned to the same core, and wrk (pinned to the other) takes
turns between them in rounds, so a host whose speed drifts moves both alike; medians over rounds.
Routes: the model route at c=8 and c=32, 10,000-row batches at c=8, and the model route at c=8
while one client keeps posting 10,000-row batches (how long a single row waits behind a batch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos import ROOT, RawClient, Service, batch_body  # noqa: E402

from bench import REQUESTS_FILE, cores, lua_for_gets, lua_for_post, wrk  # noqa: E402


def cpu_seconds(service: Service) -> float:
    """CPU time used so far by the service's master and workers: unlike req/s, not moved by other load on the host."""
    total = 0
    for pid in [service.process.pid, *service.workers()]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def batch_loop(port: int, stop: threading.Event) -> None:
    body = batch_body(10_000)
    post = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    client = RawClient(port)
    while not stop.is_set():
        client.request(post, timeout=60)
    client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other checkout (e.g. a git worktree of the old commit)")
    parser.add_argument("--after", default=str(ROOT))
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    load_core, server_core = cores()
    rows = json.loads(REQUESTS_FILE.read_text())
    model_paths = [
        f"/predict/{quote(r['complaint_type'], safe='')}?lat={r['lat']}&lon={r['lon']}&date={quote(r['date'])}"
        for r in rows
    ]
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    body_file = folder / "batch.json"
    body_file.write_bytes(batch_body(10_000))
    gets, posts = lua_for_gets(model_paths), lua_for_post(body_file)
    services = {}
    try:
        for name, root in (("before", args.before), ("after", args.after)):
            services[name] = Service(Path(root), RELOAD_INTERVAL_SECONDS="30")
            if server_core:  # the same core for both, as bench.py pins its servers
                for pid in [services[name].process.pid, *services[name].workers()]:
                    os.sched_setaffinity(pid, {int(server_core)})
        runs: dict[tuple[str, str], list[dict]] = {}
        plan = [("model c=8", gets, 8, False), ("model c=32", gets, 32, False), ("batch 10k c=8", posts, 8, False)]
        plan.append(("model c=8 + batches", gets, 8, True))
        for service in services.values():
            wrk(f"http://127.0.0.1:{service.port}/predict", gets, 8, 1, load_core, folder)  # warm-up
        for _ in range(args.rounds):
            for label, lua, connections, with_batches in plan:
                for name, service in services.items():
                    stop = threading.Event()
                    loop = threading.Thread(target=batch_loop, args=(service.port, stop))
                    if with_batches:
                        loop.start()
                        time.sleep(0.5)
                    seconds = max(args.seconds, 10) if "batch 10k" in label else args.seconds
                    url = f"http://127.0.0.1:{service.port}/predict"
                    cpu_before = cpu_seconds(service)
                    result = wrk(url, lua, connections, seconds, load_core, folder)
                    if not with_batches:  # with batches in the loop, the CPU is theirs too
                        result["cpu_ms"] = (cpu_seconds(service) - cpu_before) * 1e3 / max(result["requests"], 1)
                    runs.setdefault((label, name), []).append(result)
                    stop.set()
                    if with_batches:
                        loop.join(timeout=90)
    finally:
        for service in services.values():
            service.stop()
    print(
        f"# before: {args.before}; after: {args.after}; median of {args.rounds} interleaved rounds of {args.seconds} s"
    )
    print("# CPU ms per request is the service's own CPU time over the requests it answered: the figure a")
    print("# busy shared host moves least (req/s also depends on the share of the core the service gets)")
    print(f"{'run':<22}{'checkout':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'errors':>8}")
    for (label, name), results in runs.items():
        med = {key: statistics.median(r[key] for r in results) for key in ("rps", "p50_us", "p99_us", "errors")}
        cpu = f"{statistics.median(r['cpu_ms'] for r in results):.3f}" if "cpu_ms" in results[0] else "-"
        print(
            f"{label:<22}{name:>9}{med['rps']:>9,.0f}{med['p50_us'] / 1e3:>9.1f}{med['p99_us'] / 1e3:>9.1f}"
            f"{cpu:>12}{med['errors']:>8.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
