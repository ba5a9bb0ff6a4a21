"""The AWS Lambda package: built by `make lambda`, unzipped, and driven through Zappa's handler in an interpreter
that sees only the package (plus the boto3 the Lambda runtime provides), with API Gateway REST (v1) and HTTP API
(v2) events, the nightly schedule and S3 uploads, against moto's S3 server and a local Socrata."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import selectors
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import boto3
import pytest
from fake_socrata import FakeSocrata
from live import ROOT, S3_CREDENTIALS, moto_s3, redis_server

from eta311.client import gzip_payload
from eta311.data.trigger import recompute_medians
from eta311.model.artifact import medians_version
from eta311.model.dataset import decode_day
from eta311.plans import PLANS
from eta311.settings import BUNDLED_MODELS, Settings
from eta311.storage import LocalStore
from eta311.web.app import create_app
from eta311.web.gate.keys import new_key, open_key_store

MIB = 1024 * 1024
SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text())
STAGE = "dev"
LAMBDA_PYTHON = ROOT / ".venv-lambda" / "bin" / "python"
HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
FIXTURE_DAYS = sorted((ROOT / "tests" / "fixtures" / "nyc311").glob("*.json.gz"))
SEED_PATH = "/predict/noise%20-%20residential"
SEED_QUERY = {"lat": "40.7", "lon": "-73.9", "date": "2019-06-08 00:00:09"}


def store_uri() -> str:
    return SETTINGS[STAGE]["environment_variables"]["STORE_URI"]


def bucket_and_prefix() -> tuple[str, str]:
    bucket, _, prefix = store_uri().removeprefix("s3://").partition("/")
    return bucket, prefix


# ---------------------------------------------------------------- the package, built and unpacked


@pytest.fixture(scope="module")
def built():
    """`make lambda` as a developer runs it: the virtualenv is reused while requirements-serve.txt is unchanged."""
    done = subprocess.run(["make", "-s", "lambda"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    zip_path = ROOT / "dist" / f"eta311-{STAGE}.zip"
    return zip_path, json.loads(zip_path.with_suffix(".sizes.json").read_text())


@pytest.fixture(scope="module")
def unpacked(built, tmp_path_factory):
    dest = tmp_path_factory.mktemp("lambda")
    subprocess.run(
        [str(LAMBDA_PYTHON), "scripts/lambda_local.py", "unpack", str(built[0]), str(dest)], cwd=ROOT, check=True
    )
    return dest


class Lambda:
    """One warm Lambda container: scripts/lambda_local.py serving events over its stdin/stdout."""

    def __init__(self, unpacked: Path, env: dict[str, str], log: Path, handler: str = "handler.lambda_handler"):
        self.log = log
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    str(LAMBDA_PYTHON),
                    "-I",
                    "-S",
                    str(ROOT / "scripts" / "lambda_local.py"),
                    "serve",
                    str(unpacked),
                    handler,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                text=True,
            )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.first: dict | None = None

    def invoke(self, event: dict, timeout: float = 300) -> dict:
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        if not self.selector.select(timeout):
            raise AssertionError(f"no answer in {timeout} s; handler log: {self.log.read_text()[-3000:]}")
        line = self.process.stdout.readline()
        assert line, f"the handler process died: {self.log.read_text()[-3000:]}"
        answer = json.loads(line)
        self.first = self.first or answer
        return answer

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server holding the bucket STORE_URI names in zappa_settings.json, empty."""
    with moto_s3() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=bucket_and_prefix()[0])
        yield endpoint, client


@pytest.fixture(scope="module")
def socrata():
    records = [r for path in FIXTURE_DAYS for r in decode_day(path.read_bytes())]
    with FakeSocrata(records) as fake:
        yield fake


