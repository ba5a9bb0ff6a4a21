"""The model and medians being served: load, check, swap, and keep the last good version."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .artifacts import Store, StoreError, content_version
from .model import ETAModel
from .publish import MEDIANS, MODEL_CARD

log = logging.getLogger(__name__)


class ArtifactRejected(ValueError):
    """A published model or medians file that must not be served."""


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


def check_medians(blob: bytes) -> dict[str, float]:
    try:
        medians = json.loads(blob)
    except ValueError as exc:
        raise ArtifactRejected(f"medians.json is not JSON: {exc}") from None
    if not isinstance(medians, dict) or not medians:
        raise ArtifactRejected("medians.json must be a non-empty object of complaint type to hours")
    for name, hours in medians.items():
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours) or hours < 0:
            raise ArtifactRejected(f"medians.json has a bad value for {name!r}: {hours!r}")
    return {str(k).lower(): float(v) for k, v in medians.items()}


def load_model(card: dict, artifact: bytes) -> ETAModel:
    """Unpickle only what its card vouches for, built by this very scikit-learn, and try it once."""
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

    expected = card["artifact"]["sha256"]
    if content_version(artifact) != expected:
        raise ArtifactRejected(f"artifact sha256 {content_version(artifact)[:12]} does not match its card ({expected[:12]})")
    built_with = card.get("libraries", {}).get("scikit-learn")
    if built_with != sklearn.__version__:
        raise ArtifactRejected(f"model built with scikit-learn {built_with}, this service runs {sklearn.__version__}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            model = pickle.loads(artifact)
        except InconsistentVersionWarning as exc:
            raise ArtifactRejected(str(exc)) from None
    if not isinstance(model, ETAModel):
        raise ArtifactRejected(f"artifact holds a {type(model).__name__}, not an ETAModel")
    probe = model.predict_matrix(model.features(["noise - residential"], [40.7], [-73.9], ["2019-06-08 00:00:09"]))
    if not np.isfinite(probe).all():
        raise ArtifactRejected("model gives non-finite predictions")
    return model


class ModelStore:
    """Holds the current Snapshot; a per-process thread polls the store and swaps in new versions."""

    def __init__(self, store: Store, reload_interval_seconds: int = 30):
        self.store = store
        self.interval = reload_interval_seconds
        self._snapshot = Snapshot()
        self._tokens: dict[str, str | None] = {MEDIANS: None, MODEL_CARD: None}
        self._lock = threading.Lock()
        self._poller_pid: int | None = None
        self.last_error: str | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The current version; starts this process's poller first (threads do not survive a fork)."""
        if self.interval and self._poller_pid != os.getpid():
            self._start_poller()
        return self._snapshot

    def refresh(self) -> bool:
        """Load whatever changed since the last look; True if a new version was swapped in."""
        with self._lock:
            changed = False
            medians, medians_version = self._snapshot.medians, self._snapshot.medians_version
            model, card = self._snapshot.model, self._snapshot.card
            try:
                token = self.store.token(MEDIANS)
                if token != self._tokens[MEDIANS] and token is not None:
                    blob = self.store.get(MEDIANS)
                    medians, medians_version = check_medians(blob), "medians-" + content_version(blob)[:12]
                    self._tokens[MEDIANS] = token
                    changed = medians_version != self._snapshot.medians_version
                token = self.store.token(MODEL_CARD)
                if token != self._tokens[MODEL_CARD] and token is not None:
                    new_card = json.loads(self.store.get(MODEL_CARD))
                    model, card = load_model(new_card, self.store.get(new_card["artifact"]["name"])), new_card
                    self._tokens[MODEL_CARD] = token
                    changed = changed or card["version"] != self._snapshot.model_version
                self.last_error = None
            except (StoreError, ArtifactRejected, KeyError, ValueError, pickle.UnpicklingError, EOFError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("kept serving medians %s and model %s: %s", medians_version, self._snapshot.model_version, self.last_error)
            if changed:
                self._snapshot = Snapshot(medians, medians_version, model, card)
                log.info("now serving medians %s and model %s", medians_version, card and card["version"])
            return changed

    def _start_poller(self) -> None:
        with self._lock:
            if self._poller_pid == os.getpid():
                return
            self._poller_pid = os.getpid()
        threading.Thread(target=self._poll, name="model-store-poller", daemon=True).start()

    def _poll(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.refresh()
            except Exception:  # the poller must outlive any surprise; the last good version stays
                log.exception("model store poll failed")
