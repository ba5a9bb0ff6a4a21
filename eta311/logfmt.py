"""Log lines as logfmt (key=value, one line each) on stdout, carrying the current request's fields."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar

# The fields of the request this thread (or greenlet) is serving: request_id, then key_id and
# model_version once known. Every line logged while serving it carries them.
request_fields: ContextVar[dict | None] = ContextVar("request_fields", default=None)

_NEEDS_QUOTES = frozenset(' "=\\\t\n\r\f\v')


def annotate(**fields: object) -> None:
    """Add fields to the current request's log lines (no-op outside a request)."""
    current = request_fields.get()
    if current is not None:
        current.update(fields)


def logfmt_value(value: object) -> str:
    text = value if type(value) is str else ("" if value is None else str(value))
    if text and _NEEDS_QUOTES.isdisjoint(text):
        return text
    # Quoted, with newlines escaped: a traceback stays one line, so log routers never split it.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "") + '"'


class LogfmtFormatter(logging.Formatter):
    """ts=... level=... logger=... msg=... then the record's own `fields`, then the request's."""

    _second, _stamp = -1, ""

    def line(self, created: float, level: str, logger: str, msg: str, *sources: dict | None) -> str:
        second = int(created)
        if second != self._second:  # one strftime a second, not one a line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        parts = [
            f"ts={self._stamp}.{int((created - second) * 1000):03d}Z level={level} logger={logger}"
            f" msg={logfmt_value(msg)}"
        ]
        for source in sources:
            if source:
                for key, value in source.items():
                    if value is not None:
                        parts.append(f"{key}={logfmt_value(value)}")
        return " ".join(parts)

    def format(self, record: logging.LogRecord) -> str:
        # The record's own fields first (a request line reads method, route, status...), then the request's.
        text = self.line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            getattr(record, "fields", None),
            request_fields.get(),
        )
        if record.exc_info:
            text += f" exc={logfmt_value(self.formatException(record.exc_info))}"
        return text


def log_info_line(logger: logging.Logger, msg: str, fields: dict) -> None:
    """logger.info(msg) with fields, written straight to the root's logfmt stream handlers (stdout).

    One line per request: the logging module's record and handler chain cost several times the line
    itself (more under gevent, whose locks are Python code): scripts/bench_observability.py.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    line = None
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if isinstance(formatter, LogfmtFormatter) and isinstance(handler, logging.StreamHandler):
            if handler.level > logging.INFO:
                continue
            if line is None:
                line = formatter.line(time.time(), "info", logger.name, msg, fields, request_fields.get()) + "\n"
            # No handler lock (under gevent a pure-Python RLock, a third of the line's cost): one
            # write of a whole line; the workers' only other threads compute batches and never log.
            handler.stream.write(line)
            handler.stream.flush()


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
