"""The serving benchmark: wrk against the Procfile's service and a bare Flask floor, plus model, cold-start and memory figures.

Everything runs on loopback, bounded in time. With two or more cores, wrk is pinned to core 0 and
the servers to core 1. Requests are 2,000 real held-out 311 requests (bench/heldout_requests.json,
from 2019-06-02, 06-29 and 06-30; the bundled model, refitted on every day, has seen them, which does
not change what an answer costs). One run writes
bench/results.txt and the README's speed figures (between its bench markers) from the same text,
with the commit it ran on and a met/missed line per target. Servers start and stop through the
tests' process harness (tests/live.py), so both stop every process they start the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import live  # noqa: E402 - the tests' process harness: free ports, spawn to a log file, stop the whole tree

REQUESTS_FILE = ROOT / "bench" / "heldout_requests.json"
RESULTS = ROOT / "bench" / "results.txt"
README = ROOT / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
FLOOR_COMMAND = "gunicorn floor_app:app --config gunicorn.conf.py --pythonpath scripts"

# wrk prints this JSON at the end of each run; latency is in microseconds.
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def cores() -> tuple[str | None, str | None]:
    """(load generator core, server core), or no pinning on a one-core machine."""
    return ("0", "1") if (os.cpu_count() or 1) >= 2 else (None, None)


def pinned(command: list[str], core: str | None) -> list[str]:
    return ["taskset", "-c", core, *command] if core else command


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("Procfile has no web process")


class Server:
    """A shell command (the Procfile's, or the floor's) as its own process group, pinned, on a free port."""

    def __init__(self, command: str, core: str | None, env: dict[str, str]):
        self.port = live.free_port()
        full_env = {
            **os.environ,
            **env,
            "PORT": str(self.port),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        self.started = time.perf_counter()
        self.process = live.spawn(pinned(["sh", "-c", f"exec {command}"], core), full_env)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait(self, path: str, timeout: float = 60) -> float:
        """Seconds from launch to the first 200 on path (polled every 5 ms: this is the cold start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited: {live.output(self.process)[-2000:]}")
            try:
                # A worker still loading holds the connection: wait for its answer rather than ask again.
                if requests.get(self.base + path, timeout=(2, 120)).status_code == 200:
                    return time.perf_counter() - self.started
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.005)
        raise SystemExit(f"no 200 from {path} within {timeout} s")

    def pss_mb(self) -> tuple[float, list[float]]:
        """PSS of the master and of each worker, in MB (shared pages split between the processes)."""

        def pss(pid: int) -> float:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
            return 0.0

        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return pss(self.process.pid), [pss(int(c)) for c in children]

    def cpu_ticks(self) -> int:
        """CPU time (user + system, in clock ticks) the master and its workers have used so far."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        ticks = 0
        for pid in [self.process.pid, *map(int, children)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # a worker recycled in between
                continue
            ticks += int(fields[11]) + int(fields[12])
        return ticks

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Until the workers have finished what wrk left queued: its last batches run on after wrk stops."""
        deadline = time.monotonic() + timeout
        last = self.cpu_ticks()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self.cpu_ticks()
            if now - last <= 2:  # at most 20 ms of CPU in 0.3 s: idle but for housekeeping
                return
            last = now

    def stop(self) -> None:
        live.stop(self.process, grace=30)
        live.remove_port_files(self.port)


def lua_for_gets(paths: list[str]) -> str:
    listed = ",\n".join(json.dumps(p) for p in paths)
    return (
        f"""
local paths = {{
{listed}
}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
        + DONE_LUA
    )


def lua_for_post(body_file: Path) -> str:
    return (
        f"""
local f = assert(io.open({json.dumps(str(body_file))}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""
        + DONE_LUA
    )


def wrk(url: str, lua: str, connections: int, seconds: int, core: str | None, folder: Path) -> dict:
    script = folder / f"run-{time.monotonic_ns()}.lua"
    script.write_text(lua)
    command = pinned(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script), url], core
    )
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def serving_model() -> object:
    """The bundled model as the service loads it (numpy bundle, no scikit-learn)."""
    from eta311.storage import LocalStore
    from eta311.web.served import ModelStore

    models = ModelStore(LocalStore(ROOT / "models"), 0)
    models.refresh()
    return models.current.model


