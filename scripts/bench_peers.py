"""`make bench-peers`: the seed's stack (Flask, a one-row pandas DataFrame per request, a 100-tree random forest pickled whole) beside this service.

The seed's stack runs from its own environment (.venv-peers, built by the Makefile with pandas and
scikit-learn, never the service's .venv) under Gunicorn with two sync workers, as its Procfile
line `gunicorn predict:app` ran with Heroku's WEB_CONCURRENCY=2. Its forest is trained here on the
days in --data (the Makefile passes ../shared/data/nyc311 when it exists, else the committed
fixture days) and kept in .venv-peers for the next run. Both servers run on the same core, wrk on
the other, on the same held-out model-route requests, in interleaved rounds (medians reported).
Prints requests/s, p50/p99, cold start and memory side by side and writes bench/peers.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402 - the serving benchmark's harness: servers, wrk, the held-out requests
    ROOT,
    Server,
    commit_label,
    cores,
    lua_for_gets,
    procfile_web,
    request_paths,
    wrk,
)

PEERS = ROOT / ".venv-peers"
RESULTS = ROOT / "bench" / "peers.txt"


def trained_forest(data: Path) -> Path:
    """The seed's forest for these days, trained once and kept beside the peers' environment."""
    days = sorted(data.glob("*.json.gz"))
    if not days:
        raise SystemExit(f"no *.json.gz days in {data}")
    key = hashlib.sha256("".join(f"{d.name}:{d.stat().st_size}" for d in days).encode()).hexdigest()[:12]
    forest = PEERS / f"seed-forest-{key}.pkl"
    if not forest.exists():
        partial = forest.with_suffix(".partial")
        subprocess.run(
            [
                str(PEERS / "bin" / "python"),
                "scripts/seed_stack.py",
                "train",
                "--data",
                str(data),
                "--out",
                str(partial),
            ],
            cwd=ROOT,
            check=True,
        )
        partial.rename(forest)
    return forest


def seed_command(forest: Path) -> tuple[str, dict[str, str]]:
    gunicorn = PEERS / "bin" / "gunicorn"
    command = f"{gunicorn} seed_stack:app --pythonpath scripts --config bench/seed_gunicorn.conf.py"
    return command, {"SEED_MODEL": str(forest)}


def measure(args: argparse.Namespace, forest: Path) -> dict[str, dict]:
    load_core, server_core = cores()
    folder = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    _, model_paths = request_paths()
    seed, seed_env = seed_command(forest)
    stacks = {
        "seed: Flask + pandas + pickled forest": (seed, seed_env),
        "311 ETA (this service)": (procfile_web(), {"STORE_URI": str(folder / "store")}),
    }
    figures: dict[str, dict] = {name: {"cold": [], "runs": {}} for name in stacks}
    for _ in range(args.cold_starts):
        for name, (command, env) in stacks.items():
            server = Server(command, server_core, env)
            try:
                figures[name]["cold"].append(server.wait(model_paths[0], timeout=300))
            finally:
                server.stop()
    servers = {name: Server(command, server_core, env) for name, (command, env) in stacks.items()}
    try:
        for server in servers.values():
            server.wait(model_paths[0], timeout=300)
        lua = lua_for_gets(model_paths)
        for server in servers.values():
            wrk(server.base + "/predict", lua, 8, 2, load_core, folder)  # warm-up
        for _ in range(args.rounds):
            for name, server in servers.items():
                for c in (8, 32):
                    run = wrk(server.base + "/predict", lua, c, args.seconds, load_core, folder)
                    figures[name]["runs"].setdefault(c, []).append(run)
        for name, server in servers.items():
            master, workers = server.pss_mb()
            figures[name]["pss"] = (master, workers)
    finally:
        for server in servers.values():
            server.stop()
    return figures


def report(args: argparse.Namespace, figures: dict[str, dict], forest: Path) -> str:
    lines = [
        f"# bench-peers: commit {commit_label()}, model route (GET /predict/<type>?lat=&lon=&date=), 2,000 held-out"
        f" requests, both servers on one core, median of {args.rounds} interleaved rounds of {args.seconds} s;"
        f" seed forest {forest.stat().st_size / 1e6:,.0f} MB pickled, trained on the day files of {Path(args.data).resolve().name}/",
        "",
        f"{'stack':<40}{'conc':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}",
    ]
    for name, found in figures.items():
        for c, runs in found["runs"].items():
            rps, p50, p99 = (statistics.median(r[key] for r in runs) for key in ("rps", "p50_us", "p99_us"))
            errors = statistics.median(r["errors"] for r in runs)
            lines.append(f"{name:<40}{c:>5}{rps:>9,.0f}{p50 / 1e3:>9.2f}{p99 / 1e3:>9.2f}{errors:>8.0f}")
    lines.append("")
    for name, found in figures.items():
        master, workers = found["pss"]
        cold = ", ".join(f"{s:.2f}" for s in found["cold"])
        lines.append(
            f"{name}: cold start (launch to first 200) {statistics.median(found['cold']):.2f} s (runs: {cold});"
            f" PSS master {master:.0f} MB + {len(workers)} workers {', '.join(f'{w:.0f}' for w in workers)} MB"
            f" = {master + sum(workers):.0f} MB"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "fixtures" / "nyc311", help="days to train on")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-starts", type=int, default=2)
    args = parser.parse_args(argv)
    if not (PEERS / "bin" / "gunicorn").exists():
        raise SystemExit("no .venv-peers: run `make bench-peers`, which builds it")
    load_core, server_core = cores()
    if server_core:
        os.sched_setaffinity(0, {int(load_core)})  # this script's own work stays off the servers' core
    forest = trained_forest(args.data)
    text = report(args, measure(args, forest), forest)
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
