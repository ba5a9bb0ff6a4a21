"""The model and medians being served: load, check, swap, and keep the last good version."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field

from eta311.model.artifact import MEDIANS, MODEL_CARD, RELOAD_FAILURES, check_medians, load_model, medians_version
from eta311.model.estimator import ETAModel
from eta311.storage import Store, StoreError
from eta311.web import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Everything one request reads, swapped as a whole so no request sees half an update."""

    medians: dict[str, float] = field(default_factory=dict)
    medians_version: str | None = None
    model: ETAModel | None = None
    card: dict | None = None

    @property
    def model_version(self) -> str | None:
        return None if self.card is None else self.card["version"]


class ModelStore:
    """Holds the current Snapshot; a per-process thread polls the store and swaps in new versions.

    Sources are tried in order (the published store, then the bundled folder). Once a file is
    served from a source, only that source or an earlier one may replace it: a store that goes
    missing or down leaves the last good version in place rather than falling back to an older one.
    """

    def __init__(self, store: Store, reload_interval_seconds: int = 30, fallback: Store | None = None):
        self.sources: list[Store] = [store] + ([fallback] if fallback is not None else [])
        self.interval = reload_interval_seconds
        self._snapshot = Snapshot()
        self._tokens: dict[str, tuple[int, str] | None] = {MEDIANS: None, MODEL_CARD: None}
        self._refused: dict[str, tuple[tuple[int, str], str]] = {}  # name -> (token, why) of a bad publish
        self._lock = threading.Lock()
        self._poller_pid: int | None = None
        self.last_error: str | None = None
        # A fork copies a lock as it is: held by a thread that does not exist in the child, it would
        # block the child forever. Each child (a Gunicorn worker) starts with a fresh lock and its own
        # poller at once: one started at its first request would leave an idle worker stale.
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (store := reference()) and store._after_fork())

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._poller_pid = None
        metrics.serving(self._snapshot.model_version, self._snapshot.medians_version)
        if self.interval:
            self._start_poller()

    @property
    def current(self) -> Snapshot:
        """The current version, without starting a poller (for the process that will fork workers)."""
        return self._snapshot

    @property
    def snapshot(self) -> Snapshot:
        """The current version; starts this process's poller first (threads do not survive a fork)."""
        if self.interval and self._poller_pid != os.getpid():
            self._start_poller()
        return self._snapshot

    def _changed(self, name: str) -> tuple[Store, tuple[int, str]] | None:
        """The source and token of name if it differs from what is served and was not already refused."""
        current = self._tokens[name]
        last_allowed = current[0] if current else len(self.sources) - 1
        for index, source in enumerate(self.sources[: last_allowed + 1]):
            token = source.token(name)
            if token is not None:
                found = (index, token)
                if found == current or (name in self._refused and self._refused[name][0] == found):
                    return None
                self._refused.pop(name, None)
                return source, found
        return None

    def refresh(self) -> bool:
        """Load whatever changed since the last look; True if a new version was swapped in."""
        with self._lock:
            old = self._snapshot
            loaded = {
                "medians": old.medians,
                "medians_version": old.medians_version,
                "model": old.model,
                "card": old.card,
            }
            failures = []
            for name in (MEDIANS, MODEL_CARD):
                found = None
                try:
                    if (found := self._changed(name)) is None:
                        continue
                    source, token = found
                    if name == MEDIANS:
                        blob = source.get(MEDIANS)
                        loaded.update(medians=check_medians(blob), medians_version=medians_version(blob))
                    else:
                        card = json.loads(source.get(MODEL_CARD))
                        loaded.update(model=load_model(card, source.get), card=card)
                    self._tokens[name] = token
                    metrics.reloaded("medians" if name == MEDIANS else "model")
                except RELOAD_FAILURES as exc:
                    why = f"{type(exc).__name__}: {exc}"
                    failures.append(why)
                    if found and not isinstance(exc, StoreError):  # a bad file stays bad: do not reload it every poll
                        self._refused[name] = (found[1], why)
                        metrics.publish_refused("medians" if name == MEDIANS else "model")
            # A refused publish still in place keeps /health degraded until something good replaces it.
            self.last_error = "; ".join(failures) or next((why for _, why in self._refused.values()), None)
            new = Snapshot(**loaded)
            if failures:
                log.error(
                    "kept serving medians %s and model %s: %s", new.medians_version, new.model_version, self.last_error
                )
            if (new.medians_version, new.model_version) == (old.medians_version, old.model_version):
                return False
            self._snapshot = new
            metrics.serving(new.model_version, new.medians_version)
            log.info("now serving medians %s and model %s", new.medians_version, new.model_version)
            return True

    def _start_poller(self) -> None:
        with self._lock:
            if self._poller_pid == os.getpid():
                return
            self._poller_pid = os.getpid()
        threading.Thread(target=self._poll, name="model-store-poller", daemon=True).start()

    def _poll(self) -> None:
        # Refresh first: a worker forked long after the master loaded (a recycled one) starts current.
        while True:
            try:
                self.refresh()
            except Exception:  # the poller must outlive any surprise; the last good version stays
                log.exception("model store poll failed")
            time.sleep(self.interval)
