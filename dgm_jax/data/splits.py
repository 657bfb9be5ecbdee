"""What a data set loader returns, and the fixed carves of splits a set does not ship.

A loader (see :func:`dgm_jax.data.datasets.register_dataset`) returns
:class:`RawSplits`: float32 intensities in [0, 1] for 'train', 'validation'
and 'test', with labels or None. :func:`dgm_jax.data.datasets.load_dataset`
checks them, applies the binarization rule and ``train_subset``.

Carves never depend on ``config.seed``: runs with different seeds must be
selected and scored on the same images. They use numpy ``Generator``
permutations with the constant seeds below (NEP 19 lets numpy change a
Generator's stream between releases; tests pin a fingerprint of the carve so
such a change cannot pass silently).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

SPLITS = ("train", "validation", "test")

# Constant seeds of the fixed carves (deliberately not config.seed).
TEST_CARVE_SEED = 20110401
VALIDATION_CARVE_SEED = 20110402
SUBSET_SEED = 20110403


class RawSplits(NamedTuple):
    """Splits as a loader gives them, before the binarization rule is applied.

    images: split -> float32 [N, H, W, C] intensities in [0, 1].
    labels: split -> int32 [N] class labels, float32 [N, D] vectors, or None
      (the same kind for every split).
    num_classes: number of classes of int labels, 0 otherwise.
    grey_levels: the stored grey level that means intensity 1 (255 for 8-bit
      images, 16 for sklearn digits, 1 for binary data); used only to print
      the original values in error messages.
    truth: the exact distribution of the data when it is known (a synthetic
      set's :class:`dgm_jax.data.synthetic.KnownDistribution`), else None.
    """
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray | None]
    num_classes: int
    grey_levels: int = 1
    truth: Any = None


def balanced_test_indices(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices [per_class * num_classes] of a class-balanced test set, sorted.

    For each class, the first ``per_class`` of its images in a fixed
    permutation (seed TEST_CARVE_SEED) of all images.
    """
    perm = np.random.default_rng(TEST_CARVE_SEED).permutation(len(labels))
    chosen = []
    for c in np.unique(labels):
        of_class = perm[labels[perm] == c]
        if len(of_class) < per_class:
            raise ValueError(f"class {c} has {len(of_class)} images, fewer than the {per_class} the test carve takes")
        chosen.append(of_class[:per_class])
    return np.sort(np.concatenate(chosen))


def validation_carve(num_train: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, validation_idx) splitting range(num_train) by a fixed permutation.

    Validation takes round(fraction * num_train) images (at least 1, leaving
    at least 1 for training): the first ones of a permutation with seed
    VALIDATION_CARVE_SEED; train keeps the rest in that permuted order.
    """
    if num_train < 2:
        raise ValueError(f"cannot carve a validation split from {num_train} training image(s)")
    num_val = min(max(1, int(round(fraction * num_train))), num_train - 1)
    perm = np.random.default_rng(VALIDATION_CARVE_SEED).permutation(num_train)
    return perm[num_val:], perm[:num_val]


def take(array: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    """array[idx] (None stays None)."""
    return None if array is None else array[idx]


def carve_validation(images: np.ndarray, labels: np.ndarray | None, fraction: float):
    """Splits a training set [N, ...] into ((train_x, train_y), (val_x, val_y)) by :func:`validation_carve`."""
    train_idx, val_idx = validation_carve(len(images), fraction)
    return (images[train_idx], take(labels, train_idx)), (images[val_idx], take(labels, val_idx))


def subset_indices(num_train: int, n: int) -> np.ndarray:
    """The first n indices of a fixed permutation (seed SUBSET_SEED) of range(num_train)."""
    if n > num_train:
        raise ValueError(f"data.train_subset={n} exceeds the {num_train} training images")
    return np.random.default_rng(SUBSET_SEED).permutation(num_train)[:n]