def in_process_rows_per_s(model: object, size: int) -> float:
    """The model's own rows/s on size held-out rows (features and predict, best of three): what a batch is held to."""
    from eta311.model.complaints import canonical_type

    rows = json.loads(REQUESTS_FILE.read_text())
    batch = [rows[i % len(rows)] for i in range(size)]
    columns = (
        [canonical_type(r["complaint_type"]) for r in batch],
        [r["lat"] for r in batch],
        [r["lon"] for r in batch],
        [r["date"] for r in batch],
    )
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        model.predict_matrix(model.features(*columns))
        best = min(best, time.perf_counter() - started)
    return size / best


def in_process_app() -> object:
    """The service's Flask app in this process, on the bundled model: its batch handling measured without HTTP."""
    import logging

    from eta311.settings import Settings
    from eta311.web.app import create_app

    logging.getLogger("eta311.request").setLevel(logging.WARNING)  # a log line per call otherwise
    return create_app(Settings(model_uri=str(ROOT / "models"), fallback_uri=None, reload_interval_seconds=0))


def in_process_wsgi_rows_per_s(app: object, body: bytes, size: int) -> float:
    """Rows/s of one whole POST /predict of body through the app's WSGI call in this process (best of three).

    Everything the service does with a batch (parse, checks, model, answers, JSON) but HTTP,
    Gunicorn and the worker: HTTP rows/s over this figure is the serving overhead alone.
    """
    import io

    best = float("inf")
    status: list[str] = []
    for _ in range(3):
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/predict",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
        }
        status.clear()
        started = time.perf_counter()
        reply = app(environ, lambda given, headers, exc_info=None: status.append(given))  # type: ignore[operator]
        b"".join(reply)
        best = min(best, time.perf_counter() - started)
        getattr(reply, "close", lambda: None)()
        if not status or not status[0].startswith("200"):
            raise SystemExit(f"in-process POST /predict of {size:,} rows answered {status}")
    return size / best