@pytest.fixture(scope="module")
def lam(unpacked, s3, socrata, tmp_path_factory):
    env = {
        "PATH": os.environ["PATH"],
        **S3_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": s3[0],
        "SOCRATA_URL": socrata.url,
        "LAMBDA_TASK_ROOT": str(unpacked / "task"),
    }
    container = Lambda(unpacked, env, tmp_path_factory.mktemp("logs") / "handler.log")
    yield container
    container.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same app in-process with the same bundled model: what every answer through the handler must equal."""
    empty = tmp_path_factory.mktemp("published")
    app = create_app(Settings(model_uri=str(empty), fallback_uri=str(BUNDLED_MODELS), reload_interval_seconds=0))
    return app.test_client()


# ---------------------------------------------------------------- events as API Gateway sends them


def rest_event(
    method: str,
    path: str,
    query: dict | None = None,
    body: bytes | None = None,
    headers: dict | None = None,
    base64_body: bool = False,
) -> dict:
    """API Gateway REST API (payload 1.0, Lambda proxy): the path without the stage, decoded query values."""
    multi = {k: v if isinstance(v, list) else [v] for k, v in (query or {}).items()}
    sent = {
        "Host": HOST,
        "User-Agent": "pytest",
        "Accept": "*/*",
        "X-Forwarded-For": "203.0.113.9, 130.176.1.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {k: [v] for k, v in sent.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "requestId": str(uuid.uuid4()),
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 1559952009000,
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "pytest", "apiKey": "gateway-key", "apiKeyId": "k1"},
        },
        "body": None if body is None else (base64.b64encode(body).decode() if base64_body else body.decode()),
        "isBase64Encoded": base64_body,
    }


def http_event(
    method: str,
    path: str,
    query: dict | None = None,
    body: bytes | None = None,
    headers: dict | None = None,
    base64_body: bool = False,
    stage: str = STAGE,
) -> dict:
    """API Gateway HTTP API (payload 2.0): on a named stage rawPath carries the stage ($default: no prefix);
    repeated query values join with commas."""
    prefixed = path if stage == "$default" else f"/{stage}{path}"
    multi = {k: v if isinstance(v, list) else [v] for k, v in (query or {}).items()}
    sent = {
        "host": HOST,
        "user-agent": "pytest",
        "accept": "*/*",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": prefixed,
        "rawQueryString": urlencode(multi, doseq=True, quote_via=quote),
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": HOST,
            "domainPrefix": "abc123defg",
            "http": {
                "method": method,
                "path": prefixed,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": stage,
            "time": "08/Jun/2019:00:00:09 +0000",
            "timeEpoch": 1559952009000,
        },
        "isBase64Encoded": base64_body,
    }
    if multi:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in multi.items()}
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    return event


EVENTS = {"rest": rest_event, "http": http_event}


def reply(answer: dict) -> tuple[int, dict, dict]:
    """Status, headers and JSON body of a handler's answer, decoding a base64 body as API Gateway would."""
    assert "error" not in answer, answer["error"]
    result = answer["result"]
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return result["statusCode"], result.get("headers", {}), json.loads(raw)


def json_body(document: object) -> tuple[bytes, dict]:
    return json.dumps(document).encode(), {"Content-Type": "application/json"}


# ---------------------------------------------------------------- size, leanness, isolation


def test_package_is_under_the_limits_and_lean(built):
    _, sizes = built
    assert sizes["zipped_bytes"] <= 50 * MIB and sizes["unzipped_bytes"] <= 120 * MIB
    assert sizes["forbidden"] == [] and sizes["missing"] == []
    assert sizes["cpython_tags"] == [SETTINGS[STAGE]["runtime"].removeprefix("python").replace(".", "")]
    assert not SETTINGS[STAGE].get("slim_handler")


def test_readme_sizes_are_the_measured_ones(built):
    """The README's figures come from check_lambda_package.py's output; within 1 MiB, as code changes move them a little."""
    _, sizes = built
    section = (ROOT / "README.md").read_text().split("## Serverless", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"([\d.]+) MiB zipped, ([\d.]+) MiB unzipped", section)
    assert found, "README's Serverless section must give the package's sizes"
    assert abs(float(found.group(1)) - sizes["zipped_bytes"] / MIB) <= 1
    assert abs(float(found.group(2)) - sizes["unzipped_bytes"] / MIB) <= 1


