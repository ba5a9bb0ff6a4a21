"""Training: the date split on mature days, no look-ahead, the card, reproducibility, the bundled model's figures."""

import json
import re
from pathlib import Path

import numpy as np
from conftest import TINY

from eta311.model import training, type_stats
from eta311.model.dataset import Columns, columns_of_days, usable
from eta311.model.evaluation import NOMINAL_COVERAGE, ORACLE, STARTING_POINT
from eta311.storage import content_version

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"


def test_holdout_is_the_latest_mature_days_and_train_is_everything_before(fixture_days):
    columns = usable(columns_of_days(d.records for d in fixture_days))
    train, test = training.split_by_date(columns, holdout_days=7)
    assert columns.created[train].max() < columns.created[test].min()
    assert sorted({str(d) for d in columns.created[test].astype("datetime64[D]")}) == ["2019-05-11", "2019-05-12"]
    assert (~columns.closed[train]).any(), "open requests are trained on, not dropped"


def test_a_day_pulled_soon_after_it_is_not_scored(fixture_days):
    young = [dict(r) for r in fixture_days[-1].records]
    for record in young:  # as if pulled a day after: closures past 2019-05-13 not yet known
        if record.get("closed_date", "") > "2019-05-13":
            record.pop("closed_date")
    columns = usable(columns_of_days([d.records for d in fixture_days[:-1]] + [young]))
    _, test = training.split_by_date(columns, holdout_days=7)
    assert sorted({str(d) for d in columns.created[test].astype("datetime64[D]")}) == ["2019-05-05", "2019-05-11"]


def test_type_statistics_never_look_ahead():
    created = np.array(
        ["2019-05-01T10:00", "2019-05-02T10:00", "2019-05-02T11:00", "2019-05-03T10:00"], dtype="datetime64[ms]"
    )
    hours = np.array([1.0, 100.0, 100.0, 5.0])
    pulled = np.full(4, np.datetime64("2019-06-01T00:00", "ms"))
    rows = type_stats.rolling(["a"] * 4, created, hours, pulled)
    median_90d = type_stats.STAT_NAMES.index("log_km_median_90d")
    assert np.isnan(rows[0]).all()  # nothing before the first day
    assert rows[1, median_90d] == rows[2, median_90d] == np.log1p(1.0)  # day two sees only day one
    # On day three, day two's requests (100 h) are still open, 13-14 h old: a lower bound, not 100 h.
    assert np.log1p(1.0) < rows[3, median_90d] < np.log1p(15.0)


def test_card_describes_the_run_and_every_baseline(tiny_run):
    card = tiny_run.card
    assert card["training_window"] == {"first_day": "2019-05-04", "last_day": "2019-05-12"}
    assert card["evaluation"]["fitted_before"] == "2019-05-11"
    assert card["rows"]["evaluation_train"] + card["rows"]["holdout"] == card["rows"]["used"]
    scores = card["metrics"]["mae_hinge"]
    assert {"model", "global median", "per-type median, all days", ORACLE} <= set(scores)
    assert {"per-type median, latest 7 days", "per-type median, latest 30 days"} <= set(scores)
    # the starting point moves day by day, so unlike every per-type constant it may beat the oracle
    assert scores[ORACLE] == min(v for k, v in scores.items() if k not in ("model", STARTING_POINT))
    assert card["libraries"]["scikit-learn"] and "noise - residential" in card["complaint_types"]


def test_the_oracle_is_best_per_type_under_each_metric(tiny_run):
    for name, row in tiny_run.card["metrics"]["per_type"].items():
        for metric in ("mae_hinge", "mae_po"):
            constants = {k: v for k, v in row[metric].items() if k not in ("model", STARTING_POINT)}
            assert min(constants.values()) == constants[ORACLE], (name, metric)


def test_training_is_reproducible(fixture_days, tiny_run):
    again = training.train_on_days(fixture_days, holdout_days=7, boosting=TINY, progress=lambda _: None)
    assert again.card["metrics"] == tiny_run.card["metrics"]
    assert again.model.to_bundle() == tiny_run.model.to_bundle()


