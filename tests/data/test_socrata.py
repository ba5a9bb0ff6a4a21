"""The collector against a local Socrata: paging, token, retries, refusals, atomic and repeatable writes."""

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest
from fake_socrata import FakeSocrata
from live import ROOT

from eta311.data.socrata import CollectError, RetryPolicy, SocrataClient, collect_day, day_filter, yesterday_in_new_york
from eta311.model.dataset import decode_day
from eta311.storage import LocalStore

FIXTURES = ROOT / "tests" / "fixtures"

DAY = date(2019, 5, 4)
FAST = RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05, connect_timeout=1, read_timeout=0.5)


@pytest.fixture(scope="module")
def records():
    return [
        r
        for path in sorted((FIXTURES / "nyc311").glob("*.json.gz"))
        for r in json.loads(gzip.decompress(path.read_bytes()))
    ]


@pytest.fixture
def socrata(records):
    with FakeSocrata(records, stall_seconds=1.5) as fake:
        yield fake


def day_records(records, day=DAY):
    return sorted(
        (r for r in records if r["created_date"].startswith(day.isoformat())), key=lambda r: int(r["unique_key"])
    )


def client(socrata, **kw):
    return SocrataClient(socrata.url, kw.pop("app_token", None), kw.pop("page_size", 250), FAST, **kw)


def test_pages_through_the_whole_day_in_order(socrata, records, tmp_path):
    store = LocalStore(tmp_path)
    done = collect_day(store, DAY, client(socrata, app_token="secret-token"), progress=lambda _: None)
    expected = day_records(records)
    assert done.records == len(expected) == 600 and done.duplicates == 0 and done.retries == 0
    assert decode_day(store.get("raw/2019-05-04.json.gz")) == expected
    offsets = [int(r["params"]["$offset"]) for r in socrata.requests]
    assert offsets == [0, 250, 500] and done.pages == 3
    first = socrata.requests[0]
    assert first["params"]["$order"] == "created_date,unique_key" and first["params"]["$limit"] == "250"
    assert first["params"]["$where"] == day_filter(DAY)
    assert first["headers"]["X-App-Token"] == "secret-token"


def test_an_exact_multiple_of_the_page_size_ends_on_an_empty_page(socrata, tmp_path):
    done = collect_day(LocalStore(tmp_path), DAY, client(socrata, page_size=200), progress=lambda _: None)
    assert done.records == 600 and [r["params"]["$offset"] for r in socrata.requests] == ["0", "200", "400", "600"]


@pytest.mark.parametrize("fault", ["timeout", "429", "500", "truncated"])
def test_transient_faults_are_retried(socrata, records, tmp_path, fault):
    store = LocalStore(tmp_path)
    socrata.fail(fault, fault)  # the first page fails twice, then succeeds
    done = collect_day(store, DAY, client(socrata), progress=lambda _: None)
    assert done.retries == 2 and done.records == 600
    assert decode_day(store.get("raw/2019-05-04.json.gz")) == day_records(records)


def test_rows_shifting_between_pages_are_deduplicated(socrata, records, tmp_path):
    socrata.fail("429", "repeat")
    done = collect_day(LocalStore(tmp_path), DAY, client(socrata), progress=lambda _: None)
    assert done.duplicates == 1 and done.records == 600
    assert decode_day(LocalStore(tmp_path).get("raw/2019-05-04.json.gz")) == day_records(records)


def test_collecting_twice_gives_the_same_file(socrata, tmp_path):
    store = LocalStore(tmp_path)
    first = collect_day(store, DAY, client(socrata), progress=lambda _: None)
    socrata.fail("repeat")
    second = collect_day(store, DAY, client(socrata, page_size=100), progress=lambda _: None)
    assert first.version == second.version


def test_a_failed_day_leaves_the_previous_file(socrata, tmp_path):
    store = LocalStore(tmp_path)
    collect_day(store, DAY, client(socrata), progress=lambda _: None)
    before = store.get("raw/2019-05-04.json.gz")
    socrata.fail("500", "500", "500", "500")  # every attempt at the first page
    with pytest.raises(CollectError, match="failed 4 times; last: HTTP 500"):
        collect_day(store, DAY, client(socrata), progress=lambda _: None)
    assert store.get("raw/2019-05-04.json.gz") == before
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["2019-05-04.json.gz"]  # no temporary left behind


def test_a_failure_on_a_later_page_writes_nothing(socrata, tmp_path, monkeypatch):
    real_query = socrata.query

    def second_page_breaks(params):
        if params.get("$offset") == "250":
            raise ValueError("unsupported $where: broken on purpose")
        return real_query(params)

    monkeypatch.setattr(socrata, "query", second_page_breaks)
    with pytest.raises(CollectError, match="HTTP 400"):
        collect_day(LocalStore(tmp_path), DAY, client(socrata), progress=lambda _: None)
    assert len(socrata.requests) == 2 and not (tmp_path / "raw").exists()


def test_an_error_object_is_not_data(socrata, tmp_path):
    socrata.fail("object")
    with pytest.raises(CollectError, match="not a JSON array"):
        collect_day(LocalStore(tmp_path), DAY, client(socrata), progress=lambda _: None)
    assert not (tmp_path / "raw").exists()


def test_an_empty_day_is_refused(socrata, tmp_path):
    with pytest.raises(CollectError, match="no requests created on 2019-05-06"):
        collect_day(LocalStore(tmp_path), date(2019, 5, 6), client(socrata), progress=lambda _: None)


def test_yesterday_is_new_yorks_yesterday():
    # 03:00 UTC on 22 Nov is still 21 Nov in New York, so yesterday there is 20 Nov.
    assert yesterday_in_new_york(datetime(2026, 11, 22, 3, 0, tzinfo=UTC)) == date(2026, 11, 20)
    assert yesterday_in_new_york(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) == date(2026, 11, 21)


def test_collect_script_writes_the_days(socrata, tmp_path):
    env = {**os.environ, "SOCRATA_URL": socrata.url, "SOCRATA_APP_TOKEN": "from-env", "STORE_URI": str(tmp_path)}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "collect.py"),
            "--date",
            "2019-05-05",
            "--days",
            "2",
            "--page-size",
            "500",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "raw/2019-05-04.json.gz: 600 records" in out and "raw/2019-05-05.json.gz: 600 records" in out
    assert {r["headers"]["X-App-Token"] for r in socrata.requests} == {"from-env"}