def test_readme_cold_start_is_bench_lambda_output():
    """The README quotes bench/lambda.txt, which scripts/bench_lambda.py writes; quoted lines must be in it verbatim."""
    section = (ROOT / "README.md").read_text().split("## Serverless", 1)[1].split("\n## ", 1)[0]
    quoted = section.split("### Cold start", 1)[1].split("```")[1].strip().splitlines()
    written = (ROOT / "bench" / "lambda.txt").read_text().splitlines()
    assert quoted and all(line in written for line in quoted)


def test_the_handler_sees_only_the_package_and_the_runtime(lam, unpacked):
    status, _, body = reply(lam.invoke(rest_event("GET", "/health")))
    assert status == 200 and body["status"] in ("ok", "degraded")
    first = lam.first
    assert first["sys_path"][:2] == [str((unpacked / "task").resolve()), str((unpacked / "runtime").resolve())]
    assert not any("site-packages" in entry for entry in first["sys_path"])
    assert sorted(p.name for p in (unpacked / "runtime").iterdir() if p.name != "__pycache__") == [
        "boto3",
        "botocore",
        "dateutil",
        "jmespath",
        "s3transfer",
        "six.py",
    ]
    print(f"cold start, handler import to first answer: {first['cold_start_seconds']:.2f} s")


# ---------------------------------------------------------------- the routes, through both payload versions


@pytest.mark.parametrize("kind", EVENTS)
def test_echo_from_the_query(lam, kind):
    status, _, body = reply(lam.invoke(EVENTS[kind]("GET", "/echo", query={"msg": "Hello"})))
    assert (status, body) == (200, {"response": "Hello", "success": True})


@pytest.mark.parametrize("kind", EVENTS)
def test_echo_from_a_json_body(lam, kind):
    raw, headers = json_body({"msg": "Hello, Lambda"})
    status, _, body = reply(lam.invoke(EVENTS[kind]("POST", "/echo", body=raw, headers=headers)))
    assert (status, body) == (200, {"response": "Hello, Lambda", "success": True})


@pytest.mark.parametrize("kind", EVENTS)
def test_echo_from_a_base64_encoded_event_body(lam, kind):
    """API Gateway base64-encodes bodies of binary media types and says so with isBase64Encoded."""
    raw, headers = json_body({"msg": "sent as bytes ✓"})
    status, _, body = reply(lam.invoke(EVENTS[kind]("POST", "/echo", body=raw, headers=headers, base64_body=True)))
    assert (status, body) == (200, {"response": "sent as bytes ✓", "success": True})


