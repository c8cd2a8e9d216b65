"""Deterministic, class-stratified partitions of a sample pool into the train/test/attack splits.

Splits must be disjoint and reproducible from the seed alone, so that the attacker's data is never trained on.
"""

from __future__ import annotations

import numpy as np

from edgesplit.errors import DataError

POOL_FRACTIONS = {"train": 0.6, "test": 0.2, "attack": 0.2}


def stratified_partition(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Split indices 0..len(labels)-1 into len(fractions) disjoint parts covering them all, per-class.

    Each class is spread over the parts in proportion (±1 sample); each part is returned in seeded order.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    order = [rng.permutation(np.flatnonzero(labels == c)) for c in rng.permutation(np.unique(labels))]
    order = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
    total = float(sum(fractions))
    shares = [f / total for f in fractions]
    counts = [0] * len(shares)
    assigned = np.empty(len(order), dtype=np.int64)
    # Largest-deficit dealing over the class-grouped order: every class run gets its share (±1).
    for i in range(len(order)):
        deficits = [s * (i + 1) - c for s, c in zip(shares, counts, strict=True)]
        part = deficits.index(max(deficits))
        assigned[i] = part
        counts[part] += 1
    return [rng.permutation(order[assigned == p]).astype(np.int64) for p in range(len(shares))]


def pool_split(labels: np.ndarray, split: str, seed: int) -> np.ndarray:
    """Ids of `split` when one pool feeds all three splits (60 % train, 20 % test, 20 % attack).

    Used by digits and by image folders without their own train/test folders.
    """
    parts = stratified_partition(labels, [POOL_FRACTIONS[s] for s in ("train", "test", "attack")], seed)
    return parts[("train", "test", "attack").index(split)]


def train_attack_split(labels: np.ndarray, split: str, seed: int, attack_fraction: float) -> np.ndarray:
    """Ids of `split` ("train" or "attack") in an official training pool; attack gets `attack_fraction`.

    The test split comes from the data set's own test pool and is not drawn here.
    """
    if split not in ("train", "attack"):
        raise DataError(f"split '{split}' is not drawn from the training pool; use train or attack")
    train, attack = stratified_partition(labels, [1.0 - attack_fraction, attack_fraction], seed)
    return train if split == "train" else attack
