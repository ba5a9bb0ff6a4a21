"""Fitted histogram-gradient-boosting trees compiled to flat numpy arrays for fast prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

FEATURE_SPAN = 1e6  # wider than any feature's range: seconds in a day (86,400) are the widest
FEATURE_LIMIT = 4e5


def representable_keys(split_keys: np.ndarray, node_feature: np.ndarray, feature_shift: np.ndarray) -> np.ndarray:
    """The split keys with infinite thresholds made finite, or a ValueError for a threshold the walk
    cannot represent.

    Features are clipped to +-FEATURE_LIMIT before the search, so a finite threshold at or beyond it
    would silently compare wrong. An infinite one (scikit-learn's split of missing values against
    all others) only has to sort past every clipped value: +inf becomes FEATURE_LIMIT, -inf just
    below -FEATURE_LIMIT. Left infinite, it would break the sorted order of the shifted keys.
    """
    thresholds = split_keys - feature_shift[node_feature]
    finite = np.isfinite(thresholds)
    # The two values infinite thresholds become are what a bundle compiled here stores: loading it
    # checks its keys again, and they must pass.
    sentinel = (thresholds == FEATURE_LIMIT) | (thresholds == -FEATURE_LIMIT - 1)
    too_wide = finite & (np.abs(thresholds) >= FEATURE_LIMIT) & ~sentinel
    if too_wide.any():
        at = np.flatnonzero(too_wide)[0]
        raise ValueError(
            f"feature {node_feature[at]} splits at {thresholds[at]:g}, outside the +-{FEATURE_LIMIT:g} the compiled"
            f" forest represents ({too_wide.sum()} such thresholds); scale that feature before training"
        )
    thresholds = np.where(thresholds == np.inf, FEATURE_LIMIT, thresholds)
    thresholds = np.where(thresholds == -np.inf, -FEATURE_LIMIT - 1, thresholds)
    keys = thresholds + feature_shift[node_feature]
    if not (np.diff(keys) >= 0).all():  # also catches NaN thresholds
        raise ValueError("split keys are not in (feature, threshold) order")
    return keys


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
        self.n_features = len(self.block_sizes)
        self.depth = int(depth)
        # The walk runs on doubled node ids (2 * node), so one step is a single take: child of d is
        # walk_children[d + went_right]. Each split node reads its row's limit from a slot per
        # (feature, missing direction): a row missing that feature sets the slot's limit so that
        # every node goes its learned missing way, and no step needs a separate NaN branch.
        n_nodes = len(self.value)
        node_feature = np.repeat(np.arange(self.n_features), self.block_sizes)
        self.split_keys = representable_keys(self.split_keys, node_feature, self.feature_shift)
        self._beyond_every_node = 2 * n_nodes
        slot = np.zeros(n_nodes, dtype=np.intp)  # leaves read slot 0 and go nowhere either way
        slot[: self.n_splits] = 2 * node_feature + self.missing_right.astype(np.intp)
        self.walk_slot = np.repeat(slot, 2)
        self.walk_children = 2 * self.children.astype(np.intp)
        self.walk_value = np.repeat(self.value.astype(np.float64), 2)
        self.walk_roots = 2 * self.roots.astype(np.intp)
        self.tree_blocks = self.tree_blocks.astype(np.intp)

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
        if len(features) == 1:
            return self.predict_row(features[0])[None, :]
        if len(features) <= chunk_rows:
            return self._predict_chunk(features)
        parts = [self._predict_chunk(features[i : i + chunk_rows]) for i in range(0, len(features), chunk_rows)]
        return np.concatenate(parts)

    def _slot_limits(self, features: np.ndarray) -> np.ndarray:
        """Per row, each slot's limit on doubled node ids: a split node goes right exactly when its
        doubled id is below its slot's limit. Present features: twice the number of the feature's
        thresholds below the value. Missing ones: 0 for nodes that send missing values left, and
        above every id for those that send them right."""
        # np.clip's wrapper costs more than the clipping itself at one row; maximum keeps NaN as NaN.
        keys = np.minimum(np.maximum(features, -FEATURE_LIMIT), FEATURE_LIMIT)
        keys += self.feature_shift
        limits = self.split_keys.searchsorted(keys)
        limits += limits
        limits = limits.repeat(2, axis=-1)
        missing = np.isnan(features)
        if missing.any():
            limits[..., 0::2][missing] = 0
            limits[..., 1::2][missing] = self._beyond_every_node
        return limits

    def predict_row(self, row: np.ndarray) -> np.ndarray:
        """One row's raw predictions, shape (estimators,): the walk of every tree at once, a handful of
        numpy calls on arrays as long as the forest has trees (a request's latency path)."""
        limits = self._slot_limits(row)
        slots, children = self.walk_slot, self.walk_children
        node = self.walk_roots
        for _ in range(self.depth):
            node = children.take(node + (node < limits.take(slots.take(node))))
        return np.add.reduceat(self.walk_value.take(node), self.tree_blocks) + self.baseline

    def _predict_chunk(self, features: np.ndarray) -> np.ndarray:
        rows = len(features)
        limits = self._slot_limits(features).ravel()
        row_start = (np.arange(rows) * (2 * self.n_features))[:, None]
        slots, children = self.walk_slot, self.walk_children
        node = self.walk_roots  # broadcasts to (rows, trees) at the first step
        for _ in range(self.depth):
            # Leaves point to themselves, so rows that arrive early wait there.
            node = children.take(node + (node < limits.take(slots.take(node) + row_start)))
        leaf_values = np.atleast_2d(self.walk_value.take(node))
        return np.add.reduceat(leaf_values, self.tree_blocks, axis=1) + self.baseline
