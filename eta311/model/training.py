"""Training and evaluation of the resolution-time model on daily 311 files, split by date, censoring-aware."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date as Date
from datetime import timedelta

import numpy as np

from eta311.model import type_stats
from eta311.model.dataset import DAY_FILE_SUFFIX, Columns, columns_of_days, decode_day, medians_by_type, usable
from eta311.model.estimator import QUANTILE, ETAModel, log_offsets
from eta311.model.evaluation import NOMINAL_COVERAGE, STARTING_POINT, evaluate, point_metrics, targets
from eta311.model.features import FEATURE_NAMES, FeatureEncoder
from eta311.model.survival import coverage_bounds, impute_open
from eta311.storage import Store

log = logging.getLogger(__name__)

# A day is scored only once its pull came two weeks or more after it: on a younger day the open
# requests are mostly ones that will close soon, and any metric favours answers short for the wrong reason.
MATURE_AFTER_DAYS = 14
SEED = 0


@dataclass(frozen=True)
class Boosting:
    """Model-size settings of the median regressor (tests pass small ones; nothing mutates a global)."""

    max_iter: int = 100
    learning_rate: float = 0.1
    max_depth: int = 8  # keeps the compiled walk to eight steps
    max_leaf_nodes: int = 63
    min_samples_leaf: int = 50

    def params(self) -> dict:
        return {**asdict(self), "random_state": SEED, "early_stopping": False}


@dataclass
class DayFile:
    day: Date
    records: list[dict]

    @property
    def closed_share(self) -> float:
        return sum("closed_date" in r for r in self.records) / max(len(self.records), 1)


def day_of(name: str) -> Date | None:
    """raw/2019-06-08.json.gz -> 2019-06-08; anything else is not a day file."""
    stem = name.rsplit("/", 1)[-1]
    if not stem.endswith(DAY_FILE_SUFFIX):
        return None
    try:
        return Date.fromisoformat(stem[: -len(DAY_FILE_SUFFIX)])
    except ValueError:
        return None


def read_days(
    store: Store, prefix: str = "", progress: Callable[[str], None] = log.info, last_days: int | None = None
) -> list[DayFile]:
    """Every YYYY-MM-DD.json.gz under prefix (only the last_days up to the newest, if given), oldest first."""
    names = sorted((d, n) for n in store.list(prefix) if (d := day_of(n)) is not None)
    if last_days is not None and names:
        first = names[-1][0] - timedelta(days=last_days - 1)
        names = [(d, n) for d, n in names if d >= first]
    days = []
    for i, (day, name) in enumerate(names, 1):
        days.append(DayFile(day, decode_day(store.get(name))))
        progress(f"read {i}/{len(names)} {name}: {len(days[-1].records)} records")
    return days


# Only for medians.json (the seed's lookup of closed requests): a day pulled before most of its
# requests closed keeps only the quick ones, so its closed subset is biased short. The model needs
# no such rule: it counts open requests for what they tell.
MIN_CLOSED_SHARE = 0.85


def mature_days(days: Iterable[DayFile]) -> tuple[list[DayFile], list[str]]:
    kept, skipped = [], []
    for d in days:
        (kept if d.closed_share >= MIN_CLOSED_SHARE else skipped).append(d)
    return kept, [f"{d.day} ({d.closed_share:.0%} closed)" for d in skipped]


def recent_subset(columns: Columns, end: np.datetime64, window_days: int) -> Columns:
    days = columns.created.astype("datetime64[D]")
    return columns.subset((days <= end) & (days > end - np.timedelta64(window_days, "D")))


def library_versions() -> dict[str, str]:
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__}


MEDIANS_WINDOW_DAYS = 90


def latest_medians(columns: Columns, window_days: int = MEDIANS_WINDOW_DAYS) -> dict[str, float]:
    """The medians the service answers with: resolved requests of the latest window_days."""
    latest = recent_subset(columns, columns.created.astype("datetime64[D]").max(), window_days)
    return medians_by_type(latest.complaint_types, latest.hours)


def mature(columns: Columns) -> np.ndarray:
    """Requests whose day was pulled MATURE_AFTER_DAYS or more after it."""
    age = columns.pulled.astype("datetime64[D]") - columns.created.astype("datetime64[D]")
    return age >= np.timedelta64(MATURE_AFTER_DAYS, "D")


def split_by_date(columns: Columns, holdout_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) masks: test is the mature days among the latest holdout_days up to the newest
    mature day; train is everything created before the first of them, open or closed, young or old.
    """
    days = columns.created.astype("datetime64[D]")
    ripe = mature(columns)
    if not ripe.any():
        raise ValueError(f"no day was pulled {MATURE_AFTER_DAYS} days or more after it: nothing to score")
    newest = days[ripe].max()
    test = ripe & (days > newest - np.timedelta64(holdout_days, "D"))
    return days < days[test].min(), test


