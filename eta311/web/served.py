"""The model and medians being served: load, check, swap, keep the last good version, and say what is wrong."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from eta311.model import type_stats
from eta311.model.artifact import MEDIANS, MODEL_CARD, ArtifactRejected, check_medians, load_model, medians_version
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
    # The model's fresh inputs (type_stats.json, published daily by the trigger); None: its own.
    stats: dict[str, tuple[float, ...]] | None = None
    stats_version: str | None = None

    @property
    def model_version(self) -> str | None:
        return None if self.card is None else self.card["version"]


Fetch = Callable[[str], bytes]
# Beside the published files, the service keeps a copy of the last version of each that it loaded
# and checked, so that a worker started while a bad file is published (a cold start, a recycled
# worker) serves that version too, not the older bundled one and not nothing.
LAST_GOOD = "last-good/"
ORIGINS = ("published", "last-good", "bundled")


@dataclass(frozen=True)
class Artifact:
    """One published file: how its bytes (and the files they name) become Snapshot fields."""

    name: str
    kind: str  # the label in metrics and logs
    load: Callable[[bytes, Fetch], dict]  # any exception means "refused"
    version: Callable[[Snapshot], str | None]


def _load_medians(blob: bytes, fetch: Fetch) -> dict:
    return {"medians": check_medians(blob), "medians_version": medians_version(blob)}


def _load_model(blob: bytes, fetch: Fetch) -> dict:
    card = json.loads(blob)
    if not isinstance(card, dict):
        raise ArtifactRejected("model_card.json must be a JSON object")
    return {"model": load_model(card, fetch), "card": card}


def _load_stats(blob: bytes, fetch: Fetch) -> dict:
    return {"stats": type_stats.parse(blob), "stats_version": type_stats.version(blob)}


# Each reloads on its own: one refused never holds back another. A new published file is one entry here.
ARTIFACTS = (
    Artifact(MEDIANS, "medians", _load_medians, lambda s: s.medians_version),
    Artifact(MODEL_CARD, "model", _load_model, lambda s: s.model_version),
    Artifact(type_stats.TYPE_STATS, "statistics", _load_stats, lambda s: s.stats_version),
)


def _why(exc: BaseException) -> str:
    kind = type(exc)
    name = (
        kind.__name__
        if kind.__module__ in ("builtins", "eta311.model.artifact")
        else f"{kind.__module__}.{kind.__name__}"
    )
    return f"{name}: {exc}"


class ModelStore:
    """Holds the current Snapshot; a per-process thread polls the store and swaps in new versions.

    For each artifact, in order of preference: the published file; if it is refused or missing,
    the version already served from the store, else the store's copy of the last good one
    (LAST_GOOD), else the bundled one. Any exception while loading or checking is a refusal: the
    last good version stays, and every reason is in last_error (so /health says degraded) until
    a good version replaces it. A published file that vanishes is reported, not silently served on.
    """

    def __init__(
        self,
        store: Store,
        reload_interval_seconds: int = 30,
        fallback: Store | None = None,
        record_last_good: bool = False,
    ):
        self.record_last_good = record_last_good  # off for tools that read a folder they must not write to
        self.sources: list[Store] = [store] + ([fallback] if fallback is not None else [])
        self.interval = reload_interval_seconds
        self._snapshot = Snapshot()
        self._served: dict[str, tuple[str, str]] = {}  # name -> (origin, token) of what is served
        self._refused: dict[str, tuple[str, str]] = {}  # path -> (token, why): a bad file stays bad
        self._problems: dict[str, str] = {}  # name -> what is wrong with it now
        self._recorded: dict[str, bytes] = {}  # name -> the bytes this process knows are in LAST_GOOD
        self._lock = threading.Lock()
        self._poller_pid: int | None = None
        self.last_error: str | None = None
        # A fork copies a lock as it is: held by a thread that does not exist in the child, it would
        # block the child forever. Each child (a Gunicorn worker) starts with a fresh lock and its own
        # poller at once: one started at its first request would leave an idle worker stale.
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (store := reference()) and store._after_fork())

    @property
    def published(self) -> Store:
        return self.sources[0]

    @property
    def fallback(self) -> Store | None:
        return self.sources[1] if len(self.sources) > 1 else None

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
        if self.interval and self._poller_pid != metrics.process_id():
            self._start_poller()
        return self._snapshot

    @property
    def problems(self) -> dict[str, str]:
        return dict(self._problems)

    def refresh(self) -> bool:
        """Look at every artifact; True if a new version of any was swapped in."""
        with self._lock:
            old = self._snapshot
            changes: dict = {}
            for artifact in ARTIFACTS:
                try:
                    changes.update(self._refresh_one(artifact, old))
                except Exception as exc:  # noqa: BLE001 - a surprise in one artifact never stops the others
                    self._problems[artifact.name] = f"could not reload: {_why(exc)}"
            new = replace(old, **changes)
            reasons = "; ".join(f"{name}: {why}" for name, why in sorted(self._problems.items())) or None
            if reasons and reasons != self.last_error:
                log.error("kept serving medians %s and model %s: %s", new.medians_version, new.model_version, reasons)
            self.last_error = reasons
            if all(a.version(new) == a.version(old) for a in ARTIFACTS):
                return False
            self._snapshot = new
            metrics.serving(new.model_version, new.medians_version)
            log.info("now serving medians %s, model %s, statistics %s", *(a.version(new) for a in ARTIFACTS))
            return True

    def _refresh_one(self, artifact: Artifact, old: Snapshot) -> dict:
        """The Snapshot fields to change for one artifact ({} to keep it), noting what is wrong with it."""
        name, store = artifact.name, self.published
        try:
            token = store.token(name)
        except Exception as exc:  # noqa: BLE001 - the store is unreachable: keep what is served
            self._problems[name] = f"cannot look at {store.uri}: {_why(exc)}"
            return self._at_least_last_good(artifact)
        if token is None:
            changes = self._at_least_last_good(artifact)
            origin = self._served.get(name, ("",))[0]
            if origin in ("published", "last-good"):
                served = artifact.version(replace(old, **changes))
                self._problems[name] = f"vanished from {store.uri}; still serving {served}"
            else:
                self._problems.pop(name, None)  # nothing published yet: the bundled version is the right one
            return changes
        if self._served.get(name) == ("published", token):
            self._problems.pop(name, None)
            return {}
        refused = self._refused.get(name)
        if refused and refused[0] == token:
            self._problems[name] = refused[1]
            return self._at_least_last_good(artifact)
        try:
            blob = store.get(name)
            changes = artifact.load(blob, store.get)
        except Exception as exc:  # noqa: BLE001 - any failure to load or check is a refusal
            why = f"refused {store.uri}/{name}: {_why(exc)}"
            if not isinstance(exc, StoreError):  # a file that cannot be read may be readable next time
                self._refused[name] = (token, why)
                metrics.publish_refused(artifact.kind)
            self._problems[name] = why
            return self._at_least_last_good(artifact)
        self._served[name] = ("published", token)
        self._refused.pop(name, None)
        self._problems.pop(name, None)
        metrics.reloaded(artifact.kind)
        self._record_last_good(name, blob)
        return changes

    def _at_least_last_good(self, artifact: Artifact) -> dict:
        """Fields for the best version there is when the published one cannot be served."""
        origin = self._served.get(artifact.name, ("",))[0]
        if origin in ("published", "last-good"):
            return {}  # what this process serves is already the last good version
        changes = self._load_from(artifact, self.published, LAST_GOOD + artifact.name, "last-good")
        if changes is None and origin == "" and self.fallback is not None:
            changes = self._load_from(artifact, self.fallback, artifact.name, "bundled")
        return changes or {}

    def _load_from(self, artifact: Artifact, store: Store, path: str, origin: str) -> dict | None:
        token = None
        try:
            token = store.token(path)
            if token is None or self._refused.get(path, ("",))[0] == token:
                return None
            changes = artifact.load(store.get(path), self.published.get if origin != "bundled" else store.get)
        except Exception as exc:  # noqa: BLE001 - the next source is tried
            why = f"{origin} copy refused: {_why(exc)}"
            if token is not None:
                self._refused[path] = (token, why)
            log.error("%s/%s: %s", store.uri, path, why)
            return None
        self._served[artifact.name] = (origin, token)
        return changes

    def _record_last_good(self, name: str, blob: bytes) -> None:
        """Keep a copy of a version that loaded and passed its checks, for processes that start later."""
        if not self.record_last_good or self._recorded.get(name) == blob:
            return
        path = LAST_GOOD + name
        try:
            if self.published.token(path) is None or self.published.get(path) != blob:
                self.published.put(path, blob)
            self._recorded[name] = blob
        except Exception as exc:  # noqa: BLE001 - serving goes on; only a later cold start would miss it
            log.warning("could not record the last good %s in %s: %s", name, self.published.uri, _why(exc))

    def _start_poller(self) -> None:
        with self._lock:
            if self._poller_pid == metrics.process_id():
                return
            self._poller_pid = metrics.process_id()
        threading.Thread(target=self._poll, name="model-store-poller", daemon=True).start()

    def _poll(self) -> None:
        # Refresh first: a worker forked long after the master loaded (a recycled one) starts current.
        while True:
            try:
                self.refresh()
            except Exception:  # the poller must outlive any surprise; the last good version stays
                log.exception("model store poll failed")
            time.sleep(self.interval)
