"""The store interface against a real S3 API server (moto in server mode) through boto3."""

import json

import boto3
import pytest
from live import S3_CREDENTIALS, free_port, moto_s3

from eta311.data.publish import publish_medians, publish_trained_model
from eta311.model.artifact import MEDIANS
from eta311.storage import S3Store, StoreError, content_version, open_store
from eta311.web.served import ModelStore


@pytest.fixture(scope="module")
def endpoint():
    with moto_s3() as url:
        yield url


@pytest.fixture
def bucket(endpoint, monkeypatch, request):
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    name = "eta-" + request.node.name.lower().replace("_", "-")[:40]
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


def test_put_get_list_and_tokens(endpoint, bucket):
    store = open_store(f"s3://{bucket}/pipeline", endpoint)
    assert isinstance(store, S3Store) and store.token("raw/2019-05-04.json.gz") is None
    version = store.put("raw/2019-05-04.json.gz", b"first")
    store.put("published/medians.json", b"{}")
    assert version == content_version(b"first") and store.get("raw/2019-05-04.json.gz") == b"first"
    assert store.list("raw/") == ["raw/2019-05-04.json.gz"]
    assert store.list() == ["published/medians.json", "raw/2019-05-04.json.gz"]
    token = store.token("raw/2019-05-04.json.gz")
    assert store.tokens("raw/") == {"raw/2019-05-04.json.gz": token}
    store.put("raw/2019-05-04.json.gz", b"second")
    assert store.token("raw/2019-05-04.json.gz") != token
    head = boto3.client("s3", endpoint_url=endpoint).head_object(Bucket=bucket, Key="pipeline/raw/2019-05-04.json.gz")
    assert head["Metadata"]["sha256"] == content_version(b"second")  # every object carries its version


def test_missing_objects_and_buckets_are_store_errors(endpoint, bucket):
    with pytest.raises(StoreError, match="cannot read"):
        open_store(f"s3://{bucket}", endpoint).get("nothing-here")
    with pytest.raises(StoreError, match="cannot list"):
        open_store("s3://no-such-bucket", endpoint).list("raw/")


def test_an_unreachable_endpoint_fails_fast(bucket):
    import time

    store = open_store(f"s3://{bucket}", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(StoreError):
        store.token(MEDIANS)
    assert time.monotonic() - started < 15


def test_model_store_loads_and_swaps_from_s3(endpoint, bucket, tiny_run):

    store = open_store(f"s3://{bucket}/published", endpoint)
    card = publish_trained_model(store, tiny_run.model, tiny_run.card)
    publish_medians(store, tiny_run.medians)
    models = ModelStore(store, reload_interval_seconds=0)
    assert models.refresh() and models.snapshot.model_version == card["version"]
    assert not models.refresh()  # unchanged ETags: nothing is fetched again
    publish_medians(store, {**tiny_run.medians, "rodent": 4321.0})
    assert models.refresh() and models.snapshot.medians["rodent"] == 4321.0
    store.put(MEDIANS, json.dumps({"rodent": -1}).encode())
    assert not models.refresh() and models.snapshot.medians["rodent"] == 4321.0 and "bad value" in models.last_error