# Earlier mature weeks, each scored by a model fitted only on the days before it: one held-out
# window can be unusual (28-30 June 2019 is: see the README), a few tell whether a result holds.
BACKTEST_WEEKS = 3


def backtest_folds(columns: Columns, before: np.datetime64, weeks: int = BACKTEST_WEEKS) -> list[np.ndarray]:
    """Masks of the latest `weeks` calendar weeks (Monday to Sunday) of mature days before `before`, newest first."""
    days = columns.created.astype("datetime64[D]")
    week = (days.astype(np.int64) + 3) // 7  # 1970-01-01 was a Thursday: +3 starts weeks on Monday
    eligible = mature(columns) & (days < before)
    return [eligible & (week == w) for w in np.unique(week[eligible])[::-1][:weeks]]


def backtest(columns: Columns, stats_rows: np.ndarray, folds: list[np.ndarray], boosting: Boosting) -> list[dict]:
    """Point metrics (and item-5 targets) of the same recipe on each fold, fitted on the days before it."""
    days = columns.created.astype("datetime64[D]")
    results = []
    for fold in folds:
        first = days[fold].min()
        train_mask = days < first
        if not train_mask.any():
            continue
        cut = first.astype("datetime64[ms]")
        # The sample's spring files were pulled in June: what closed after the week began was not known then.
        train, test = columns.subset(train_mask).known_at(cut), columns.subset(fold)
        model = fit_model(train, stats_rows[train_mask], cut, boosting)
        features = _features(model, test, stats_rows[fold])
        predicted = model.predict_matrix(features)[:, 1]
        metrics = point_metrics(predicted, train, test, starting_point(model, features))
        metrics["targets"] = targets(metrics)
        metrics.pop("per_type")  # the held-out days' card already lists every type; this keeps the card small
        results.append(metrics)
    return results


def fit_model(train: Columns, stats_rows: np.ndarray, as_of: np.datetime64, boosting: Boosting) -> ETAModel:
    """The median regressor on log hours, as an offset from the type's recency-weighted Kaplan-Meier median.

    Every request counts: a closed one by its time, an open one by its type's Kaplan-Meier median
    given that it outlived its follow-up (survival.impute_open). stats_rows are each row's type
    statistics as published at the start of its day; as_of is when the model's own default
    statistics are taken (the newest pull).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    stats = type_stats.compute(train.complaint_types, train.created, train.hours, train.pulled, as_of)
    model_stats = {t: v for t, v in stats.items()}
    features = FeatureEncoder({}).transform(train.complaint_types, train.latitudes, train.longitudes, train.created)
    features[:, : len(type_stats.STAT_NAMES)] = stats_rows
    closed_hours = train.hours[train.closed]
    global_log_median = float(np.log1p(np.median(closed_hours))) if len(closed_hours) else 0.0
    hours = impute_open(train.complaint_types, train.hours, train.closed, train.censor_hours)
    target = np.log1p(hours) - log_offsets(features, global_log_median)
    log.info("fitting the median on %d rows x %d features", *features.shape)
    fitted = HistGradientBoostingRegressor(loss="quantile", quantile=QUANTILE, **boosting.params()).fit(
        features, target
    )
    return ETAModel(FeatureEncoder(model_stats), [fitted], global_log_median)


def calibrate(model: ETAModel, features: np.ndarray, rows: Columns) -> float:
    """Conformal margin around the median (log hours) so that the middle of the censoring-aware
    coverage bounds on these requests is NOMINAL_COVERAGE. Bisection: coverage grows with the margin.
    """
    model.interval_widening = 0.0
    log_median = np.log1p(model.predict_matrix(features)[:, 1])
    hi = margin_for_coverage(log_median, log_median, rows)
    model.interval_widening = round(hi, 6)
    return model.interval_widening


def margin_for_coverage(log_low: np.ndarray, log_high: np.ndarray, rows: Columns) -> float:
    """The margin (log hours) taken off log_low and added to log_high so that the middle of the
    censoring-aware coverage bounds on these requests is NOMINAL_COVERAGE. Bisection: coverage grows with it."""

    def middle(margin: float) -> float:
        low, high = np.expm1(log_low - margin), np.expm1(log_high + margin)
        return sum(coverage_bounds(low, high, rows.hours, rows.closed, rows.censor_hours)) / 2

    lo, hi = 0.0, 8.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if middle(mid) < NOMINAL_COVERAGE else (lo, mid)
    return hi


def calibration_split(test: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(calibrate, measure) masks over the held-out requests: alternate requests in creation order.

    Split conformal needs calibration requests exchangeable with the measured ones. Calibrating on
    the first held-out day and measuring on the later ones was tried: the sample's held-out days
    differ too much (28 June, a Friday with many still open, needs a far wider interval than the
    weekend after).
    """
    order = np.argsort(test.created, kind="stable")
    calibrating = np.zeros(len(test), dtype=bool)
    calibrating[order[::2]] = True
    return calibrating, (~calibrating if (~calibrating).any() else calibrating)


