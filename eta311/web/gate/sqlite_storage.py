"""A `limits` storage in one SQLite file, so the workers of one machine share counters without Redis."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time

from limits.storage import Storage


class SqliteStorage(Storage):
    """Fixed-window counters; each update is one atomic statement, safe across processes and threads."""

    STORAGE_SCHEME = ["sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        self.path = uri.split("://", 1)[1].removeprefix("/")  # sqlite:////dev/shm/x.sqlite -> /dev/shm/x.sqlite
        self._local = threading.local()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        # One connection per thread and per process: SQLite connections must not cross a fork.
        if getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # counters, not records: losing them in a crash is fine
            db.execute(
                "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)"
            )
            self._local.db, self._local.pid = db, os.getpid()
        return self._local.db

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        db = self._db()
        if random.random() < 0.001:  # expired windows are dead weight; sweep them now and then
            db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
        (count,) = db.execute(
            "INSERT INTO counters (key, count, expires) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET"
            " count = CASE WHEN expires <= ?4 THEN ?2 ELSE count + ?2 END,"
            " expires = CASE WHEN expires <= ?4 THEN ?3 ELSE expires END RETURNING count",
            (key, amount, now + expiry, now),
        ).fetchone()
        return count

    def get(self, key: str) -> int:
        row = (
            self._db()
            .execute("SELECT count FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = (
            self._db()
            .execute("SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        return self._db().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))
