"""Bytes at a local folder or an s3:// address: list, read, atomic write, and a cheap change token."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse


class StoreError(RuntimeError):
    """The store could not be read or written (missing object, network, permissions)."""


def content_version(blob: bytes) -> str:
    """Every published object is named by its content: the same bytes, the same version."""
    return hashlib.sha256(blob).hexdigest()


class Store(Protocol):
    uri: str

    def get(self, name: str) -> bytes: ...
    def put(self, name: str, blob: bytes) -> str: ...
    def token(self, name: str) -> str | None: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def tokens(self, prefix: str = "") -> dict[str, str]: ...


class LocalStore:
    """A folder; writes go to a temporary file in the same folder and are renamed into place."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def get(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {self.root / name}: {exc}") from exc

    def put(self, name: str, blob: bytes) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o644)  # mkstemp makes 0600; published files are meant to be read
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return content_version(blob)

    def token(self, name: str) -> str | None:
        try:
            stat = (self.root / name).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot stat {self.root / name}: {exc}") from exc
        return f"{stat.st_mtime_ns}-{stat.st_size}-{stat.st_ino}"

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.tokens(prefix))

    def tokens(self, prefix: str = "") -> dict[str, str]:
        """Every object under prefix with its change token; dot files are writes still in flight."""
        base = self.root / prefix
        if not base.is_dir():
            return {}
        found = {}
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                name = str(path.relative_to(self.root))
                if (token := self.token(name)) is not None:
                    found[name] = token
        return found


class S3Store:
    """A bucket and key prefix through boto3; a single PUT is atomic, the ETag is the change token."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        import boto3  # only deployments that use S3 pay for importing it
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        # Short timeouts and few retries: a web worker polling the store must never hang on it.
        config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
        self.client = boto3.client("s3", endpoint_url=endpoint_url, config=config)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def get(self, name: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except Exception as exc:
            raise StoreError(f"cannot read {self.uri}/{name}: {exc}") from exc

    def put(self, name: str, blob: bytes) -> str:
        try:
            version = content_version(blob)
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=blob, Metadata={"sha256": version})
        except Exception as exc:
            raise StoreError(f"cannot write {self.uri}/{name}: {exc}") from exc
        return version

    def token(self, name: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(name))["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"cannot check {self.uri}/{name}: {exc}") from exc
        except Exception as exc:
            raise StoreError(f"cannot check {self.uri}/{name}: {exc}") from exc

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.tokens(prefix))

    def tokens(self, prefix: str = "") -> dict[str, str]:
        """Every object under prefix with its ETag, from the listing alone (no request per object)."""
        found = {}
        full_prefix = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    found[key[len(self.prefix) + 1 :] if self.prefix else key] = item["ETag"]
        except Exception as exc:
            raise StoreError(f"cannot list {self.uri}/{prefix}: {exc}") from exc
        return found


def open_store(uri: str, endpoint_url: str | None = None) -> Store:
    """A folder path, file://path or s3://bucket/prefix; the endpoint serves S3-compatible stores."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return S3Store(parsed.netloc, parsed.path, endpoint_url)
    if parsed.scheme == "file":
        return LocalStore(parsed.path)
    if parsed.scheme:
        raise ValueError(f"unsupported store address {uri!r}: use a folder, file:// or s3://")
    return LocalStore(uri)