def _features(model: ETAModel, rows: Columns, stats_rows: np.ndarray) -> np.ndarray:
    features = model.encoder.transform(rows.complaint_types, rows.latitudes, rows.longitudes, rows.created, {})
    features[:, : len(type_stats.STAT_NAMES)] = stats_rows
    return features


@dataclass
class TrainingRun:
    model: ETAModel  # refitted on every day, what is published
    card: dict
    medians: dict[str, float]
    stats: dict[str, tuple[float, ...]]  # type statistics as of the newest pull (type_stats.json)
    stats_as_of: str
    predicted: np.ndarray  # the evaluated model's held-out estimates (median)
    train: Columns
    test: Columns
    test_stats: np.ndarray


def evaluate_model(
    model: ETAModel, train: Columns, test: Columns, test_stats: np.ndarray, coverage_rows: np.ndarray | None = None
) -> tuple[dict, np.ndarray]:
    """The card's metrics for a model on held-out requests (stats: as published each held-out day)."""
    features = _features(model, test, test_stats)
    low, predicted, high = model.predict_matrix(features).T
    return evaluate(predicted, low, high, train, test, coverage_rows, starting_point(model, features)), predicted


def starting_point(model: ETAModel, features: np.ndarray) -> dict[str, np.ndarray]:
    """The model's offset alone as a baseline: what the trees add is the model's gain over it."""
    return {STARTING_POINT: np.expm1(model.offsets(features))}


