"""Complaint type names: one canonical lower-case spelling, plus the short noise aliases."""

# The seed's clients asked for noise types by one word (GET /predict/residential).
NOISE_ALIASES = {
    "commercial": "noise - commercial",
    "residential": "noise - residential",
    "street": "noise - street/sidewalk",
    "vehicle": "noise - vehicle",
    "park": "noise - park",
    "worship": "noise - house of worship",
    "truck": "collection truck noise",
    "other": "noise",
    "helicopter": "noise - helicopter",
}


def canonical_type(name: str) -> str:
    """Fold case and spacing so 'HEAT/HOT WATER' and 'Heat/Hot Water ' are one type."""
    folded = " ".join(name.strip().lower().split())
    return NOISE_ALIASES.get(folded, folded)
