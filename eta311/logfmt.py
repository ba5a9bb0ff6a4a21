"""Log lines as logfmt (key=value, one line each) on stdout, carrying the current request's fields."""

from __future__ import annotations

import logging
import re
import sys
import time
from contextvars import ContextVar

# The fields of the request this thread (or greenlet) is serving: request_id, then key_id and
# model_version once known. Every line logged while serving it carries them.
request_fields: ContextVar[dict | None] = ContextVar("request_fields", default=None)

_QUOTE = re.compile(r'[\s"=\\]')


def annotate(**fields: object) -> None:
    """Add fields to the current request's log lines (no-op outside a request)."""
    current = request_fields.get()
    if current is not None:
        current.update(fields)


def logfmt_value(value: object) -> str:
    text = "" if value is None else str(value)
    if text and not _QUOTE.search(text):
        return text
    # Quoted, with newlines escaped: a traceback stays one line, so log routers never split it.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "") + '"'


class LogfmtFormatter(logging.Formatter):
    """ts=... level=... logger=... msg=... then the record's own `fields`, then the request's."""

    _second, _stamp = -1, ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime a second, not one a line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        parts = [
            f"ts={self._stamp}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={logfmt_value(record.getMessage())}",
        ]
        # The record's own fields first (a request line reads method, route, status...), then the request's.
        for source in (getattr(record, "fields", None), request_fields.get()):
            if source:
                parts.extend(f"{key}={logfmt_value(value)}" for key, value in source.items() if value is not None)
        if record.exc_info:
            parts.append(f"exc={logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_root(level: str | int) -> None:
    """The root logger writes logfmt to stdout (Heroku's log router reads stdout); once per process."""
    # A line per request: skip what every record would otherwise look up and no line here prints
    # (caller's file and line, thread, process names), which is 40% of a record's cost. These are
    # the switches the logging HOWTO's "Optimization" section names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    if not any(getattr(handler, "_eta311", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(LogfmtFormatter())
        handler._eta311 = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
