"""CPU-heavy work off the gevent loop: a native thread keeps the loop answering while a large batch computes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

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

    return gevent.get_hub().threadpool.apply(work, args)
