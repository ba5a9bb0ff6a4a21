"""Every bash and python block in the README runs as written, against the Procfile service.

A block whose first line is `# not run by the tests: <why>` is skipped (it deploys to Heroku,
or serves until stopped). The rest run in README order against one service started as
`make run` would, with three substitutions a reader's machine does not need: the service's port
for localhost:5000, a test redis-server for redis://localhost:6379, and a local Socrata
(tests/fake_socrata.py) for NYC Open Data. Bash blocks run from the repository with
`set -euo pipefail`; python blocks in an empty folder holding a picture.png, as a client's would.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fake_socrata import FakeSocrata
from live import ROOT, procfile_web, redis_server
from test_api import real_png

README = ROOT / "README.md"
NOT_RUN = "# not run by the tests:"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```$", re.M | re.S)
CORS_EXAMPLE_ORIGIN = "https://maps.example.org"  # the origin the README's CORS example asks about


@dataclass(frozen=True)
class Snippet:
    language: str
    code: str
    line: int

    @property
    def runs(self) -> bool:
        return not self.code.startswith(NOT_RUN)

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def snippets(text: str) -> list[Snippet]:
    return [Snippet(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in BLOCK.finditer(text)]


def test_every_block_either_runs_or_says_why_not():
    found = snippets(README.read_text())
    assert sum(s.runs for s in found) >= 10, [str(s) for s in found]
    for snippet in found:
        if not snippet.runs:
            reason = snippet.code.splitlines()[0].removeprefix(NOT_RUN).strip()
            assert len(reason) > 10, f"{snippet}: say why it is not run"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The Procfile service, a redis-server and a local Socrata; yields the substitutions and environment."""
    records = [
        record
        for path in sorted((ROOT / "tests" / "fixtures" / "nyc311").glob("*.json.gz"))
        for record in json.loads(gzip.decompress(path.read_bytes()))
    ]
    store = tmp_path_factory.mktemp("store")
    common = {"STORE_URI": str(store), "RELOAD_INTERVAL_SECONDS": "1"}
    with (
        FakeSocrata(records) as socrata,
        redis_server() as (redis_url, _),
        procfile_web(**common, CORS_ORIGINS=CORS_EXAMPLE_ORIGIN) as (base, _),
    ):
        env = {**os.environ, **common, "SOCRATA_URL": socrata.url}
        env.pop("REDIS_URL", None)
        env.pop("API_KEYS_FILE", None)
        yield {"base": base, "redis": redis_url, "env": env, "folder": str(tmp_path_factory.mktemp("client"))}


def as_run_here(code: str, world: dict) -> str:
    host = world["base"].removeprefix("http://")
    return code.replace("redis://localhost:6379", world["redis"].removesuffix("/0")).replace("localhost:5000", host)


def run(snippet: Snippet, world: dict) -> subprocess.CompletedProcess:
    code = as_run_here(snippet.code, world)
    if snippet.language == "bash":
        args, cwd = ["bash", "-euo", "pipefail", "-c", code], ROOT
    else:
        args, cwd = [sys.executable, "-c", code], world["folder"]
    return subprocess.run(args, cwd=cwd, env=world["env"], capture_output=True, text=True, timeout=300)


def test_the_readme_blocks_run_as_written(world):
    with open(os.path.join(world["folder"], "picture.png"), "wb") as picture:
        picture.write(real_png(32, 32))
    ran = []
    for snippet in [s for s in snippets(README.read_text()) if s.runs]:
        done = run(snippet, world)
        assert done.returncode == 0, f"{snippet} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        # curl exits 0 on a 4xx: an answer of failure must be one the block itself shows as expected.
        if '"status":"failure"' in done.stdout.replace(" ", ""):
            assert "failure" in snippet.code, f"{snippet} got a failure it does not document:\n{done.stdout}"
        ran.append(str(snippet))
    assert ran