def test_the_bundled_default_is_refitted_on_every_day(tiny_run):
    evaluated_before = tiny_run.card["evaluation"]["fitted_before"]
    assert tiny_run.card["training_window"]["last_day"] > evaluated_before
    assert tiny_run.stats_as_of > tiny_run.card["training_window"]["last_day"]


def test_immature_days_are_left_out_of_the_medians_only():
    young = training.DayFile(np.datetime64("2019-06-14").item(), [{"closed_date": "x"}] + [{}] * 3)
    old = training.DayFile(np.datetime64("2019-06-01").item(), [{"closed_date": "x"}] * 9 + [{}])
    kept, skipped = training.mature_days([old, young])
    assert kept == [old] and skipped == ["2019-06-14 (25% closed)"]


def test_columns_carry_their_own_files_pull(fixture_days):
    columns = columns_of_days(d.records for d in fixture_days)
    assert isinstance(columns, Columns) and not np.isnat(columns.pulled).any()
    assert (columns.censor_hours >= 0).all()
    assert (columns.hours[columns.closed] <= columns.censor_hours[columns.closed] + 1e-9).all()


def test_bundled_model_is_small_checked_and_its_card_matches_the_readme():
    card = json.loads((MODELS / "model_card.json").read_text())
    for entry in ("artifact", "serving_artifact"):
        blob = (MODELS / card[entry]["name"]).read_bytes()
        assert len(blob) <= 5_000_000 and content_version(blob) == card[entry]["sha256"]
    stats = type_stats.parse((MODELS / type_stats.TYPE_STATS).read_bytes())
    assert set(stats) == set(card["complaint_types"])
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The model") :]
    section = section[: section.index("\n## ", 5)]
    for metric in ("mae_hinge", "mae_po"):
        for predictor, value in card["metrics"][metric].items():
            assert re.search(rf"\| {re.escape(predictor)} \| {value:.2f} \|", section), (metric, predictor)
    coverage = card["metrics"]["interval_coverage"]
    assert f"{coverage['lower']:.3f}..{coverage['upper']:.3f}" in section
    assert card["backtests"], "the bundled card scores earlier weeks too"
    for week in card["backtests"]:
        row = f"| {week['days'][0]}..{week['days'][-1]} | {week['rows']:,} ({week['open_rows']:,}) | "
        assert row + f"{week['mae_hinge']['model']:.2f} |" in section, row


def test_the_readme_gives_the_held_out_days_and_the_gap_to_the_oracle_as_make_train_prints_them():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    train_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_script)
    metrics = json.loads((MODELS / "model_card.json").read_text())["metrics"]
    readme = (ROOT / "README.md").read_text()
    for row in train_script.day_table(metrics):  # rows in any order: the card's JSON keeps keys sorted
        assert f"\n{row}\n" in readme, row
    assert train_script.gap_line(metrics) in readme
    trees = metrics["per_type"]["damaged tree"]["mae_hinge"]
    prose = " ".join(readme.split())  # the paragraph may be wrapped anywhere
    quoted = prose[prose.index("For damaged trees, the largest share") :][:400]
    for predictor in ("per-type median, all days", ORACLE, "per-type Kaplan-Meier median, 90 days", "model"):
        assert f"{trees[predictor]:.2f}" in quoted, predictor


def test_the_interval_is_calibrated_on_half_the_held_out_requests_and_measured_on_the_other(tiny_run):
    calibrating, measuring = training.calibration_split(tiny_run.test)
    assert not (calibrating & measuring).any() and (calibrating | measuring).all()
    coverage = tiny_run.card["metrics"]["interval_coverage"]
    assert coverage["measured_rows"] == measuring.sum() and 0 <= coverage["lower"] <= coverage["upper"] <= 1
    assert tiny_run.model.interval_widening == coverage["widening_log_hours"]


