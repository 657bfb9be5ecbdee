"""Data sets read through tensorflow-datasets' own builders, as array_record data sources.

binarized_mnist: the statically binarized MNIST of Larochelle & Murray (2011),
  tfds's ``binarized_mnist`` builder. That builder "downloads" three .amat
  files; tfds's download manager takes a file from the download config's
  ``manual_dir`` instead of its URL when a file of the name registered in the
  builder's checksums.tsv is there, and still verifies its SHA-256. So it is
  prepared offline from ``cfg.manual_dir`` (the shared copy lives in
  ``../shared/data/binarized_mnist``). Preparing needs TensorFlow (tfds's file
  reader and PNG encoder); reading the prepared array_record files does not.
  Prepared data already in ``cfg.data_dir`` is reused without the manual dir.
  Splits: train 50,000 / validation 10,000 / test 10,000, [28, 28, 1], values
  exactly 0/1, no labels (``validation_fraction`` does not apply). The order
  within a split is the one tfds wrote (its deterministic shuffle by key).
mnist, fashion_mnist, cifar10: ``tfds.data_source(name, data_dir=...)``, which
  downloads and prepares on first use (network needed once; offline, prepare it
  elsewhere and copy the data_dir). Grey 0..255 -> /255, 10 classes; validation carved from the official 60,000 training images by
  :func:`dgm_jax.data.splits.carve_validation`; test is the official 10,000.

``cfg.data_dir == ''`` means tfds's default (``~/tensorflow_datasets`` or
``$TFDS_DATA_DIR``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dgm_jax.config_schema import DataConfig
from dgm_jax.data import splits

BINARIZED_MNIST_FILES = {"train": "binarized_mnist_train.amat",
                         "validation": "binarized_mnist_valid.amat",
                         "test": "binarized_mnist_test.amat"}
_WHERE_TO_GET = ("the Larochelle & Murray .amat files "
                 "(http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/), "
                 "or the shared data directory ../shared/data/binarized_mnist beside the repository")


def _decode_split(source, keys=("image",)) -> dict[str, np.ndarray]:
    """Reads every record of a tfds data source [N] into stacked numpy arrays, one per key."""
    records = source.__getitems__(list(range(len(source))))   # one batched read, decoded by tfds
    return {k: np.stack([r[k] for r in records]) for k in keys}


def check_manual_dir(manual_dir: str) -> Path:
    """The manual dir as a Path; FileNotFoundError naming what is missing and where to get it."""
    if not manual_dir:
        raise FileNotFoundError(
            "binarized_mnist is not prepared in data.data_dir and data.manual_dir is empty: set "
            f"data.manual_dir to a directory holding {', '.join(BINARIZED_MNIST_FILES.values())} "
            f"({_WHERE_TO_GET}).")
    path = Path(manual_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data.manual_dir={manual_dir!r} does not exist; it must hold "
                                f"{', '.join(BINARIZED_MNIST_FILES.values())} ({_WHERE_TO_GET}).")
    missing = [f for f in BINARIZED_MNIST_FILES.values() if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"binarized_mnist: {', '.join(missing)} missing in data.manual_dir={manual_dir!r}; "
                                f"get {_WHERE_TO_GET}.")
    return path


def load_binarized_mnist(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds's binarized_mnist, prepared offline from cfg.manual_dir into cfg.data_dir on first use."""
    del seed
    import tensorflow_datasets as tfds
    builder = tfds.builder("binarized_mnist", data_dir=cfg.data_dir or None, file_format="array_record")
    if not builder.is_prepared():
        manual_dir = check_manual_dir(cfg.manual_dir)
        # try_download_gcs=False: never look for a pre-built copy online; the
        # download manager then finds each .amat in manual_dir by its
        # registered name and checks its SHA-256 against checksums.tsv.
        config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), try_download_gcs=False)
        builder.download_and_prepare(download_config=config)
    sources = builder.as_data_source()
    images = {s: _decode_split(sources[s])["image"].astype(np.float32) for s in splits.SPLITS}
    return splits.RawSplits(images=images, labels={s: None for s in splits.SPLITS}, num_classes=0, grey_levels=1)


def _load_labelled_tfds(name: str, cfg: DataConfig) -> splits.RawSplits:
    """tfds sets with 'image' uint8 [H, W, C] and 'label' (mnist, fashion_mnist, cifar10); validation carved from train."""
    import tensorflow_datasets as tfds
    try:
        sources = tfds.data_source(name, data_dir=cfg.data_dir or None)
    except OSError as e:   # requests' ConnectionError, socket and file errors are OSErrors
        where = cfg.data_dir or "tfds's default data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
        raise RuntimeError(
            f"could not download or prepare tfds data set {name!r} into {where}: {e}. If this machine is "
            f"offline, prepare it on one with network access (tfds.data_source({name!r}, data_dir=DIR)), "
            "copy DIR here and set data.data_dir=DIR.") from e
    data = {s: _decode_split(sources[s], ("image", "label")) for s in ("train", "test")}
    to_intensity = lambda grey: grey.astype(np.float32) / 255.0  # noqa: E731
    (train_x, train_y), (val_x, val_y) = splits.carve_validation(
        to_intensity(data["train"]["image"]), data["train"]["label"].astype(np.int32), cfg.validation_fraction)
    return splits.RawSplits(
        images={"train": train_x, "validation": val_x, "test": to_intensity(data["test"]["image"])},
        labels={"train": train_y, "validation": val_y, "test": data["test"]["label"].astype(np.int32)},
        num_classes=10, grey_levels=255)


def load_cifar10(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds 'cifar10': 32x32x3 8-bit colour, 50,000 train (validation carved from it) / 10,000 test, 10 classes.

    Needs the data prepared by tfds first (tfds.data_source('cifar10', data_dir=DIR) on a machine
    with network access, then data.data_dir=DIR here); use data.binarization='none'.
    """
    del seed
    return _load_labelled_tfds("cifar10", cfg)


def load_mnist(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds 'mnist': 60,000 train (validation carved from it) / 10,000 test, 10 classes."""
    del seed
    return _load_labelled_tfds("mnist", cfg)


def load_fashion_mnist(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds 'fashion_mnist': 60,000 train (validation carved from it) / 10,000 test, 10 classes."""
    del seed
    return _load_labelled_tfds("fashion_mnist", cfg)
