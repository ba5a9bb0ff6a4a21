"""The evaluation picture: error by complaint type, and predicted against actual hours."""

from __future__ import annotations

import io

import numpy as np


def evaluation_png(metrics: dict, predicted: np.ndarray, actual: np.ndarray, top: int = 15) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display on a dyno or in CI
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    per_type = list(metrics["per_type"].items())[:top]
    names = [n[:28] for n, _ in per_type][::-1]
    y = np.arange(len(names))
    series = [("model", "model_mae"), ("median, all days", "median_all_training_days_mae")]
    series += [("median, latest 30 days", "median_latest_30_days_mae")]
    for offset, (label, key) in zip((-0.27, 0, 0.27), series):
        left.barh(y + offset, [m[key] for _, m in per_type][::-1], height=0.27, label=label)
    left.set_yticks(y, names, fontsize=8)
    left.set_xlabel("mean absolute error on held-out days (hours)")
    left.set_title(f"Error by complaint type (the {len(names)} most common)")
    left.legend(fontsize=8)

    right.scatter(actual + 0.01, predicted + 0.01, s=2, alpha=0.2)
    lims = [0.01, max(actual.max(), predicted.max()) + 1]
    right.plot(lims, lims, color="black", linewidth=0.8)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("actual hours to resolution")
    right.set_ylabel("predicted hours (median)")
    right.set_title(f"Predicted against actual, MAE {metrics['model_mae']:.1f} h")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
