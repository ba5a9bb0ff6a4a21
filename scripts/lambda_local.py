"""Run a built Lambda package's handler on events, as Lambda would, in an interpreter that sees only the package.

  python scripts/lambda_local.py unpack dist/eta311-dev.zip /tmp/lambda   # /tmp/lambda/task and /tmp/lambda/runtime
  python -I -S scripts/lambda_local.py serve /tmp/lambda < events.jsonl   # one JSON event a line in, one answer a line out
  python -I -S scripts/lambda_local.py serve /tmp/sls wsgi_handler.handler   # another handler (serverless-wsgi's)

`unpack` also copies what the Lambda Python runtime provides and the package leaves out (boto3 and
its dependencies) from this interpreter into runtime/. `serve` puts task/ then runtime/ on an
otherwise bare sys.path (run it with -I -S: no site-packages, no PYTHONPATH), works from task/ as
Lambda does from /var/task, imports the handler (Zappa's handler.lambda_handler unless named) and answers each event with
{"result": ..., "seconds": ...} or {"error": ...}; the first answer also carries "cold_start_seconds",
from the start of the import of the handler to the end of the first answer. Everything the handler
prints or logs goes to stderr.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")


class Context:
    """The attributes of Lambda's context object that handlers read."""

    function_name = "eta311-dev"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:eta311-dev"
    memory_limit_in_mb = 2048
    aws_request_id = "local"
    log_group_name = "/aws/lambda/eta311-dev"
    log_stream_name = "local"

    def __init__(self, timeout_seconds: float = 900):
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def unpack(zip_path: Path, dest: Path) -> None:
    task, runtime = dest / "task", dest / "runtime"
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    runtime.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{name} is not installed here; it stands in for the Lambda runtime's copy")
        source = Path(spec.origin)
        if source.name == "__init__.py":
            shutil.copytree(source.parent, runtime / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, runtime / source.name)


def serve(dest: Path, handler: str = "handler.lambda_handler") -> None:
    task, runtime = (dest / "task").resolve(), (dest / "runtime").resolve()
    sys.path[:0] = [str(task), str(runtime)]
    os.chdir(task)
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the handler's prints must not mix with the answers
    started = time.perf_counter()
    module, _, function = handler.replace("/", ".").rpartition(".")
    lambda_handler = getattr(importlib.import_module(module), function)

    first = True
    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        began = time.perf_counter()
        try:
            answer = {"result": lambda_handler(event, Context())}
        except Exception as exc:  # reported to the caller, as Lambda reports a failed invocation
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answer["seconds"] = time.perf_counter() - began
        if first:
            answer["cold_start_seconds"] = time.perf_counter() - started
            answer["sys_path"] = sys.path
            first = False
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "unpack":
        unpack(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) in (2, 3) and argv[0] == "serve":
        serve(Path(argv[1]), *argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
