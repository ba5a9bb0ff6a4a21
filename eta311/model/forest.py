"""Fitted histogram-gradient-boosting trees compiled to flat numpy arrays for fast prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

FEATURE_SPAN = 1e6  # wider than any feature's range: seconds in a day (86,400) are the widest
FEATURE_LIMIT = 4e5


class CompiledForest:
    """Several boosted regressors walked together, one tree level per numpy step.

    scikit-learn's predict pays a fixed cost per call (validation, an OpenMP pool) that dwarfs one
    row's work, and scikit-learn itself takes seconds to import. Here the split nodes of every tree
    are renumbered in (feature, threshold) order, so one binary search per feature tells, for every
    split node of that feature, which way a row goes: right exactly when the node's position is
    below the row's limit. Leaves point to themselves, so a fixed number of steps (the deepest
    tree's depth) lands every tree on its leaf. The arrays load with numpy alone.
    """

    ARRAYS = (
        "children",
        "value",
        "roots",
        "block_sizes",
        "feature_shift",
        "split_keys",
        "missing_right",
        "tree_blocks",
        "baseline",
    )

    def __init__(self, arrays: Mapping[str, np.ndarray], depth: int):
        for name in self.ARRAYS:
            setattr(self, name, np.asarray(arrays[name]))
        self.n_splits = len(self.split_keys)
        self.depth = int(depth)
        # Each node's feature and missing-value direction; leaves get feature 0 and never move.
        n_nodes = len(self.value)
        self.node_feature = np.zeros(n_nodes, dtype=np.intp)
        self.node_feature[: self.n_splits] = np.repeat(np.arange(len(self.block_sizes)), self.block_sizes)
        self.node_missing_right = np.zeros(n_nodes, dtype=bool)
        self.node_missing_right[: self.n_splits] = self.missing_right

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_estimators(cls, estimators: Sequence[object], n_features: int) -> CompiledForest:
        """Compile fitted HistGradientBoostingRegressors (reads their private tree arrays)."""
        trees = [(k, p[0].nodes) for k, est in enumerate(estimators) for p in est._predictors]
        if any(nodes["is_categorical"].any() for _, nodes in trees):
            raise ValueError("categorical splits are not supported by the compiled forest")
        sizes = np.array([len(nodes) for _, nodes in trees])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate([n for _, n in trees])
        offsets = np.repeat(starts, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        feature = nodes["feature_idx"].astype(np.intp)
        threshold = nodes["num_threshold"].astype(np.float64)

        split_ids = np.flatnonzero(~leaf)
        split_ids = split_ids[np.lexsort((threshold[split_ids], feature[split_ids]))]
        leaf_ids = np.flatnonzero(leaf)
        renumber = np.empty(len(nodes), dtype=np.intp)
        renumber[split_ids] = np.arange(len(split_ids))
        renumber[leaf_ids] = len(split_ids) + np.arange(len(leaf_ids))

        old_order = np.concatenate([split_ids, leaf_ids])  # old id of each new id
        is_leaf = leaf[old_order]
        left = np.where(is_leaf, np.arange(len(nodes)), renumber[(nodes["left"] + offsets)[old_order]])
        right = np.where(is_leaf, np.arange(len(nodes)), renumber[(nodes["right"] + offsets)[old_order]])
        children = np.column_stack([left, right]).ravel()  # [2n] left child, [2n+1] right child
        value = np.where(is_leaf, nodes["value"][old_order], 0.0)
        roots = renumber[starts]

        split_features = feature[split_ids]
        block_sizes = np.bincount(split_features, minlength=n_features)
        # Feature j's thresholds shifted by j * FEATURE_SPAN make one sorted array, so a single
        # searchsorted answers every feature of every row; features stay far inside the span.
        feature_shift = np.arange(n_features) * FEATURE_SPAN
        split_keys = threshold[split_ids] + feature_shift[split_features]
        missing_right = ~nodes["missing_go_to_left"][split_ids].astype(bool)

        depth = int(nodes["depth"].max())
        owner = np.array([k for k, _ in trees])
        # Trees are grouped by estimator, so each output sums one contiguous block of trees.
        tree_blocks = np.searchsorted(owner, np.arange(len(estimators)))
        baseline = np.array([float(np.ravel(e._baseline_prediction)[0]) for e in estimators])
        arrays = dict(
            children=children,
            value=value,
            roots=roots,
            block_sizes=block_sizes,
            feature_shift=feature_shift,
            split_keys=split_keys,
            missing_right=missing_right,
            tree_blocks=tree_blocks,
            baseline=baseline,
        )
        return cls(arrays, depth)

    def predict(self, features: np.ndarray, chunk_rows: int = 256) -> np.ndarray:
        """Raw predictions, shape (rows, estimators), equal to each estimator's predict()."""
        if len(features) <= chunk_rows:
            return self._predict_chunk(features)
        parts = [self._predict_chunk(features[i : i + chunk_rows]) for i in range(0, len(features), chunk_rows)]
        return np.concatenate(parts)

    def _predict_chunk(self, features: np.ndarray) -> np.ndarray:
        rows, n_features = features.shape
        # Per row and feature, how many of the feature's sorted thresholds lie strictly below the
        # value: a split node sends the row right exactly when its position is under that limit.
        keys = np.clip(features, -FEATURE_LIMIT, FEATURE_LIMIT) + self.feature_shift
        limits = np.searchsorted(self.split_keys, keys).ravel()
        missing = np.isnan(features).ravel()
        any_missing = missing.any()
        row_start = (np.arange(rows) * n_features)[:, None] if rows > 1 else 0
        node = self.roots  # broadcasts to (rows, trees) at the first step
        for _ in range(self.depth):
            at = self.node_feature.take(node) + row_start
            right = node < limits.take(at)
            if any_missing:
                right = np.where(missing.take(at), self.node_missing_right.take(node), right)
            # Leaves point to themselves, so rows that arrive early wait there.
            node = self.children.take(2 * node + right)
        leaf_values = np.atleast_2d(self.value.take(node))
        return np.add.reduceat(leaf_values, self.tree_blocks, axis=1) + self.baseline
