"""Writing a model, its card and the medians to a store in the order readers can trust."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eta311.model.artifact import MEDIANS, MODEL_CARD, dump_json, medians_bytes
from eta311.model import type_stats
from eta311.storage import Store, content_version

if TYPE_CHECKING:  # the estimator module pulls in scikit-learn; publishing medians alone does not need it
    from eta311.model.estimator import ETAModel


def publish_type_stats(store: Store, stats: dict, as_of: str) -> str:
    """One PUT of type_stats.json (the model's fresh inputs); returns its content version."""
    return store.put(type_stats.TYPE_STATS, type_stats.to_bytes(stats, as_of))


def publish_medians(store: Store, medians: dict[str, float]) -> str:
    """One PUT of medians.json; returns its content version."""
    return store.put(MEDIANS, medians_bytes(medians))


def publish_model(store: Store, artifact: bytes, card: dict, bundle: bytes | None = None) -> dict:
    """Artifacts first under their own content names, then the card that points to them.

    The card is the switch: a reader that sees the new card finds its artifacts already in place,
    and one that still sees the old card keeps loading the old ones, which are never overwritten.
    `artifact` is the pickled model (for retraining and evaluation, needs scikit-learn); `bundle`
    its numpy-only serving form, which the web service loads without importing scikit-learn.
    """
    sha = content_version(artifact)
    name = f"model-{sha[:12]}.pkl"
    store.put(name, artifact)
    card = {**card, "version": f"gbm-{sha[:12]}", "artifact": {"name": name, "sha256": sha, "bytes": len(artifact)}}
    card.pop("serving_artifact", None)
    if bundle is not None:
        bundle_sha = content_version(bundle)
        bundle_name = f"model-{sha[:12]}-serving-{bundle_sha[:12]}.npz"
        store.put(bundle_name, bundle)
        card["serving_artifact"] = {"name": bundle_name, "sha256": bundle_sha, "bytes": len(bundle)}
    store.put(MODEL_CARD, dump_json(card))
    return card


def publish_trained_model(store: Store, model: ETAModel, card: dict) -> dict:
    """A fitted ETAModel as both artifacts: its pickle and its numpy serving bundle."""
    import pickle

    return publish_model(store, pickle.dumps(model, protocol=5), card, model.to_bundle())