def test_the_recent_median_follows_the_latest_days_and_the_plain_one_does_not():
    as_of = np.datetime64("2019-06-01T00:00", "ms")
    created = np.array([as_of - np.timedelta64(60, "D")] * 12 + [as_of - np.timedelta64(3, "D")] * 8)
    hours = np.array([100.0] * 12 + [1.0] * 8)
    stats = type_stats.compute(["a"] * 20, created, hours, np.full(20, as_of), as_of)["a"]
    at = type_stats.STAT_NAMES.index
    assert stats[at("log_km_median_90d")] == np.log1p(100.0)
    assert stats[at("log_km_median_90d_recent")] == np.log1p(1.0)


def test_a_maturity_lag_leaves_the_youngest_requests_out_of_every_statistic():
    as_of = np.datetime64("2019-06-01T00:00", "ms")
    # 12 requests of ten days ago took 100 h; 8 of yesterday are open, seen for under a day
    created = np.array([as_of - np.timedelta64(10, "D")] * 12 + [as_of - np.timedelta64(12, "h")] * 8)
    hours = np.array([100.0] * 12 + [np.nan] * 8)
    at = type_stats.STAT_NAMES.index
    fresh = type_stats.compute(["a"] * 20, created, hours, np.full(20, as_of), as_of, lag_days=0)["a"]
    lagged = type_stats.compute(["a"] * 20, created, hours, np.full(20, as_of), as_of, lag_days=1)["a"]
    assert fresh[at("log_count_30d")] == np.log1p(20) and lagged[at("log_count_30d")] == np.log1p(12)
    assert lagged[at("log_km_median_90d_recent")] == np.log1p(100.0)
    # a request created later that day sees the statistics published at its start, lag and all
    created, hours = np.append(created, as_of + np.timedelta64(6, "h")), np.append(hours, 1.0)
    for lag, count in ((0, 20), (1, 12)):
        rows = type_stats.rolling(["a"] * 21, created, hours, np.full(21, as_of + np.timedelta64(1, "D")), lag_days=lag)
        assert rows[-1, at("log_count_30d")] == np.log1p(count)
    assert type_stats.MATURITY_LAG_DAYS == 0  # what scripts/compare_methods.py part 4 kept


def test_backtests_score_earlier_mature_weeks_each_fitted_before_it(fixture_days):
    columns = usable(columns_of_days(d.records for d in fixture_days))
    stats = type_stats.rolling(columns.complaint_types, columns.created, columns.hours, columns.pulled)
    folds = training.backtest_folds(columns, np.datetime64("2019-05-12"))
    assert [sorted({str(d) for d in columns.created[f].astype("datetime64[D]")}) for f in folds] == [
        ["2019-05-11"],
        ["2019-05-04", "2019-05-05"],
    ]
    results = training.backtest(columns, stats, folds, TINY)
    assert [r["days"] for r in results] == [["2019-05-11"]]  # the first week has no day before it to fit on
    assert results[0]["rows"] == folds[0].sum() and {"mae_hinge", "mae_po", "targets"} <= set(results[0])


def test_the_card_scores_every_predictor_by_mae_po_too(tiny_run):
    metrics = tiny_run.card["metrics"]
    assert set(metrics["mae_po"]) == set(metrics["mae_hinge"])
    assert set(metrics["noise"]["mae_po"]) == set(metrics["mae_hinge"])
    assert "noise_below_oracle" in metrics["targets_mae_po"]
    # a closed request counts alike in both metrics, so they differ only through the open ones
    assert (metrics["mae_po"]["model"] == metrics["mae_hinge"]["model"]) == (metrics["open_rows"] == 0)


