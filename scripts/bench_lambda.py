"""Cold and warm answers of the Lambda package's handler (make lambda), in fresh interpreters, against moto's S3 server.

Each round starts a new interpreter on the unpacked package (scripts/lambda_local.py serve), sends the
model route as an API Gateway REST event, then warm requests. Prints the figures and writes bench/lambda.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_PYTHON = ROOT / ".venv-lambda" / "bin" / "python"
ZIP = ROOT / "dist" / "eta311-dev.zip"
EVENT = {
    "path": "/predict/noise%20-%20residential",
    "httpMethod": "GET",
    "headers": {"Host": "abc123defg.execute-api.us-east-1.amazonaws.com", "X-Forwarded-For": "203.0.113.9"},
    "queryStringParameters": {"lat": "40.7", "lon": "-73.9", "date": "2019-06-08 00:00:09"},
    "requestContext": {"stage": "dev", "path": "/dev/predict/noise%20-%20residential"},
    "body": None,
    "isBase64Encoded": False,
}

sys.path.insert(0, str(ROOT / "tests"))
import live  # noqa: E402 - the tests' process harness: moto's server on a free port, stopped as a whole tree

S3_CLIENT = {
    "region_name": live.S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    "aws_access_key_id": live.S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": live.S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
}


def one_round(unpacked: Path, env: dict[str, str], warm: int) -> dict:
    launched = time.perf_counter()
    process = subprocess.Popen(
        [str(LAMBDA_PYTHON), "-I", "-S", str(ROOT / "scripts" / "lambda_local.py"), "serve", str(unpacked)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        answers = []
        for _ in range(1 + warm):
            process.stdin.write(json.dumps(EVENT) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            if answer.get("error") or answer["result"]["statusCode"] != 200:
                raise SystemExit(f"the handler did not answer 200: {answer}")
            answers.append(answer)
            if len(answers) == 1:
                launch_to_first = time.perf_counter() - launched
        return {
            "cold": answers[0]["cold_start_seconds"],
            "launch": launch_to_first,
            "warm_ms": statistics.median(a["seconds"] for a in answers[1:]) * 1000,
        }
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm", type=int, default=20, help="warm requests after each cold one")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "lambda.txt")
    args = parser.parse_args(argv)
    built = subprocess.run(["make", "-s", "lambda"], cwd=ROOT, capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(f"make lambda failed:\n{built.stdout}{built.stderr}")
    settings = json.loads((ROOT / "zappa_settings.json").read_text())["dev"]
    bucket = settings["environment_variables"]["STORE_URI"].removeprefix("s3://").split("/")[0]
    sizes = json.loads(ZIP.with_suffix(".sizes.json").read_text())
    with tempfile.TemporaryDirectory() as temp:
        unpacked = Path(temp)
        subprocess.run(
            [str(LAMBDA_PYTHON), str(ROOT / "scripts" / "lambda_local.py"), "unpack", str(ZIP), temp], check=True
        )
        with live.moto_s3() as endpoint:
            import boto3

            # The store's bucket, empty, as a fresh deployment has it.
            boto3.client("s3", endpoint_url=endpoint, **S3_CLIENT).create_bucket(Bucket=bucket)
            env = {"PATH": os.environ["PATH"], **live.S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint}
            rounds = [one_round(unpacked, env, args.warm) for _ in range(args.rounds)]
    cold = [r["cold"] for r in rounds]
    lines = [
        f"# bench_lambda: {args.rounds} fresh interpreters, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" {settings['runtime']} package, S3 on moto (loopback)",
        f"package: {sizes['zipped_bytes'] / 2**20:.1f} MiB zipped, {sizes['unzipped_bytes'] / 2**20:.1f} MiB unzipped",
        f"cold start, handler import to first model answer: {statistics.median(cold):.2f} s median"
        f" (runs: {', '.join(f'{c:.2f}' for c in cold)})",
        f"interpreter launch to first model answer: {statistics.median(r['launch'] for r in rounds):.2f} s median",
        f"warm model answer through the handler: {statistics.median(r['warm_ms'] for r in rounds):.1f} ms median",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
