"""What metrics and logs cost to serve: the service without them and with them, against the floor.

"Before" is this checkout with METRICS=off (no request ids, request metrics or logfmt request lines;
Gunicorn's access line instead, as the service logged before them), or
with --before REF a commit served from a temporary git worktree (its own code and gunicorn.conf.py,
this checkout's .venv). The floor, the service before and the service now run side by side on the
server core. Two ways, because this host is shared and drifts in speed by tens of percent:
- one after the other: each round runs the floor, then before and now back to back (their order
  alternating); each round's now/before ratio is one figure, and the median over rounds is reported;
- at once: wrk drives before and now together, so whatever else the host does hits both alike and
  the scheduler shares the core between them; the ratio of their req/s is the ratio of their cost.
Then, in-process, what the observer (request id, metrics, one log line) adds to a request through
Flask, against what Gunicorn's access line, which it replaces, cost. Writes bench/observability.txt.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402 - the serving benchmark's harness: servers, wrk, the held-out requests
    FLOOR_COMMAND,
    ROOT,
    Server,
    cores,
    lua_for_gets,
    procfile_web,
    request_paths,
    wrk,
)

RESULTS = ROOT / "bench" / "observability.txt"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def _gunicorn_access_line(path: Path):
    """What the earlier commit did per request instead: Gunicorn's access log line, to a file."""
    import datetime
    from types import SimpleNamespace

    from gunicorn import glogging
    from gunicorn.config import Config

    config = Config()
    config.set("accesslog", str(path))
    logger = glogging.Logger(config)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/predict/Noise%20-%20Residential",
        "PATH_INFO": "/predict/Noise - Residential",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "51234",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SCRIPT_NAME": "",
        "HTTP_HOST": "127.0.0.1:5000",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    request = SimpleNamespace(headers=[("HOST", "127.0.0.1:5000"), ("USER-AGENT", "wrk")])
    response = SimpleNamespace(
        status="200 OK", headers=[("Content-Type", "application/json"), ("Content-Length", "131")], sent=131
    )
    elapsed = datetime.timedelta(microseconds=510)
    return lambda: logger.access(response, request, environ, elapsed)


def _app_with_and_without_observer():
    """WSGI calls of the app as served and of the same app with METRICS=off: the difference is the observer."""
    import io

    from werkzeug.test import EnvironBuilder

    from eta311.settings import Settings
    from eta311.web.app import create_app

    environ = EnvironBuilder(path="/predict/appliance").get_environ()

    def build(observed: bool):
        settings = Settings(
            model_uri=str(ROOT / "models"), fallback_uri=None, reload_interval_seconds=0, observe_requests=observed
        )
        app = create_app(settings)

        def call() -> None:
            answer = app.wsgi_app({**environ, "wsgi.input": io.BytesIO(b"")}, lambda *_: None)
            b"".join(answer)

        return call

    return build(True), build(False)


