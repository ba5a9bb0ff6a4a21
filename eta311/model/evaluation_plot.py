"""The evaluation picture: MAE-hinge of the model, every baseline and the oracle, overall, on noise, per type."""

from __future__ import annotations

import io

import numpy as np

from eta311.model.dataset import Columns


def evaluation_png(metrics: dict, predicted: np.ndarray, test: Columns, top: int = 12) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display on a dyno or in CI
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 9), gridspec_kw={"width_ratios": [2, 1]})
    predictors = list(metrics["mae_hinge"])
    groups = [("all types", metrics), ("noise types", metrics["noise"])] + list(metrics["per_type"].items())[:top]
    names = [n[:30] for n, _ in groups][::-1]
    y = np.arange(len(names))
    height = 0.8 / len(predictors)
    for k, predictor in enumerate(predictors):
        values = [g["mae_hinge"][predictor] for _, g in groups][::-1]
        left.barh(y + (k - len(predictors) / 2) * height, values, height=height, label=predictor)
    left.set_yticks(y, names, fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("MAE-hinge on held-out requests (hours, log scale; open requests count by max(0, c - estimate))")
    left.set_title(f"Model, baselines and oracle: overall, noise, the {min(top, len(groups) - 2)} most common types")
    fig.legend(*left.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=4)

    closed = test.closed
    right.scatter(test.hours[closed] + 0.01, predicted[closed] + 0.01, s=2, alpha=0.2, label="closed: actual hours")
    right.scatter(
        test.censor_hours[~closed] + 0.01, predicted[~closed] + 0.01, s=2, alpha=0.2, label="open: hours so far"
    )
    lims = [0.01, max(float(np.nanmax(test.censor_hours)), float(predicted.max())) + 1]
    right.plot(lims, lims, color="black", linewidth=0.8)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("hours to resolution (closed) or open so far (open)")
    right.set_ylabel("estimated hours (median)")
    cov = metrics["interval_coverage"]
    right.set_title(f"Estimates; 80% interval coverage {cov['lower']:.2f}..{cov['upper']:.2f}")
    right.legend(fontsize=8, markerscale=4)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()
