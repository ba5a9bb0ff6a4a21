"""Fitted histogram-gradient-boosting trees compiled to flat numpy arrays for fast prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

FEATURE_SPAN = 1e6  # wider than any feature's range: seconds in a day (86,400) are the widest
FEATURE_LIMIT = 4e5


def representable_keys(split_keys: np.ndarray, node_feature: np.ndarray, feature_shift: np.ndarray) -> np.ndarray:
    """The split keys with infinite thresholds made finite, or a ValueError for a threshold the
    compiled forest cannot represent.

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
    """Several boosted regressors predicted together from bit sets of reachable leaves.

    scikit-learn's predict pays a fixed cost per call (validation, an OpenMP pool) that dwarfs one
    row's work, and scikit-learn itself takes seconds to import. Here the split nodes of every tree
    are renumbered in (feature, threshold) order, and each feature's thresholds are searched once
    for all its nodes. A row goes right at a split node exactly when the node's threshold is below
    its value, and then no leaf of the node's left subtree can be the row's: the node clears those
    leaves' bits. With leaves numbered left to right in each tree, the lowest bit that survives the
    clears of every node the row passes right of is the leaf scikit-learn's walk reaches (the
    QuickScorer argument). The clears for "a feature's first k thresholds are below the value" are
    one row of a table, built at load, so a prediction is one gather of a table row per feature, an
    AND and a count of trailing zeros per tree: about 15 numpy calls whatever the depth or the
    number of trees. The arrays load with numpy alone.
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
        node_feature = np.repeat(np.arange(self.n_features), self.block_sizes)
        self.split_keys = representable_keys(self.split_keys, node_feature, self.feature_shift)
        self.tree_blocks = self.tree_blocks.astype(np.intp)
        self._leaf_sets(node_feature)

    def _leaf_sets(self, node_feature: np.ndarray) -> None:
        """The table: per feature, a row per count of its thresholds below a value (0 .. all of
        them) and one for a missing value (the nodes that send missing values right), each row the
        leaves of every tree that its clears leave reachable. A count's row is the AND of the rows
        before it and the clears of the nodes at that threshold.

        The searched keys hold, per feature, a key below every value, its thresholds, and a key
        between every value and the one a missing value is given: the position a search returns is
        then the row itself (missing: the first row of the next feature's block; row 0 is unused).
        """
        children = self.children.astype(np.intp).reshape(-1, 2)
        number, tree, per_tree = leaf_numbers(children, self.roots, self.n_splits)
        words = -(-int(per_tree.max()) // 64)
        first = np.arange(len(children))
        for _ in range(self.depth):  # down the left children to each node's leftmost leaf
            first = children[first, 0]
        splits = np.arange(self.n_splits)
        keep = keep_bits(number[first[splits]], number[first[children[splits, 1]]], words)
        thresholds, rank = np.unique(self.split_keys, return_inverse=True)
        per_feature = np.bincount(node_feature[np.unique(rank, return_index=True)[1]], minlength=self.n_features)
        block = np.concatenate([[0], np.cumsum(per_feature + 2)])  # feature j's keys and rows from block[j] + 1
        keys = np.empty(block[-1])
        keys[block[:-1]] = self.feature_shift - FEATURE_LIMIT - 2
        keys[block[1:] - 1] = self.feature_shift + FEATURE_LIMIT + 1
        keys[np.setdiff1d(np.arange(block[-1]), np.concatenate([block[:-1], block[1:] - 1]))] = thresholds
        table = np.full((block[-1] + 1, len(self.roots), words), np.uint64(2**64 - 1))
        below = rank - np.concatenate([[0], np.cumsum(per_feature)[:-1]])[node_feature]  # rank in its feature
        np.bitwise_and.at(table, (block[node_feature] + below + 2, tree[splits]), keep)
        right = self.missing_right.astype(bool)
        np.bitwise_and.at(table, (block[node_feature[right] + 1], tree[splits][right]), keep[right])
        for start, stop in zip(block[:-1].tolist(), block[1:].tolist()):
            np.bitwise_and.accumulate(table[start + 1 : stop], axis=0, out=table[start + 1 : stop])
        self._table = table.reshape(len(table), -1)
        self._table_keys = keys
        # A missing value's row is the first of the next feature's block, the row its key (above
        # every value, below the next feature's keys) would be found at; a value below -FEATURE_LIMIT
        # takes the row -FEATURE_LIMIT is found at, as if clipped.
        self._missing_rows = keys.searchsorted(self.feature_shift + FEATURE_LIMIT + 2)
        self._lowest_rows = keys.searchsorted(-FEATURE_LIMIT + self.feature_shift)
        self._words = words
        leaves = np.arange(self.n_splits, len(children))
        leaves = leaves[np.lexsort((number[leaves], tree[leaves]))]
        values = self.value.astype(np.float64)[leaves]
        # Each estimator's baseline rides on its first tree's leaves: one addition per prediction fewer.
        estimator = np.searchsorted(self.tree_blocks, tree[leaves], side="right") - 1
        firsts = self.tree_blocks[estimator] == tree[leaves]
        values[firsts] += self.baseline[estimator[firsts]]
        self._leaf_values = values
        self._leaf_start = np.concatenate([[0], np.cumsum(per_tree)[:-1]]) - 1  # - 1: trailing zeros + 1 below

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
            return self._predict(features)
        # A chunk's gather holds rows x features x trees words: kept small enough to stay in cache.
        parts = [self._predict(features[i : i + chunk_rows]) for i in range(0, len(features), chunk_rows)]
        return np.concatenate(parts)

    def predict_row(self, row: np.ndarray) -> np.ndarray:
        """One row's raw predictions, shape (estimators,) (a request's latency path)."""
        return self._predict(row)

    def _predict(self, features: np.ndarray) -> np.ndarray:
        """Raw predictions of one row (shape (features,)) or of a few (shape (rows, features))."""
        # Each numpy call costs more than its work at one row, so: minimum keeps NaN as NaN, NaN is
        # searched past every key, and the rows found are then bounded to the feature's own: its
        # missing row from above, the row of -FEATURE_LIMIT from below (np.clip's wrapper costs more).
        keys = np.minimum(features, FEATURE_LIMIT)
        keys += self.feature_shift
        at = self._table_keys.searchsorted(keys)
        np.minimum(at, self._missing_rows, out=at)
        np.maximum(at, self._lowest_rows, out=at)
        reachable = np.bitwise_and.reduce(self._table.take(at, axis=0), axis=-2)
        if self._words == 1:
            leaf = np.bitwise_count(reachable ^ (reachable - 1)) + self._leaf_start  # trailing zeros + 1
        else:
            reachable = reachable.reshape(*reachable.shape[:-1], len(self.roots), self._words)
            word = (reachable != 0).argmax(axis=-1)
            bits = np.take_along_axis(reachable, word[..., None], axis=-1)[..., 0]
            leaf = np.bitwise_count(bits ^ (bits - 1)) + (64 * word + self._leaf_start)
        return np.add.reduceat(self._leaf_values.take(leaf), self.tree_blocks, axis=-1)


def leaf_numbers(children: np.ndarray, roots: np.ndarray, n_splits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each node's tree and each leaf's number in its tree, left to right; and the leaves per tree."""
    number = np.zeros(len(children), dtype=np.intp)
    tree_of = np.zeros(len(children), dtype=np.intp)
    per_tree = np.zeros(len(roots), dtype=np.intp)
    left, right = children[:, 0].tolist(), children[:, 1].tolist()
    for tree, root in enumerate(roots.tolist()):
        count, stack = 0, [root]
        while stack:
            node = stack.pop()
            tree_of[node] = tree
            if node >= n_splits:
                number[node] = count
                count += 1
            else:
                stack += (right[node], left[node])  # the left subtree is popped, and numbered, first
        per_tree[tree] = count
    return number, tree_of, per_tree


def keep_bits(cleared_from: np.ndarray, cleared_to: np.ndarray, words: int) -> np.ndarray:
    """Per node, 64-bit words with every bit set but those of leaves cleared_from .. cleared_to - 1."""
    keep = np.empty((len(cleared_from), words), dtype=np.uint64)
    every = 2**64 - 1
    for word in range(words):
        low = np.clip(cleared_from - 64 * word, 0, 64).tolist()
        high = np.clip(cleared_to - 64 * word, 0, 64).tolist()
        keep[:, word] = [every ^ ((1 << h) - (1 << lo)) for lo, h in zip(low, high)]
    return keep
