"""Memory a worker's batches freed, handed back to the system when its last batch is answered."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable

from flask import Response

from eta311.web.offload import patched_by_gevent


def _libc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where there is none (another libc, another system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _libc_trim()


class IdleTrim:
    """Counts the large requests a worker has in hand; when the last one's answer is sent, gives the
    free pages of the C heap back to the system (glibc's malloc_trim).

    A 10,000-row batch allocates tens of MB (the body, its rows, the model's arrays, the answer).
    glibc keeps what they free for later use, so a worker that has served batches stays tens of MB
    larger than it needs to be while idle. Trimming after every batch would make the next one fault
    those pages back in; trimming only when none is left to do costs a busy worker nothing.
    Only the gevent worker (the Procfile's) trims: it can wait a moment for the answer's own bytes
    to be freed and see that no batch began meanwhile. Elsewhere (a sync worker, a test client, the
    bench's in-process call) a trim right after each answer made the next batch 1-5 ms slower.
    """

    def __init__(
        self,
        trim: Callable[[int], int] | None = _TRIM,
        schedule: Callable[[float, Callable[[], None]], None] | None = None,
    ):
        self._trim = trim
        self._schedule = schedule
        self._lock = threading.Lock()
        self.in_hand = 0
        self.trims = 0

    def begin(self) -> None:
        with self._lock:
            self.in_hand += 1

    def end(self) -> None:
        with self._lock:
            self.in_hand -= 1
            idle = self.in_hand == 0
        schedule = self._schedule or (_gevent_later if patched_by_gevent() else None)
        if idle and self._trim is not None and schedule is not None:
            schedule(TRIM_DELAY_SECONDS, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        # Run a moment after the answer is sent, when its bytes are freed too; not if another began since.
        if self.in_hand == 0 and self._trim is not None:
            self.trims += 1
            in_thread(self._trim, 0)

    def after_sending(self, response: Response) -> Response:
        """response, with end() to run once it has been sent (or dropped)."""
        response.call_on_close(self.end)
        return response


TRIM_DELAY_SECONDS = 0.05


def _gevent_later(seconds: float, work: Callable[[], None]) -> None:
    import gevent

    gevent.spawn_later(seconds, work)


def in_thread(work: Callable[[int], int], *args: int) -> None:
    """work(*args) in gevent's native thread pool without waiting for it (the loop keeps answering), else here."""
    if patched_by_gevent():
        import gevent

        gevent.get_hub().threadpool.spawn(work, *args)
    else:
        work(*args)