def hook_microseconds(count: int = 300) -> dict[str, float]:
    """The per-request work in isolation, as a worker does it (multiprocess files on tmpfs, lines to a file)."""
    import logging
    import time

    from eta311.logfmt import configure_root
    from eta311.web import metrics

    assert metrics.MULTIPROCESS_DIR, "run with PROMETHEUS_MULTIPROC_DIR set"
    configure_root(logging.INFO)  # as a worker has it, but to a file rather than the terminal
    lines = (Path(metrics.MULTIPROCESS_DIR) / "lines.log").open("w")
    for handler in logging.getLogger().handlers:
        handler.setStream(lines)
    logging.getLogger("eta311").setLevel(logging.INFO)
    observed, bare = _app_with_and_without_observer()
    access_line = _gunicorn_access_line(Path(metrics.MULTIPROCESS_DIR) / "access.log")

    def timed(step) -> float:
        started = time.perf_counter()
        for _ in range(count):
            step()
        return (time.perf_counter() - started) / count * 1e6

    request_log = logging.getLogger("eta311.request")

    def observer_cost() -> tuple[float, float]:
        # Many short alternating pairs; the median of their differences shrugs off bursts of other work.
        pairs = [(timed(observed), timed(bare)) for _ in range(30)]
        return statistics.median(a - b for a, b in pairs), statistics.median(b for _, b in pairs)

    observer, app = observer_cost()
    request_log.setLevel(logging.WARNING)  # the same without the request's log line
    without_line, _ = observer_cost()
    request_log.setLevel(logging.NOTSET)
    access = statistics.median(timed(access_line) for _ in range(30))
    return {"observer": observer, "observer without its line": without_line, "app": app, "access line": access}


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
    parser.add_argument(
        "--before", help="a commit to compare with, served from a worktree (default: this checkout with METRICS=off)"
    )
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.hooks_only:
        from gevent import monkey

        monkey.patch_all()  # as gunicorn.conf.py does for the workers
        print(json.dumps(hook_microseconds()))
        return 0
    before = args.before and git("rev-parse", "--short", args.before)
    now = git("rev-parse", "--short", "HEAD") + (
        "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    load_core, server_core = cores()
    folder = Path(tempfile.mkdtemp(prefix="bench-observability-"))
    tree = folder / "before"
    if before:
        git("worktree", "add", "--detach", str(tree), before)
    env = {"STORE_URI": str(folder / "store"), "RELOAD_INTERVAL_SECONDS": "30"}
    servers: list[Server] = []
    try:
        floor = Server(FLOOR_COMMAND, server_core, env)
        if before:
            old_command = f"cd {shlex.quote(str(tree))} && PYTHONPATH={shlex.quote(str(tree))} exec {procfile_web()}"
            old = Server(f"sh -c {shlex.quote(old_command)}", server_core, env)
        else:
            old = Server(procfile_web(), server_core, {**env, "METRICS": "off"})
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
        together: dict[str, list[float]] = {"medians": [], "model": []}
        for round_number in range(args.rounds):
            order = ["floor", "medians before", "medians now", "model before", "model now"]
            if round_number % 2:  # alternate which of the pair goes first
                order = ["floor", "medians now", "medians before", "model now", "model before"]
            for name in order:
                url, lua = runs[name]
                results[name].append(wrk(url, lua, args.connections, args.seconds, load_core, folder))
            for route in ("medians", "model"):
                # Both at once on the one server core: whatever else the host does hits both alike, and
                # the scheduler shares the core, so the ratio of their req/s is that of their cost.
                pair = [runs[f"{route} before"], runs[f"{route} now"]]
                with ThreadPoolExecutor(2) as pool:
                    done = list(
                        pool.map(lambda run: wrk(*run, args.connections, args.seconds, load_core, folder), pair)
                    )
                together[route].append(done[1]["rps"] / done[0]["rps"])
        hooks = in_subprocess_hooks(
            Path(tempfile.mkdtemp(prefix="metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)),
            server_core,
        )
    finally:
        for server in servers:
            server.stop()
        if before:
            git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)
    text = report(results, together, hooks, f"{before}, served from a worktree" if before else "METRICS=off", now, args)
    print(text)
    Path(args.out).write_text(text)
    return 0


def report(
    results: dict[str, list[dict]],
    together: dict[str, list[float]],
    hooks: dict[str, float],
    before: str,
    now: str,
    args: argparse.Namespace,
) -> str:
    floors = [run["rps"] for run in results["floor"]]

    def ratio(name: str) -> float:
        return statistics.median(run["rps"] / floor for run, floor in zip(results[name], floors))

    lines = [
        f"# bench_observability: before = {before} (no request ids or metrics, Gunicorn's access line), now = {now}"
        f" (request ids, metrics, one logfmt line per request); c={args.connections}, median of {args.rounds}"
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
        both = 1 - statistics.median(together[route])
        lines.append(
            f"  {route}, before and now driven at once on the shared core: cost {both:+.1%}"
            f" (rounds: {', '.join(f'{1 - r:+.1%}' for r in together[route])})"
            f"  {'within' if both <= 0.05 else 'OVER'} the 5% budget"
        )
    floor_us = 1e6 / statistics.median(floors)  # the floor runs on one core: its time per request
    lines.append(
        f"in-process WSGI calls (gevent-patched, as a worker), median of 30 alternating pairs: the observer adds"
        f" {hooks['observer']:.0f} us to a medians request ({hooks['app']:.0f} us without it), of which"
        f" {hooks['observer'] - hooks['observer without its line']:.0f} us is its logfmt line (to a file);"
        f" Gunicorn's access line, which it replaces, costs {hooks['access line']:.0f} us;"
        f" a floor request takes {floor_us:.0f} us (its median req/s on one core)"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