@pytest.mark.parametrize("kind", EVENTS)
def test_a_png_survives_the_echo_round_trip(lam, kind):
    png = (BUNDLED_MODELS / "evaluation.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    raw, headers = json_body({"msg": base64.b64encode(png).decode(), "encoding": "base64"})
    status, _, body = reply(lam.invoke(EVENTS[kind]("POST", "/echo", body=raw, headers=headers)))
    assert status == 200 and base64.b64decode(body["response"]) == png


@pytest.mark.parametrize("kind", EVENTS)
def test_medians_answer_as_the_app_does(lam, reference, kind):
    status, headers, body = reply(lam.invoke(EVENTS[kind]("GET", "/predict/residential")))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == reference.get("/predict/residential").get_json()
    assert body["model"] == "medians" and body["estimated_time"] > 0


@pytest.mark.parametrize("kind", EVENTS)
def test_the_model_answers_the_seed_url_as_the_app_does(lam, reference, kind):
    status, _, body = reply(lam.invoke(EVENTS[kind]("GET", SEED_PATH, query=SEED_QUERY)))
    expected = reference.get("/predict/noise - residential", query_string=SEED_QUERY).get_json()
    assert status == 200 and body == expected
    assert body["complaint_type"] == "noise - residential" and body["model"] != "medians" and body["fallbacks"] == []


@pytest.mark.parametrize("kind", EVENTS)
def test_a_get_with_a_json_body_is_answered_by_the_model_as_the_app_does(lam, reference, kind):
    # The seed's clients send GET with a JSON body; Zappa declares a body's length and type only for
    # POST, PUT, PATCH and DELETE, and the app answered such a GET from the medians.
    raw, headers = json_body(SEED_QUERY)
    status, _, body = reply(lam.invoke(EVENTS[kind]("GET", SEED_PATH, body=raw, headers=headers)))
    expected = reference.get("/predict/noise - residential", json=SEED_QUERY).get_json()
    assert status == 200 and body == expected and body["model"] != "medians" and body["fallbacks"] == []


@pytest.mark.parametrize("kind", EVENTS)
def test_a_get_whose_json_body_the_gateway_base64_encoded_is_answered_by_the_model(lam, reference, kind):
    # Zappa's REST API declares every media type binary, so API Gateway base64-encodes every body;
    # Zappa decodes it only for POST, PUT, PATCH, DELETE, CONNECT and OPTIONS, and a GET's came as base64 text.
    raw, headers = json_body(SEED_QUERY)
    event = EVENTS[kind]("GET", SEED_PATH, body=raw, headers=headers, base64_body=True)
    status, _, body = reply(lam.invoke(event))
    expected = reference.get("/predict/noise - residential", json=SEED_QUERY).get_json()
    assert status == 200 and body == expected and body["model"] != "medians"
    event["body"] = "not base64 {"
    status, _, body = reply(lam.invoke(event))
    assert status == 400 and body["success"] is False


@pytest.mark.parametrize("kind", EVENTS)
def test_an_answer_over_lambdas_6_mb_limit_is_a_json_413(lam, kind):
    # Lambda refuses a synchronous answer over 6 MB and API Gateway turns it into a 502; the echo answers
    # each "✓" (3 bytes sent) as a 6-byte \u2713 escape, so a 3.3 MB body asked for an answer over the limit.
    raw = json.dumps({"msg": "✓" * 1_100_000}, ensure_ascii=False).encode()
    assert len(raw) < 4 * MIB
    answer = lam.invoke(EVENTS[kind]("POST", "/echo", body=raw, headers={"Content-Type": "application/json"}))
    answer_bytes = len(json.dumps(answer["result"]))
    assert answer_bytes <= 6 * MIB
    status, headers, body = reply(answer)
    assert status == 413 and headers["Content-Type"] == "application/json"
    assert body["success"] is False and "6 MB" in body["problem"]
    status, _, body = reply(lam.invoke(EVENTS[kind]("GET", "/echo", query={"msg": "✓" * 1000})))
    assert (status, body) == (200, {"response": "✓" * 1000, "success": True})  # a small answer passes as it is


@pytest.mark.parametrize("kind", EVENTS)
def test_options_is_a_204_with_allow(lam, reference, kind):
    # Its answer has no Content-Type: the size check of bb8bf53 read None's startswith and answered 500.
    result = lam.invoke(EVENTS[kind]("OPTIONS", "/predict/residential"))["result"]
    assert result["statusCode"] == 204 and not result.get("body")
    expected = reference.options("/predict/residential").headers["Allow"]
    assert sorted(result["headers"]["Allow"].split(", ")) == sorted(expected.split(", "))


@pytest.mark.parametrize("kind", EVENTS)
def test_a_gzipped_base64_batch(lam, reference, kind):
    rows = [
        {"complaint_type": "residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"},
        {"complaint_type": "heat/hot water"},
        {"complaint_type": "unicorn", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"},
    ]
    document = {"payload": gzip_payload({"records": rows})}
    assert gzip.decompress(base64.b64decode(document["payload"]))  # really gzip inside base64
    raw, headers = json_body(document)
    status, _, body = reply(lam.invoke(EVENTS[kind]("POST", "/predict", body=raw, headers=headers)))
    assert status == 200 and body == reference.post("/predict", json=document).get_json()
    assert body["count"] == 3 and len(body["predictions"]) == 3


@pytest.mark.parametrize("kind", EVENTS)
def test_an_unknown_type_is_a_400_in_json(lam, kind):
    status, headers, body = reply(lam.invoke(EVENTS[kind]("GET", "/predict/unicorn")))
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert body["success"] is False and body["problem"] == "Complaint type is not in database"


def test_the_stage_prefix_is_not_part_of_the_route(lam, reference):
    """An HTTP API on stage "dev" sends /dev/predict/...; a REST API sends the path alone. Both reach /predict/..."""
    v2 = http_event("GET", "/predict/residential")
    assert v2["rawPath"] == "/dev/predict/residential"
    v1 = rest_event("GET", "/predict/residential")
    assert v1["requestContext"]["path"] == "/dev/predict/residential"
    expected = reference.get("/predict/residential").get_json()
    default_stage = http_event("GET", "/predict/residential", stage="$default")  # an HTTP API's default: no prefix
    for event in (v1, v2, default_stage):
        status, _, body = reply(lam.invoke(event))
        assert (status, body) == (200, expected)
    status, _, body = reply(lam.invoke(http_event("GET", "/no/such/route")))
    assert status == 404 and body["success"] is False


def test_service_keys_on_redis_work_and_stack_with_api_gateway_keys(unpacked, s3, tmp_path):
    """With REDIS_URL the service's own keys work on Lambda as on Heroku; behind api_key_required, x-api-key
    carries API Gateway's key (checked by the gateway, unknown to the service) and the service's key rides as a Bearer."""
    with redis_server() as (redis_url, _):
        key, record = new_key("Acme app", PLANS["standard"])
        open_key_store(redis_url, None).put(record)
        env = {"PATH": os.environ["PATH"], **S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3[0], "REDIS_URL": redis_url}
        keyed = Lambda(unpacked, env, tmp_path / "handler.log")
        try:
            gateway = {"x-api-key": "gateway-key-0123456789abcdef"}
            stacked = {**gateway, "Authorization": f"Bearer {key}"}
            status, headers, _ = reply(keyed.invoke(rest_event("GET", "/predict/residential", headers=stacked)))
            assert status == 200 and headers["RateLimit-Limit"]
            status, _, body = reply(keyed.invoke(rest_event("GET", "/predict/residential", headers=gateway)))
            assert (status, body["problem"]) == (401, "Unknown API key")
            status, _, _ = reply(keyed.invoke(http_event("GET", "/predict/residential", headers={"x-api-key": key})))
            assert status == 200  # an HTTP API has no gateway keys: the service's key goes in x-api-key as on Heroku
            status, _, _ = reply(keyed.invoke(http_event("GET", "/predict/residential")))
            assert status == 401
        finally:
            keyed.close()


def sent_from(event: dict, source_ip: str, forwarded_for: str) -> dict:
    """The event as API Gateway builds it for a client at source_ip that sent its own X-Forwarded-For."""
    context = event["requestContext"]
    (context["http"] if "http" in context else context["identity"])["sourceIp"] = source_ip
    headers = event["headers"]
    name = next(k for k in headers if k.lower() == "x-forwarded-for")
    headers[name] = f"{forwarded_for}, {source_ip}"  # an HTTP API or a regional REST API appends the client last
    if "multiValueHeaders" in event:
        event["multiValueHeaders"][name] = [headers[name]]
    return event


@pytest.mark.parametrize("kind", EVENTS)
def test_a_forged_x_forwarded_for_does_not_buy_a_fresh_anonymous_limit(unpacked, s3, tmp_path, kind):
    """Anonymous clients are limited per address; on Lambda the address is API Gateway's sourceIp. Zappa read
    the second-to-last X-Forwarded-For entry, which the client writes itself behind an HTTP API or a regional REST API."""
    env = {
        "PATH": os.environ["PATH"],
        **S3_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": s3[0],
        "ANONYMOUS_PLAN": "free",
        "RATE_LIMIT_STORAGE_URI": f"sqlite:///{tmp_path}/limits.sqlite",
    }
    container = Lambda(unpacked, env, tmp_path / "handler.log")
    try:
        remaining = []
        for forged in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            event = sent_from(EVENTS[kind]("GET", "/predict/residential"), "203.0.113.77", forged)
            status, headers, _ = reply(container.invoke(event))
            assert status == 200
            remaining.append(int(headers["RateLimit-Remaining"]))
        assert remaining == [remaining[0], remaining[0] - 1, remaining[0] - 2]
        other = sent_from(EVENTS[kind]("GET", "/predict/residential"), "203.0.113.78", "198.51.100.1")
        _, headers, _ = reply(container.invoke(other))
        assert int(headers["RateLimit-Remaining"]) == remaining[0]  # another client has its own count
    finally:
        container.close()


# ---------------------------------------------------------------- the schedule and the S3 trigger


def scheduled_rule_name(function: str, expression: str) -> str:
    """The EventBridge rule Zappa creates for a schedule, named by Zappa's own code for these settings."""
    code = (
        "import sys, json; from zappa.core import Zappa; e = json.loads(sys.argv[1]);"
        f"print(Zappa.__new__(Zappa).get_scheduled_event_name(e, e['function'], '{SETTINGS['dev']['project_name']}-{STAGE}'))"
    )
    event = json.dumps({"function": function, "expression": expression})
    return subprocess.run(
        [str(LAMBDA_PYTHON), "-c", code, event], check=True, capture_output=True, text=True
    ).stdout.strip()


def schedule_event(fired: str) -> dict:
    (daily,) = [e for e in SETTINGS[STAGE]["events"] if "expression" in e]
    rule = scheduled_rule_name(daily["function"], daily["expression"])
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": fired,
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
        "detail": {},
    }


def s3_event(key: str, size: int) -> dict:
    """An S3 ObjectCreated notification as S3 sends it to the function Zappa subscribed (Id = the function's name)."""
    bucket = bucket_and_prefix()[0]
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": datetime.now(UTC).isoformat(),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.9"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": f"{SETTINGS['dev']['project_name']}-{STAGE}",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote(key, safe="/"),
                        "size": size,
                        "eTag": "0123456789abcdef",
                        "sequencer": "0A1B2C3D4E5F",
                    },
                },
            }
        ]
    }