def test_the_card_s_method_and_the_code_s_constants_are_what_the_comparison_chose():
    written = (MODELS / "compare_methods.txt").read_text()  # scripts/compare_methods.py --out
    method = json.loads((MODELS / "model_card.json").read_text())["method"]
    assert method["alternatives"].startswith("compare_methods.txt, written by scripts/compare_methods.py")
    part1 = written[written.index("1. how open requests") : written.index("2. half-life")]
    scores = {line.split(": ", 1)[1]: float(line.split()[1].rstrip(",")) for line in part1.splitlines()[1:] if line}
    assert min(scores, key=scores.get).endswith("(the model)") and len(scores) == 3
    kept = re.findall(r"kept: (\w+)", written)
    assert kept == [str(type_stats.HALF_LIFE_DAYS), str(type_stats.MATURITY_LAG_DAYS)]


def test_the_readme_quotes_the_method_comparison_as_the_script_wrote_it():
    written = (MODELS / "compare_methods.txt").read_text()  # scripts/compare_methods.py --out
    readme = (ROOT / "README.md").read_text()
    quoted = readme[readme.index("The alternatives, as") : readme.index("- **Features**")]
    quoted += readme[readme.index("- **Interval**") : readme.index("- **Serving**")]
    nominal = f"{NOMINAL_COVERAGE:.2f}"  # the target the interval is calibrated to, not a measurement
    figures = [f for f in re.findall(r"\d+\.\d{2,3}", quoted) if f != nominal]
    assert len(figures) >= 20
    assert [f for f in figures if f not in written] == []


def test_the_readme_quotes_the_seed_comparison_as_the_script_wrote_it():
    written = (MODELS / "compare_seed.txt").read_text()  # scripts/compare_seed.py --out
    readme = (ROOT / "README.md").read_text()
    quoted = readme[readme.index("Against the seed's model") : readme.index("## The data pipeline")]
    rows = re.findall(r"\| (\S+) \| ([\d,]+) \((\d+)\) \| ([\d.]+) \| ([\d.]+) \|", quoted)
    assert len(rows) == len(written.strip().splitlines()) >= 2
    for days, requests, still_open, seed, ours in rows:
        line = f"of {days}, {requests} requests ({still_open} open): MAE-hinge seed random forest {seed} h, our model {ours} h"
        assert line in written, line


def test_a_request_is_known_as_it_was_at_a_moment():
    created = np.array(["2019-05-01T00:00"] * 3, dtype="datetime64[ms]")
    columns = Columns(["a"] * 3, np.zeros(3), np.zeros(3), created, np.array([10.0, 100.0, np.nan]))
    columns.pulled = np.full(3, np.datetime64("2019-06-10T00:00", "ms"))
    seen = columns.known_at(np.datetime64("2019-05-02T00:00", "ms"))
    assert np.array_equal(seen.hours, [10.0, np.nan, np.nan], equal_nan=True)  # the 100 h closure came later
    assert list(seen.censor_hours) == [24.0, 24.0, 24.0]
    assert np.array_equal(columns.known_at(columns.pulled[0]).hours, columns.hours, equal_nan=True)


def test_a_backtest_knows_nothing_that_closed_after_its_week_began(fixture_days):
    columns = usable(columns_of_days(d.records for d in fixture_days))
    stats = type_stats.rolling(columns.complaint_types, columns.created, columns.hours, columns.pulled)
    folds = training.backtest_folds(columns, np.datetime64("2019-05-12"))[:1]  # 11 May, fitted on 4-5 May
    before = columns.created < np.datetime64("2019-05-11T00:00", "ms")
    late = before & (
        columns.created + (np.nan_to_num(columns.hours) * 3.6e6).astype("timedelta64[ms]")
        > np.datetime64("2019-05-11T00:00", "ms")
    )
    assert late.sum() > 10, "the fixture has closures after the cut to hide"
    altered = Columns(**{**columns.__dict__, "hours": np.where(late, columns.hours * 3 + 500, columns.hours)})
    assert training.backtest(altered, stats, folds, TINY) == training.backtest(columns, stats, folds, TINY)


def test_the_starting_point_alone_is_scored_as_a_baseline(tiny_run):
    scores = tiny_run.card["metrics"]["mae_hinge"]
    assert STARTING_POINT in scores and scores[STARTING_POINT] != scores["model"]
