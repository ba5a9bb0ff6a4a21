"""The seed's stack, rebuilt for `make bench-peers`: a pandas transformer and a 100-tree random forest pickled whole, behind Flask.

Runs only in its own environment (.venv-peers: pandas and scikit-learn), never in the service's.
`python scripts/seed_stack.py train --data DIR --out FILE` fits the forest as the textbook (and
scripts/compare_seed.py) does: noise complaints, latitude, longitude, day of week, day of year,
seconds since midnight and one column per noise type, 100 trees, the latest 30 days held out.
`gunicorn seed_stack:app` (SEED_MODEL=FILE) unpickles it at import and answers
GET /predict/<complaint_type>?lat=&lon=&date= with a one-row DataFrame per request, as the seed did.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import sys
from pathlib import Path

import pandas as pd

HOLDOUT_DAYS = 30


def transform(frame: pd.DataFrame, noise_types: list[str]) -> pd.DataFrame:
    """The textbook transformer: raw request columns to the forest's numeric columns."""
    created = pd.to_datetime(frame["created_date"], errors="coerce")
    out = pd.DataFrame(
        {
            "latitude": pd.to_numeric(frame["latitude"], errors="coerce").fillna(0.0),
            "longitude": pd.to_numeric(frame["longitude"], errors="coerce").fillna(0.0),
            "day_of_week": created.dt.day_of_week,
            "day_of_year": created.dt.day_of_year,
            "seconds": created.dt.hour * 3600 + created.dt.minute * 60 + created.dt.second,
        }
    )
    kinds = frame["complaint_type"].str.lower()
    for noise_type in noise_types:
        out[f"type={noise_type}"] = (kinds == noise_type).astype(float)
    return out


def read_days(folder: Path) -> pd.DataFrame:
    frames = []
    for day in sorted(folder.glob("*.json.gz")):
        with gzip.open(day, "rt") as handle:
            frame = pd.DataFrame(json.load(handle))
        frame["day"] = day.name.split(".")[0]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def train(data: Path, out: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor

    frame = read_days(data)
    frame = frame[frame["complaint_type"].str.lower().str.contains("noise") & frame["closed_date"].notna()]
    hours = (pd.to_datetime(frame["closed_date"]) - pd.to_datetime(frame["created_date"])).dt.total_seconds() / 3600
    frame, hours = frame[hours > 0], hours[hours > 0]
    days = sorted(frame["day"].unique())
    keep = frame["day"].isin(days[:-HOLDOUT_DAYS] if len(days) > HOLDOUT_DAYS else days)
    frame, hours = frame[keep], hours[keep]
    noise_types = sorted(frame["complaint_type"].str.lower().unique())
    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1)
    forest.fit(transform(frame, noise_types), hours)
    out.write_bytes(pickle.dumps({"forest": forest, "noise_types": noise_types}))
    print(f"seed forest: {len(frame):,} rows of {len(days)} days, {out.stat().st_size / 1e6:,.0f} MB pickled")


def create_app():  # noqa: ANN201 - Flask is only importable in the peers' environment
    from flask import Flask, jsonify, request

    model = pickle.loads(Path(os.environ["SEED_MODEL"]).read_bytes())
    flask_app = Flask(__name__)

    @flask_app.get("/predict/<path:complaint_type>")
    def predict(complaint_type: str):  # noqa: ANN202
        row = {
            "complaint_type": complaint_type,
            "latitude": request.args.get("lat"),
            "longitude": request.args.get("lon"),
            "created_date": request.args.get("date"),
        }
        features = transform(pd.DataFrame([row]), model["noise_types"])
        hours = float(model["forest"].predict(features)[0])
        return jsonify({"complaint_type": complaint_type, "estimated_time": round(hours, 2)})

    return flask_app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    train(arguments.data, arguments.out)
    sys.exit(0)
elif "SEED_MODEL" in os.environ:
    app = create_app()
