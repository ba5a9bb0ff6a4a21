"""The published artifact format: file names, medians bytes, and the checks a model or medians file must pass to be served."""

from __future__ import annotations

import json
import math
import pickle
import warnings
import zipfile
from collections.abc import Callable

import numpy as np

from eta311.model.estimator import ETAModel
from eta311.storage import StoreError, content_version

MODEL_CARD = "model_card.json"
MEDIANS = "medians.json"


def dump_json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def medians_bytes(medians: dict[str, float]) -> bytes:
    """medians.json as published: the seed's format (type -> hours), keys sorted."""
    return dump_json(dict(sorted(medians.items())))


def medians_version(blob: bytes) -> str:
    return "medians-" + content_version(blob)[:12]


class ArtifactRejected(ValueError):
    """A published model or medians file that must not be served."""


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


def load_model(card: dict, fetch: Callable[[str], bytes]) -> ETAModel:
    """The model a card vouches for: its numpy serving bundle if it has one, else its pickle; tried once."""
    serving = card.get("serving_artifact")
    if serving:
        blob = _checked(fetch(serving["name"]), serving["sha256"], "serving bundle")
        try:
            model = ETAModel.from_bundle(blob)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise ArtifactRejected(f"serving bundle cannot be read: {exc}") from None
    else:
        model = _unpickle(card, _checked(fetch(card["artifact"]["name"]), card["artifact"]["sha256"], "artifact"))
    probe = model.predict_matrix(model.features(["noise - residential"], [40.7], [-73.9], ["2019-06-08 00:00:09"]))
    if not np.isfinite(probe).all():
        raise ArtifactRejected("model gives non-finite predictions")
    return model


def _checked(blob: bytes, expected: str, what: str) -> bytes:
    if content_version(blob) != expected:
        raise ArtifactRejected(f"{what} sha256 {content_version(blob)[:12]} does not match its card ({expected[:12]})")
    return blob


def _unpickle(card: dict, artifact: bytes) -> ETAModel:
    """Unpickle only what was built by this very scikit-learn (pickles run code and break across versions)."""
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

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
    return model


RELOAD_FAILURES = (StoreError, ArtifactRejected, KeyError, TypeError, ValueError, pickle.UnpicklingError, EOFError)
