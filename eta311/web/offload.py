"""CPU-heavy work off the gevent loop: a native thread keeps the loop answering while a large batch computes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def patched_by_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def off_loop(work: Callable[..., T], *args: object) -> T:
    """work(*args) in gevent's native thread pool when the worker is gevent's, else right here.

    A greenlet never yields while it computes, so a 10,000-row batch (about half a second) would
    hold every other request of its worker. In a native thread the loop keeps its turns at the GIL
    (every 5 ms), as threads did under gthread. `work` must be plain computation: no sockets, no
    Flask context (a gevent socket belongs to the loop's thread).
    """
    if not patched_by_gevent():
        return work(*args)
    import gevent

    return _returned(*gevent.get_hub().threadpool.apply(_outcome, (work, args)))


def _outcome(work: Callable[..., T], args: tuple) -> tuple[bool, Any]:
    """(False, work's result) or (True, what it raised), handed back as a value: gevent prints to
    stderr every exception raised in its pool, so a client's 4xx would read as a crash in the log."""
    try:
        return False, work(*args)
    except Exception as error:
        return True, error


def _returned(failed: bool, outcome: Any) -> Any:
    """outcome, or raised (with the frames it was raised in) when it is what the work raised.

    Dropped from this frame as it leaves: else the traceback would hold this frame, which holds
    the error, and the work's frames (a large body's rows) would wait for the cyclic GC.
    """
    if not failed:
        return outcome
    try:
        raise outcome
    finally:
        del outcome
