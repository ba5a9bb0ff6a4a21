"""What metrics and logs cost to serve: the service at a commit before them and this checkout, against the floor.

The earlier commit runs from a temporary git worktree (its own code and gunicorn.conf.py, this
checkout's .venv). The floor, the service before and the service now run side by side on the
server core, and their wrk runs interleave in rounds (the order of before/now alternating), so a
shared host that drifts in speed moves all three alike; each run is taken as a ratio to the floor
run of its own round, and the medians over rounds are reported. Writes bench/observability.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402 - the serving benchmark's harness: servers, wrk, the held-out requests
    FLOOR_COMMAND,
    REQUESTS_FILE,
    ROOT,
    Server,
    cores,
    lua_for_gets,
    procfile_web,
    wrk,
)

RESULTS = ROOT / "bench" / "observability.txt"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def commit_before_metrics() -> str:
    """The parent of the commit that added eta311/web/metrics.py: the service without metrics or request logs."""
    added = git("log", "--diff-filter=A", "--format=%H", "--", "eta311/web/metrics.py").splitlines()
    if not added:
        raise SystemExit("eta311/web/metrics.py has no history here; pass --before")
    return git("rev-parse", "--short", f"{added[-1]}^")


def request_paths() -> tuple[list[str], list[str]]:
    from eta311.model.complaints import canonical_type

    rows = json.loads(REQUESTS_FILE.read_text())
    known = json.loads((ROOT / "models" / "medians.json").read_text())
    medians = [
        f"/predict/{quote(r['complaint_type'], safe='')}" for r in rows if canonical_type(r["complaint_type"]) in known
    ]
    model = [
        f"/predict/{quote(r['complaint_type'], safe='')}?lat={r['lat']}&lon={r['lon']}&date={quote(r['date'])}"
        for r in rows
    ]
    return medians, model


def hook_microseconds(count: int = 20_000) -> dict[str, float]:
    """The per-request work in isolation, as a worker does it (multiprocess files on tmpfs, a log line to a file)."""
    import logging
    import time

    from eta311.logfmt import LogfmtFormatter, request_fields
    from eta311.web import metrics

    assert metrics.MULTIPROCESS_DIR, "run with PROMETHEUS_MULTIPROC_DIR set"
    log = logging.getLogger("eta311.request")
    handler = logging.FileHandler(Path(metrics.MULTIPROCESS_DIR) / "lines.log")
    handler.setFormatter(LogfmtFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    fields = {"method": "GET", "route": "/predict/<path:complaint_type>", "status": 200, "duration_ms": "0.51"}

    def timed(step) -> float:
        started = time.perf_counter()
        for _ in range(count):
            step()
        return (time.perf_counter() - started) / count * 1e6

    def metrics_step() -> None:
        metrics.observe_request("/predict/<path:complaint_type>", "GET", 200, 0.0005)
        metrics.predicted("model", "gbm-0123456789ab")

    def log_step() -> None:
        request_fields.set({"request_id": "541dc9b8-860a-416e-9db2-b7277e5b3caa"})
        log.info("request", extra={"fields": fields})

    results = {"metrics": [], "log line": []}
    for _ in range(5):  # interleaved, best of five: the least disturbed by other work on the machine
        results["metrics"].append(timed(metrics_step))
        results["log line"].append(timed(log_step))
    return {name: min(runs) for name, runs in results.items()}


def in_subprocess_hooks(folder: Path, core: str | None) -> dict[str, float]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    folder.mkdir(exist_ok=True)
    command = [sys.executable, __file__, "--hooks-only"]
    try:
        out = subprocess.run(
            ["taskset", "-c", core, *command] if core else command, env=env, capture_output=True, text=True, check=True
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hooks-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--before", help="commit to compare with (default: the one before metrics were added)")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.hooks_only:
        print(json.dumps(hook_microseconds()))
        return 0
    before = args.before or commit_before_metrics()
    now = git("rev-parse", "--short", "HEAD") + (
        "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    load_core, server_core = cores()
    folder = Path(tempfile.mkdtemp(prefix="bench-observability-"))
    tree = folder / "before"
    git("worktree", "add", "--detach", str(tree), before)
    env = {"STORE_URI": str(folder / "store"), "RELOAD_INTERVAL_SECONDS": "30"}
    servers: list[Server] = []
    try:
        floor = Server(FLOOR_COMMAND, server_core, env)
        old_command = f"cd {shlex.quote(str(tree))} && PYTHONPATH={shlex.quote(str(tree))} exec {procfile_web()}"
        old = Server(f"sh -c {shlex.quote(old_command)}", server_core, env)
        new = Server(procfile_web(), server_core, env)
        servers = [floor, old, new]
        medians, model = request_paths()
        floor.wait("/")
        for server in (old, new):
            server.wait(model[0])
        runs = {"floor": (floor.base + "/", lua_for_gets(["/"]))}
        for route, paths in (("medians", medians), ("model", model)):
            runs[f"{route} before"] = (old.base + "/predict", lua_for_gets(paths))
            runs[f"{route} now"] = (new.base + "/predict", lua_for_gets(paths))
        for url, lua in runs.values():
            wrk(url, lua, args.connections, 1, load_core, folder)  # warm-up
        results: dict[str, list[dict]] = {name: [] for name in runs}
        for round_number in range(args.rounds):
            order = ["floor", "medians before", "medians now", "model before", "model now"]
            if round_number % 2:  # alternate which of the pair goes first
                order = ["floor", "medians now", "medians before", "model now", "model before"]
            for name in order:
                url, lua = runs[name]
                results[name].append(wrk(url, lua, args.connections, args.seconds, load_core, folder))
        hooks = in_subprocess_hooks(
            Path(tempfile.mkdtemp(prefix="metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)),
            server_core,
        )
    finally:
        for server in servers:
            server.stop()
        git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)
    text = report(results, hooks, before, now, args)
    print(text)
    Path(args.out).write_text(text)
    return 0


def report(
    results: dict[str, list[dict]], hooks: dict[str, float], before: str, now: str, args: argparse.Namespace
) -> str:
    floors = [run["rps"] for run in results["floor"]]

    def ratio(name: str) -> float:
        return statistics.median(run["rps"] / floor for run, floor in zip(results[name], floors))

    lines = [
        f"# bench_observability: before = {before} (no metrics, Gunicorn's access log), now = {now}"
        f" (metrics + one logfmt line per request); c={args.connections}, median of {args.rounds}"
        f" interleaved rounds of {args.seconds} s",
        "",
        f"{'run':<16}{'req/s':>9}{'x floor':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}",
    ]
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50_us"] for r in runs) / 1e3
        p99 = statistics.median(r["p99_us"] for r in runs) / 1e3
        errors = sum(r["errors"] for r in runs)
        lines.append(
            f"{name:<16}{rps:>9,.0f}{ratio(name) if name != 'floor' else 1:>9.3f}{p50:>8.2f}{p99:>8.2f}{errors:>8}"
        )
    lines.append("")
    for route in ("medians", "model"):
        # Each round's now/before pair ran back to back, so its ratio is the least disturbed figure.
        per_round = [1 - n["rps"] / b["rps"] for n, b in zip(results[f"{route} now"], results[f"{route} before"])]
        cost = statistics.median(per_round)
        lines.append(
            f"{route} route: {ratio(f'{route} before'):.3f} x floor before, {ratio(f'{route} now'):.3f} now;"
            f" cost of metrics and logs {cost:+.1%} (median of rounds: {', '.join(f'{c:+.1%}' for c in per_round)})"
            f"  {'within' if cost <= 0.05 else 'OVER'} the 5% budget"
        )
    floor_us = 1e6 / statistics.median(floors)  # the floor runs on one core: its time per request
    total = sum(hooks.values())
    lines.append(
        f"per-request work in isolation (multiprocess files on tmpfs, line to a file): metrics {hooks['metrics']:.1f} us,"
        f" log line {hooks['log line']:.1f} us; {total:.1f} us = {total / floor_us:.1%} of a floor request"
        f" ({floor_us:.0f} us at the floor's median req/s)"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