def train_on_days(
    days: list[DayFile],
    holdout_days: int = 30,
    boosting: Boosting = Boosting(),
    progress: Callable[[str], None] = log.info,
) -> TrainingRun:
    """Evaluate on a date split, then refit on every day: everything the card says comes from here."""
    columns = usable(columns_of_days(d.records for d in days))
    if not len(columns):
        raise ValueError("no usable request in the day files")
    progress(f"{len(columns)} requests, {int((~columns.closed).sum())} still open at their pull")
    stats_rows = type_stats.rolling(columns.complaint_types, columns.created, columns.hours, columns.pulled)
    progress("type statistics as published each day: done")
    train_mask, test_mask = split_by_date(columns, holdout_days)
    cut = columns.created[test_mask].astype("datetime64[D]").min().astype("datetime64[ms]")
    train, test = columns.subset(train_mask).known_at(cut), columns.subset(test_mask)
    if len(train) == 0:
        raise ValueError("need requests before the held-out days")
    progress(f"evaluation fit: {len(train)} requests before {cut.astype('datetime64[D]')}")
    evaluated = fit_model(train, stats_rows[train_mask], cut, boosting)
    test_stats = stats_rows[test_mask]
    calibrating, measuring = calibration_split(test)
    calibrate(
        evaluated, _features(evaluated, test.subset(calibrating), test_stats[calibrating]), test.subset(calibrating)
    )
    metrics, predicted = evaluate_model(evaluated, train, test, test_stats, measuring)
    metrics["interval_coverage"].update(
        widening_log_hours=evaluated.interval_widening,
        calibrated_on=sorted({str(d) for d in test.created[calibrating].astype("datetime64[D]")}),
        measured_on=sorted({str(d) for d in test.created[measuring].astype("datetime64[D]")}),
        measured_rows=int(measuring.sum()),
    )
    metrics["targets"] = targets(metrics)
    metrics["targets_mae_po"] = targets(metrics, "mae_po")
    folds = backtest_folds(columns, test.created.astype("datetime64[D]").min())
    progress(f"backtests: {len(folds)} earlier mature weeks, each fitted on the days before it")
    backtests = backtest(columns, stats_rows, folds, boosting)
    newest_pull = columns.pulled.max()
    progress(f"refit on every day: {len(columns)} requests")
    model = fit_model(columns, stats_rows, newest_pull, boosting)
    # Measured out of sample on the evaluation fit; in sample, on days it was fitted on, the refit
    # would look better than it is, so it carries the evaluation's widening.
    model.interval_widening = evaluated.interval_widening
    day = lambda c: (str(c.created.astype("datetime64[D]").min()), str(c.created.astype("datetime64[D]").max()))  # noqa: E731
    card = {
        "model": "HistGradientBoostingRegressor, median (quantile loss 0.5) of log hours, offset by the type's "
        f"recency-weighted (half-life {type_stats.HALF_LIFE_DAYS} days) 90-day Kaplan-Meier median; open requests "
        "imputed by their type's Kaplan-Meier median beyond their follow-up; 80% interval: the median times and "
        "divided by a conformal margin",
        "method": {
            "open_requests": "every request counts: a closed one by its time, one still open by its type's Kaplan-Meier "
            "median beyond its follow-up (survival.impute_open)",
            "why": "the requests still open are the slow ones: training on closed requests only, or on closed ones "
            "weighted 1/G(T), learns their quick minority and scored far worse on the held-out days overall (a little "
            "better on the noise types alone, which close fast); the starting point's half-life and the statistics' "
            "maturity lag were chosen on earlier mature weeks, not on those days",
            "alternatives": "compare_methods.txt, written by scripts/compare_methods.py on the day files make train read",
        },
        "fitted_on": "every day read (refitted after the evaluation below, which used a model fitted before the held-out days)",
        "training_window": dict(zip(("first_day", "last_day"), day(columns))),
        "evaluation": {
            "fitted_before": str(cut.astype("datetime64[D]")),
            "holdout_window": dict(zip(("first_day", "last_day"), day(test))),
            "holdout_days": sorted({str(d) for d in test.created.astype("datetime64[D]")}),
            "mature_after_days": MATURE_AFTER_DAYS,
        },
        "rows": {
            "records_read": sum(len(d.records) for d in days),
            "used": len(columns),
            "still_open_at_pull": int((~columns.closed).sum()),
            "evaluation_train": len(train),
            "holdout": len(test),
            "dropped": columns.dropped,
        },
        "metrics": metrics,
        "backtests": backtests,
        "interval_widening_log_hours": model.interval_widening,
        "statistics": {"names": list(type_stats.STAT_NAMES), "as_of": str(newest_pull), "file": type_stats.TYPE_STATS},
        "features": list(FEATURE_NAMES),
        "quantile": QUANTILE,
        "hyperparameters": boosting.params(),
        "libraries": library_versions(),
        "complaint_types": sorted(model.encoder.type_stats),
    }
    kept, _ = mature_days(days)
    medians_rows = usable(columns_of_days(d.records for d in kept))
    return TrainingRun(
        model,
        card,
        latest_medians(medians_rows.subset(medians_rows.closed)) if len(medians_rows) else {},
        model.encoder.type_stats,
        str(newest_pull),
        predicted,
        train,
        test,
        stats_rows[test_mask],
    )
