"""The trigger: recompute medians from the raw days in a store, retrain on request, publish what is no worse."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from eta311.storage import Store
from eta311.data.socrata import RAW_PREFIX
from eta311.model.dataset import resolved, to_columns
from eta311.model import type_stats
from eta311.model.dataset import columns_of_days
from eta311.model.dataset import usable as believable
from eta311.model.estimator import ETAModel
from eta311.model.artifact import RELOAD_FAILURES, load_model
from eta311.model.artifact import MEDIANS, MODEL_CARD, medians_bytes, medians_version
from eta311.data.publish import publish_medians, publish_trained_model
from eta311.model.training import (MEDIANS_WINDOW_DAYS, Boosting, day_of, evaluate_model, latest_medians, mature_days,
                                   read_days, train_on_days)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediansResult:
    published: bool
    version: str | None
    days_used: list[str]
    days_skipped: list[str]
    rows: int
    complaint_types: int


@dataclass(frozen=True)
class RetrainResult:
    published: bool
    version: str | None
    candidate_mae: float
    current_mae: float | None
    current_version: str | None
    holdout: dict


def raw_fingerprint(raw: Store) -> dict[str, str]:
    """Which day files the store holds and their change tokens: a new or rewritten day changes it."""
    return {name: token for name, token in raw.tokens(RAW_PREFIX).items() if day_of(name) is not None}


def recompute_medians(raw: Store, published: Store, window_days: int = MEDIANS_WINDOW_DAYS,
                      progress: Callable[[str], None] = log.info) -> MediansResult:
    """Medians of resolved requests on the mature days of the window; published only if they changed.

    A day collected yesterday has most requests still open and its closed ones are the quick ones,
    so days under training.MIN_CLOSED_SHARE closed are left out, as they are for training.
    """
    usable, skipped = mature_days(read_days(raw, RAW_PREFIX, progress, last_days=window_days))
    if not usable:
        raise ValueError(f"no raw day in the latest {window_days} has enough closed requests; medians unchanged")
    columns = resolved(to_columns(r for d in usable for r in d.records))
    medians = latest_medians(columns, window_days)
    blob = medians_bytes(medians)
    changed = published.token(MEDIANS) is None or published.get(MEDIANS) != blob
    if changed:
        publish_medians(published, medians)
    return MediansResult(changed, medians_version(blob), [str(d.day) for d in usable], skipped,
                         len(columns), len(medians))


@dataclass(frozen=True)
class StatsResult:
    published: bool
    version: str
    as_of: str
    complaint_types: int


def recompute_type_stats(raw: Store, published: Store, progress: Callable[[str], None] = log.info) -> StatsResult:
    """The model's fresh inputs: per-type Kaplan-Meier statistics of the latest raw days, open requests
    included (each as of its own file's pull), as of the newest pull. Published only if they changed.
    """
    columns = believable(columns_of_days(d.records for d in read_days(raw, RAW_PREFIX, progress,
                                                                   last_days=type_stats.WINDOW_DAYS + 1)))
    if not len(columns):
        raise ValueError("no raw day to compute type statistics from; type_stats.json unchanged")
    as_of = columns.pulled.max()
    stats = type_stats.compute(columns.complaint_types, columns.created, columns.hours, columns.pulled, as_of)
    blob = type_stats.to_bytes(stats, str(as_of))
    changed = published.token(type_stats.TYPE_STATS) is None or published.get(type_stats.TYPE_STATS) != blob
    if changed:
        published.put(type_stats.TYPE_STATS, blob)
    return StatsResult(changed, type_stats.version(blob), str(as_of), len(stats))


def current_model(sources: Sequence[Store]) -> tuple[ETAModel | None, dict | None]:
    """The model the service would serve: the first source with a card whose artifact loads."""
    for source in sources:
        try:
            if source.token(MODEL_CARD) is None:
                continue
            card = json.loads(source.get(MODEL_CARD))
            return load_model(card, source.get), card
        except RELOAD_FAILURES as exc:
            log.warning("current model at %s cannot be loaded (%s); it will not count against the candidate", source.uri, exc)
    return None, None


def retrain(raw: Store, published: Store, current_sources: Sequence[Store], holdout_days: int = 30,
            progress: Callable[[str], None] = log.info, boosting: Boosting = Boosting()) -> RetrainResult:
    """Evaluate a candidate on a date split, refit it on every raw day; publish it only if, refitted, it
    scores no worse than the current model on the held-out requests.

    Both may have seen those days (the current model was refitted on them too), so this gate catches
    a broken candidate; the card's figures are the honest ones, from a fit made before those days.
    """
    run = train_on_days(read_days(raw, RAW_PREFIX, progress), holdout_days, boosting, progress)
    candidate_mae = evaluate_model(run.model, run.train, run.test, run.test_stats)[0]["model_mae"]
    model, card = current_model(current_sources)
    current_mae = None if model is None else evaluate_model(model, run.train, run.test, run.test_stats)[0]["model_mae"]
    if current_mae is not None and candidate_mae > current_mae:
        log.warning("candidate MAE %.3f h is worse than the current model's %.3f h on the same days; not published",
                    candidate_mae, current_mae)
        return RetrainResult(False, None, candidate_mae, current_mae, card and card["version"],
                             run.card["evaluation"]["holdout_window"])
    new_card = publish_trained_model(published, run.model, run.card)
    return RetrainResult(True, new_card["version"], candidate_mae, current_mae, card and card["version"],
                         run.card["evaluation"]["holdout_window"])


def watch(raw: Store, on_change: Callable[[], None], interval_seconds: float, stop: Callable[[], bool] = lambda: False) -> None:
    """Poll the raw listing (one LIST a round) and call on_change whenever a day lands or changes."""
    seen: dict[str, str] | None = None
    while not stop():
        try:
            fingerprint = raw_fingerprint(raw)
            if fingerprint != seen:
                log.info("raw days changed (%d files); running the trigger", len(fingerprint))
                on_change()
                seen = fingerprint
        except Exception:  # a bad round is logged and retried next round; the clock keeps ticking
            log.exception("trigger round failed; will retry")
        time.sleep(interval_seconds)
