"""Writing a model, its card and the medians to a store in the order readers can trust."""

from __future__ import annotations

import json

from .artifacts import Store, content_version

MODEL_CARD = "model_card.json"
MEDIANS = "medians.json"


def dump_json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def publish_medians(store: Store, medians: dict[str, float]) -> str:
    """One PUT of medians.json (the seed's format: type -> hours); returns its content version."""
    return store.put(MEDIANS, dump_json(dict(sorted(medians.items()))))


def publish_model(store: Store, artifact: bytes, card: dict) -> dict:
    """Artifact first under its own content name, then the card that points to it.

    The card is the switch: a reader that sees the new card finds its artifact already in place,
    and one that still sees the old card keeps loading the old artifact, which is never overwritten.
    """
    sha = content_version(artifact)
    name = f"model-{sha[:12]}.pkl"
    store.put(name, artifact)
    card = {**card, "version": f"gbm-{sha[:12]}", "artifact": {"name": name, "sha256": sha, "bytes": len(artifact)}}
    store.put(MODEL_CARD, dump_json(card))
    return card