def in_process_model() -> dict:
    """The serving model alone: one row's latency, and rows/s for batches of 1,000 and 10,000 rows."""
    import numpy as np

    from eta311.model.complaints import canonical_type

    model = serving_model()
    rows = json.loads(REQUESTS_FILE.read_text())
    types = [canonical_type(r["complaint_type"]) for r in rows]
    latency = []
    for i in range(3000):
        r = rows[i % len(rows)]
        started = time.perf_counter()
        model.predict_matrix(model.features([types[i % len(rows)]], [r["lat"]], [r["lon"]], [r["date"]]))
        latency.append(time.perf_counter() - started)
    latency = sorted(latency[500:])
    return {
        "model": model,
        "single_p50_us": latency[len(latency) // 2] * 1e6,
        "single_p99_us": latency[int(len(latency) * 0.99)] * 1e6,
        "numpy": np.__version__,
        **{f"rows_per_s_{size}": in_process_rows_per_s(model, size) for size in (1_000, 10_000)},
    }


def installed_mb() -> tuple[float, list[tuple[str, float]]]:
    """Bytes on disk of requirements.txt's packages and everything they pull in, from this environment."""
    wanted = [
        line.split("==")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    seen: dict[str, float] = {}
    while wanted:
        name = wanted.pop().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = (
            sum((dist.locate_file(f).stat().st_size for f in dist.files or [] if dist.locate_file(f).exists()), 0) / 1e6
        )
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                wanted.append(
                    requirement.split(";")[0]
                    .split("[")[0]
                    .split("<")[0]
                    .split(">")[0]
                    .split("=")[0]
                    .split("!")[0]
                    .split("~")[0]
                    .split(" ")[0]
                    .strip()
                    .lower()
                )
    return sum(seen.values()), sorted(seen.items(), key=lambda kv: -kv[1])


def import_seconds(core: str | None) -> float:
    """A fresh interpreter importing predict.py: Flask, the app, the model load; median of three."""
    code = "import time; t = time.perf_counter(); import predict; print(time.perf_counter() - t)"
    env = {**os.environ, "STORE_URI": tempfile.mkdtemp(prefix="bench-store-"), "LOG_LEVEL": "WARNING"}
    runs = [
        float(
            subprocess.run(
                pinned([sys.executable, "-c", code], core),
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(3)
    ]
    return statistics.median(runs)


def request_paths() -> tuple[list[str], list[str]]:
    """GET paths of the held-out requests: the medians route (known types only) and the model route."""
    from eta311.model.artifact import MEDIANS
    from eta311.model.complaints import canonical_type

    rows = json.loads(REQUESTS_FILE.read_text())
    known = json.loads((ROOT / "models" / MEDIANS).read_text())  # an unknown type is a 400, not a benchmark
    medians = [
        f"/predict/{quote(r['complaint_type'], safe='')}" for r in rows if canonical_type(r["complaint_type"]) in known
    ]
    model = [
        f"/predict/{quote(r['complaint_type'], safe='')}?lat={r['lat']}&lon={r['lon']}&date={quote(r['date'])}"
        for r in rows
    ]
    return medians, model


def worker_class(log: str) -> str:
    """The worker class Gunicorn reports at boot ("Using worker: gthread"), as the service really ran."""
    for line in log.splitlines():
        if "Using worker:" in line:
            return line.split("Using worker:", 1)[1].split()[0].strip('"')
    return "unknown"


def medians_of_rounds(rounds: dict[str, dict[int, list[dict]]]) -> dict[str, dict[int, dict]]:
    return {
        name: {c: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for c, runs in by_c.items()}
        for name, by_c in rounds.items()
    }


def serve_and_measure(
    args: argparse.Namespace, folder: Path, cores_used: tuple[str | None, str | None], model: object, app: object
) -> dict:
    """Cold starts, then the floor and the service side by side: single requests in rounds, batches, memory."""
    load_core, server_core = cores_used
    concurrency = [int(c) for c in args.connections.split(",")]
    env = {"STORE_URI": str(folder / "store"), "RELOAD_INTERVAL_SECONDS": "30"}  # an empty store: the bundled model
    medians_paths, model_paths = request_paths()
    rows = json.loads(REQUESTS_FILE.read_text())
    batches = {}
    for size in (1_000, 10_000):
        body = folder / f"batch-{size}.json"
        body.write_text(json.dumps({"records": [rows[i % len(rows)] for i in range(size)]}))
        batches[size] = body

    cold = []
    for _ in range(3):
        server = Server(procfile_web(), server_core, env)
        cold.append(server.wait(model_paths[0]))
        server.stop()

    # The floor and the service run side by side and the single-request runs interleave in rounds,
    # so a host that drifts in speed (as shared ones do) moves both alike; medians over rounds.
    floor = Server(FLOOR_COMMAND, server_core, env)
    service = Server(procfile_web(), server_core, env)
    try:
        floor.wait("/")
        service.wait(model_paths[0])
        worker = worker_class(live.output(service.process))
        single = [
            ("floor: bare Flask", floor.base + "/", lua_for_gets(["/"])),
            ("medians route", service.base + "/predict", lua_for_gets(medians_paths)),
            ("model route", service.base + "/predict", lua_for_gets(model_paths)),
        ]
        rounds: dict[str, dict[int, list[dict]]] = {}
        for _, url, lua in single:
            for c in concurrency:
                wrk(url, lua, c, 1, load_core, folder)  # warm-up
        for _ in range(args.rounds):
            for name, url, lua in single:
                for c in concurrency:
                    run = wrk(url, lua, c, args.seconds, load_core, folder)
                    rounds.setdefault(name, {}).setdefault(c, []).append(run)
        results = medians_of_rounds(rounds)
        memory = {"single rows": service.pss_mb()}
        service.wait_idle()
        in_process_calls = in_process_route_us()
        # A batch run must outlast its slowest request: 32 batches of 10,000 rows queue on one core.
        for size, seconds in ((1_000, max(args.seconds, 10)), (10_000, max(args.seconds, 30))):
            lua = lua_for_post(batches[size])
            for c in concurrency:
                wrk(service.base + "/predict", lua, c, 1, load_core, folder)
                # The model in-process right before the run, on the same core: a host that drifts
                # in speed moves both figures of the ratio alike. Not while the service still works
                # through the warm-up's queued batches on that core (up to c of them): that would
                # lower the in-process figures.
                service.wait_idle()
                in_process = in_process_rows_per_s(model, size)
                whole_call = in_process_wsgi_rows_per_s(app, batches[size].read_bytes(), size)
                run = wrk(service.base + "/predict", lua, c, seconds, load_core, folder)
                run["rows_per_s"] = run["rps"] * size
                run["in_process_rows_per_s"] = in_process
                run["in_process_wsgi_rows_per_s"] = whole_call
                results.setdefault(f"batch {size:,} rows", {})[c] = run
        # After the batches, not during them: wrk leaves up to c batches queued, answered after it stops.
        service.wait_idle()
        memory["batches"] = service.pss_mb()
    finally:
        floor.stop()
        service.stop()
    return {
        "results": results,
        "memory": memory,
        "cold": cold,
        "worker": worker,
        "concurrency": concurrency,
        "in_process_us": in_process_calls,
    }


def in_process_route_us() -> dict[str, float]:
    """Median us per WSGI call of the floor and the service's routes in this process (scripts/bench_model.py):
    what each costs in Python before HTTP and Gunicorn, for the explanation of a missed ratio."""
    import logging

    import bench_model

    # With each request's log line formatted and written, as the server does, but to /dev/null.
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    request_log = logging.getLogger("eta311.request")
    level = request_log.level
    with open(os.devnull, "w") as sink:
        streams = [handler.setStream(sink) for handler in handlers]
        request_log.setLevel(logging.INFO)
        try:
            return bench_model.routes(rounds=3, repeat=1500)
        finally:
            request_log.setLevel(level)
            for handler, stream in zip(handlers, streams):
                handler.setStream(stream)


def commit_label() -> str:
    """The commit the run measured, marked when the checkout had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results.txt", ":!README.md")
    return git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if changed else "")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def target_lines(served: dict, model: dict) -> list[str]:
    """One line per target of the speed issue (#16) and the earlier ones (#6), each met or MISSED."""
    results, memory, cold = served["results"], served["memory"], statistics.median(served["cold"])
    floor = results["floor: bare Flask"]
    lines = []
    for c in served["concurrency"]:
        ratio = results["model route"][c]["rps"] / floor[c]["rps"]
        lines.append(f"model route >= 0.70 x floor at c={c}: {ratio:.2f}  {verdict(ratio >= 0.70)}")
        if ratio < 0.70:
            lines.append(f"  why: {route_shortfall(results['model route'][c]['rps'], floor[c]['rps'], served)}")
    if 8 in served["concurrency"]:
        p99 = results["model route"][8]["p99_us"] / 1e3
        lines.append(f"model route p99 <= 10 ms at c=8: {p99:.2f} ms  {verdict(p99 <= 10)}")
    for c in served["concurrency"]:
        ratio = results["medians route"][c]["rps"] / floor[c]["rps"]
        lines.append(f"medians route >= 0.85 x floor at c={c}: {ratio:.2f}  {verdict(ratio >= 0.85)}")
    for size in (10_000, 1_000):
        for c in served["concurrency"]:
            run = results[f"batch {size:,} rows"][c]
            ratio = run["rows_per_s"] / run["in_process_rows_per_s"]
            lines.append(
                f"{size:,}-row batches over HTTP >= 0.6 x in-process rows/s (measured just before:"
                f" {run['in_process_rows_per_s']:,.0f}) at c={c}: {ratio:.2f}  {verdict(ratio >= 0.6)}"
            )
            if ratio < 0.6:
                ceiling = run["in_process_wsgi_rows_per_s"] / run["in_process_rows_per_s"]
                lines.append(
                    f"  why: the service's whole in-process call on this body (parse, checks, model, answer) runs at"
                    f" {ceiling:.2f} x the model's rows/s, so even free HTTP would reach at most {ceiling:.2f}"
                )
            # Not a target: the same HTTP rows/s over the service's whole batch handling in-process,
            # so the reader sees what HTTP and serving cost apart from the parse, checks and answers.
            whole = run["in_process_wsgi_rows_per_s"]
            lines.append(
                f"  for reading, not a target: {size:,}-row batches over HTTP / the service's own whole in-process"
                f" WSGI call on the same body ({whole:,.0f} rows/s) at c={c}: {run['rows_per_s'] / whole:.2f}"
                " (what HTTP and serving cost)"
            )
    lines.append(f"cold start <= 1.5 s: {cold:.2f} s  {verdict(cold <= 1.5)}")
    for when, (master, workers) in memory.items():
        total = master + sum(workers)
        lines.append(
            f"{len(workers)} preloaded workers + master <= 150 MB PSS, after {when}: {total:.0f} MB  {verdict(total <= 150)}"
        )
        if total > 150 and when != "single rows":
            before = sum(memory["single rows"][1])
            lines.append(
                f"  why: the workers kept {sum(workers) - before:.0f} MB more after the batches than after single rows"
                f" ({before:.0f} -> {sum(workers):.0f} MB); which allocations stay was not measured"
            )
    return lines


def route_shortfall(model_rps: float, floor_rps: float, served: dict) -> str:
    """A missed route ratio explained in server time per request, over HTTP and in-process."""
    model_us, floor_us = 1e6 / model_rps, 1e6 / floor_rps
    calls = served["in_process_us"]
    wsgi_model, wsgi_floor = calls["model route"], calls["floor: bare Flask"]
    return (
        f"a model request takes {model_us:.0f} us of the server core against the floor's {floor_us:.0f} us"
        f" ({model_us - floor_us:.0f} us more; 0.70 allows {floor_us / 0.70 - floor_us:.0f} us more); in-process,"
        f" the route's WSGI call alone costs {wsgi_model:.0f} us against the floor's {wsgi_floor:.0f} us"
        f" ({wsgi_model - wsgi_floor:.0f} us more)"
    )


def report(args: argparse.Namespace, served: dict, model: dict, cores_used: tuple[str | None, str | None]) -> str:
    results, memory = served["results"], served["memory"]
    load_core, server_core = cores_used
    total_mb, biggest = installed_mb()
    imported = import_seconds(server_core)
    lines = [
        f"# bench: commit {commit_label()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" numpy {model['numpy']}, gunicorn worker {served['worker']}, wrk on core {load_core},"
        f" servers on core {server_core}, median of {args.rounds} interleaved rounds of {args.seconds} s",
        "",
        f"{'route':<20}{'conc':>5}{'req/s':>10}{'x floor':>9}{'p50 ms':>9}{'p99 ms':>9}{'rows/s':>11}{'errors':>8}",
    ]
    floor = results["floor: bare Flask"]
    for name, by_c in results.items():
        for c, r in by_c.items():
            ratio = f"{r['rps'] / floor[c]['rps']:.2f}" if "rows_per_s" not in r else ""
            rows_s = f"{r['rows_per_s']:,.0f}" if "rows_per_s" in r else ""
            lines.append(
                f"{name:<20}{c:>5}{r['rps']:>10,.0f}{ratio:>9}{r['p50_us'] / 1e3:>9.2f}{r['p99_us'] / 1e3:>9.2f}"
                f"{rows_s:>11}{r['errors']:>8.0f}"
            )
    cold = served["cold"]
    lines += [
        "",
        f"in-process model (numpy bundle): single row p50 {model['single_p50_us']:.0f} us, p99 {model['single_p99_us']:.0f} us;"
        f" 1,000 rows {model['rows_per_s_1000']:,.0f} rows/s; 10,000 rows {model['rows_per_s_10000']:,.0f} rows/s",
        f"cold start, launch to first 200 from the model route: {statistics.median(cold):.2f} s"
        f" (runs: {', '.join(f'{c:.2f}' for c in cold)})",
        *(
            f"PSS after {k}: master {m:.1f} MB, {len(ws)} workers {', '.join(f'{w:.1f}' for w in ws)} MB;"
            f" total {m + sum(ws):.1f} MB"
            for k, (m, ws) in memory.items()
        ),
        f"import predict (Flask, app, model load) in a fresh interpreter: {imported:.2f} s",
        f"serving environment installed (requirements.txt and dependencies): {total_mb:.0f} MB;"
        f" largest {', '.join(f'{n} {mb:.0f}' for n, mb in biggest[:5])}",
        "",
        "targets:",
        *(f"  {line}" for line in target_lines(served, model)),
    ]
    return "\n".join(lines) + "\n"


def readme_section(text: str) -> str:
    """What goes between the README's bench markers: the results file, verbatim, as a text block."""
    return f"{README_START}\n```text\n{text}```\n{README_END}"


def write_readme(text: str) -> None:
    readme = README.read_text()
    before, start, rest = readme.partition(README_START)
    _, end, after = rest.partition(README_END)
    if not start or not end:
        raise SystemExit(f"README.md has no {README_START} ... {README_END} section to rewrite")
    README.write_text(before + readme_section(text) + after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=4, help="length of each single-request wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of floor, medians and model runs")
    parser.add_argument("--connections", default="8,32")
    parser.add_argument(
        "--out", default=str(RESULTS), help="results file; the README is rewritten only for the default"
    )
    args = parser.parse_args(argv)
    load_core, server_core = cores()
    if server_core:
        os.sched_setaffinity(0, {int(server_core)})  # the in-process figures, on the server's core
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    model = in_process_model()
    served = serve_and_measure(args, folder, (load_core, server_core), model["model"], in_process_app())
    text = report(args, served, model, (load_core, server_core))
    shutil.rmtree(folder, ignore_errors=True)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    if Path(args.out).resolve() == RESULTS.resolve():
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