def s3_objects(client) -> dict[str, bytes]:
    bucket, prefix = bucket_and_prefix()
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    return {
        o["Key"].removeprefix(prefix + "/"): client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listing
    }


def expected_medians_version(objects: dict[str, bytes], tmp_path: Path) -> str:
    """What the trigger publishes for these raw days, computed here on a local copy."""
    local = LocalStore(tmp_path / "copy")
    for name, blob in objects.items():
        if name.startswith("raw/"):
            local.put(name, blob)
    return recompute_medians(local, LocalStore(tmp_path / "copy" / "published"), progress=lambda _: None).version


@pytest.mark.parametrize("stage", ["dev", "production"])
def test_each_stage_watches_its_own_store(stage):
    """The S3 event's bucket and prefix are STORE_URI's, and the functions it names exist in eta311.data.jobs."""
    from eta311.data import jobs

    config = {**SETTINGS["dev"], **SETTINGS[stage]}  # Zappa's "extends": the stage's keys over dev's
    assert config["app_function"] == "predict.app" and config["api_key_required"] and not config.get("slim_handler")
    bucket, _, prefix = config["environment_variables"]["STORE_URI"].removeprefix("s3://").partition("/")
    (upload,) = [e for e in config["events"] if "event_source" in e]
    assert upload["event_source"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert {"type": "prefix", "value": f"{prefix}/raw/"} in upload["event_source"]["key_filters"]
    for event in config["events"]:
        module, _, name = event["function"].rpartition(".")
        assert module == "eta311.data.jobs" and callable(getattr(jobs, name))


def test_the_schedule_fires_after_midnight_in_new_york():
    (daily,) = [e for e in SETTINGS[STAGE]["events"] if "expression" in e]
    minute, hour, *_ = re.fullmatch(r"cron\((.+)\)", daily["expression"]).group(1).split()
    for day in ("2019-01-15", "2019-07-15"):  # standard and daylight-saving time
        fired = datetime.fromisoformat(f"{day}T{int(hour):02d}:{int(minute):02d}:00+00:00")
        local = fired.astimezone(ZoneInfo("America/New_York"))
        assert local.date().isoformat() == day and 0 <= local.hour < 3


def test_the_nightly_schedule_collects_then_triggers(lam, s3, socrata, tmp_path):
    answer = lam.invoke(schedule_event("2019-05-13T05:30:00Z"))
    assert "error" not in answer, answer
    result = answer["result"]
    assert result["day"] == "2019-05-12" and result["store"] == store_uri()
    assert [c["day"] for c in result["collected"]] == ["2019-05-11", "2019-05-12"]
    assert sorted(result["failed"]) == [f"2019-05-{d:02d}" for d in range(6, 11)]  # days the fake has no records for
    objects = s3_objects(s3[1])
    for day in ("2019-05-11", "2019-05-12"):
        sent = decode_day((ROOT / "tests" / "fixtures" / "nyc311" / f"{day}.json.gz").read_bytes())
        stored = decode_day(objects[f"raw/{day}.json.gz"])
        assert sorted(r["unique_key"] for r in stored) == sorted(r["unique_key"] for r in sent)
    assert result["medians"]["published"] and result["medians"]["days_used"] == ["2019-05-11", "2019-05-12"]
    assert medians_version(objects["published/medians.json"]) == result["medians"]["version"]
    assert result["medians"]["version"] == expected_medians_version(objects, tmp_path)
    assert any("created_date >= '2019-05-12T00:00:00.000'" in r["params"].get("$where", "") for r in socrata.requests)


def test_an_upload_to_raw_runs_the_trigger(lam, s3, tmp_path):
    bucket, prefix = bucket_and_prefix()
    day = FIXTURE_DAYS[1]  # 2019-05-05, which the schedule above did not collect
    key = f"{prefix}/raw/{day.name}"
    s3[1].put_object(Bucket=bucket, Key=key, Body=day.read_bytes())
    answer = lam.invoke(s3_event(key, day.stat().st_size))
    assert "error" not in answer, answer
    result = answer["result"]
    assert result["keys"] == [key] and "2019-05-05" in result["medians"]["days_used"]
    objects = s3_objects(s3[1])
    assert medians_version(objects["published/medians.json"]) == result["medians"]["version"]
    assert result["medians"]["version"] == expected_medians_version(objects, tmp_path)


def test_an_upload_elsewhere_in_the_bucket_runs_nothing(lam, s3):
    bucket, prefix = bucket_and_prefix()
    before = s3[1].head_object(Bucket=bucket, Key=f"{prefix}/published/medians.json")["ETag"]
    result = lam.invoke(s3_event(f"{prefix}/published/medians.json", 10))["result"]
    assert result["keys"] == [] and result["medians"] is None
    assert s3[1].head_object(Bucket=bucket, Key=f"{prefix}/published/medians.json")["ETag"] == before


def test_a_night_whose_day_cannot_be_collected_fails_the_invocation(lam, s3):
    """Lambda counts the error (and retries the async invocation) when yesterday could not be collected."""
    answer = lam.invoke(schedule_event("2019-05-09T05:30:00Z"))  # yesterday, 2019-05-08, has no records
    assert answer["error"].startswith("JobFailed: 2019-05-08 was not collected")
    assert "raw/2019-05-08.json.gz" not in s3_objects(s3[1])


# ---------------------------------------------------------------- serverless.yml, packaged by osls


@pytest.fixture(scope="module")
def sls(tmp_path_factory):
    """`make serverless`: npm's osls packages serverless.yml offline, with no login; the zip unpacked as above."""
    done = subprocess.run(["make", "-s", "serverless"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    template = json.loads((ROOT / ".serverless" / "cloudformation-template-update-stack.json").read_text())
    dest = tmp_path_factory.mktemp("sls")
    zip_path = ROOT / ".serverless" / "eta311.zip"
    subprocess.run(
        [str(LAMBDA_PYTHON), "scripts/lambda_local.py", "unpack", str(zip_path), str(dest)], cwd=ROOT, check=True
    )
    return dest, template


def resources(template: dict, kind: str) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_serverless_yml_has_the_same_schedule_s3_event_and_keys_as_zappa(sls):
    _, template = sls
    (daily,) = [e for e in SETTINGS[STAGE]["events"] if "expression" in e]
    (upload,) = [e for e in SETTINGS[STAGE]["events"] if "event_source" in e]
    assert [r["ScheduleExpression"] for r in resources(template, "AWS::Events::Rule")] == [daily["expression"]]
    (s3_hook,) = resources(template, "Custom::S3")
    (config,) = s3_hook["BucketConfigs"]
    assert f"arn:aws:s3:::{s3_hook['BucketName']}" == upload["event_source"]["arn"]
    assert config["Event"] in upload["event_source"]["events"]
    assert [{k.lower(): v for k, v in rule.items()} for rule in config["Rules"]] == [
        {f["type"]: f["value"]} for f in upload["event_source"]["key_filters"]
    ]
    handlers = {f["Handler"] for f in resources(template, "AWS::Lambda::Function") if "Handler" in f}
    jobs = {h.replace("/", ".") for h in handlers if h.startswith("eta311/")}
    assert jobs == {daily["function"], upload["function"]} and "wsgi_handler.handler" in handlers
    methods = resources(template, "AWS::ApiGateway::Method")
    assert methods and all(m["ApiKeyRequired"] for m in methods)
    assert resources(template, "AWS::ApiGateway::UsagePlan") and resources(template, "AWS::ApiGateway::UsagePlanKey")


@pytest.fixture
def empty_s3():
    """A store of its own, empty: the jobs tests above publish medians into the shared one."""
    with moto_s3() as endpoint:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket_and_prefix()[0])
        yield endpoint


def test_serverless_package_answers_as_the_app_does(sls, empty_s3, reference, tmp_path):
    dest, template = sls
    zip_path = ROOT / ".serverless" / "eta311.zip"
    assert zip_path.stat().st_size <= 50 * MIB  # Lambda's direct-upload limit, as for Zappa's package
    assert sum(p.stat().st_size for p in (dest / "task").rglob("*") if p.is_file()) <= 120 * MIB
    names = {p.name for p in (dest / "task").iterdir()}
    assert {"wsgi_handler.py", "predict.py", "eta311", "numpy", "flask"} <= names
    assert not {"boto3", "botocore", "sklearn", "scipy", "pandas", "tests", "node_modules"} & names
    (api,) = [f for f in resources(template, "AWS::Lambda::Function") if f.get("Handler") == "wsgi_handler.handler"]
    env = {
        "PATH": os.environ["PATH"],
        **S3_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": empty_s3,
        **api["Environment"]["Variables"],
    }  # what the function's configuration sets
    container = Lambda(dest, env, tmp_path / "handler.log", handler="wsgi_handler.handler")
    try:
        expected = reference.get("/predict/noise - residential", query_string=SEED_QUERY).get_json()
        # serverless.yml's http events make a REST API; an httpApi event would use the $default stage.
        v1, v2 = (
            rest_event("GET", SEED_PATH, query=SEED_QUERY),
            http_event("GET", SEED_PATH, SEED_QUERY, stage="$default"),
        )
        for event in (v1, v2):
            status, _, body = reply(container.invoke(event))
            assert (status, body) == (200, expected)
        document = {"payload": gzip_payload({"records": [{"complaint_type": "heat/hot water"}]})}
        raw, headers = json_body(document)
        status, _, body = reply(container.invoke(rest_event("POST", "/predict", body=raw, headers=headers)))
        assert (status, body) == (200, reference.post("/predict", json=document).get_json())
        status, _, body = reply(container.invoke(http_event("GET", "/predict/unicorn", stage="$default")))
        assert status == 400 and body["problem"] == "Complaint type is not in database"
    finally:
        container.close()


# ---------------------------------------------------------------- the serving set


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            found[name.lower()] = version
    return found


TRAINING_ONLY = {"scikit-learn", "scipy", "pandas", "joblib", "threadpoolctl"}
GUNICORN_ONLY = {"gunicorn", "gevent"}  # the server and its worker class (eta311/web/worker.py); Lambda has neither


def test_the_serving_set_is_requirements_txt_without_training_libraries():
    """A library added to requirements.txt for the service must be added to requirements-serve.txt too."""
    serve, full = pins(ROOT / "requirements-serve.txt"), pins(ROOT / "requirements.txt")
    assert serve and all(full.get(name) == version for name, version in serve.items())
    assert not TRAINING_ONLY & set(serve)
    missing = set(full) - TRAINING_ONLY - GUNICORN_ONLY - set(serve)
    assert not missing, f"requirements-serve.txt (the Lambda package) lacks {sorted(missing)}"
