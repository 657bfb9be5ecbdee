"""Data sets read through tensorflow-datasets' own builders, as array_record data sources.

Every set here is tfds's official builder, prepared into ``cfg.data_dir`` on
first use (``''`` = tfds's default, ``~/tensorflow_datasets`` or
``$TFDS_DATA_DIR``) and read back as an array_record data source (reading needs
no TensorFlow; preparing needs it, for tfds's file reader and PNG encoder).
Prepared data already in ``cfg.data_dir`` is reused without any download.

Offline preparation (``cfg.manual_dir``): a builder "downloads" the files
registered in its checksums.tsv; tfds's download manager takes a file from the
download config's manual dir instead of its URL when a file of the registered
name is there, and still verifies its size and SHA-256. So with
``cfg.manual_dir`` set, the set is prepared from that directory, never from the
network (:data:`MANUAL_FILES` lists the names each builder looks for). The
shared copies live beside the repository in ``../shared/data/binarized_mnist``
and ``../shared/data/mnist``. Without a manual dir, binarized_mnist is refused
and the others are downloaded by tfds (network needed once).

binarized_mnist: the statically binarized MNIST of Larochelle & Murray (2011).
  Splits as shipped: train 50,000 / validation 10,000 / test 10,000,
  [28, 28, 1], values exactly 0/1, no labels (``validation_fraction`` does not
  apply). The order within a split is the one tfds wrote (its deterministic
  shuffle by key).
mnist, fashion_mnist, cifar10: 8-bit images with 10 classes; x = level / 255
  (grey_levels 255, so binarization='none' keeps all 256 levels). Validation is
  carved from the official training images (60,000; cifar10 50,000) by
  :func:`dgm_jax.data.splits.carve_validation` with ``cfg.validation_fraction``
  (mnist: 54,000 / 6,000 at the default 0.1, 50,000 / 10,000 at 1/6); test is
  the official 10,000. For cifar10 use data.binarization='none'.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dgm_jax.config_schema import DataConfig
from dgm_jax.data import splits


@dataclasses.dataclass(frozen=True)
class ManualFiles:
    """What a builder's download manager looks for in a manual dir, and where a user gets it."""
    files: tuple[str, ...]    # the file names registered in the builder's checksums.tsv
    where: str                # where to get them, for error messages


BINARIZED_MNIST_FILES = {"train": "binarized_mnist_train.amat",
                         "validation": "binarized_mnist_valid.amat",
                         "test": "binarized_mnist_test.amat"}
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MANUAL_FILES = {
    "binarized_mnist": ManualFiles(
        tuple(BINARIZED_MNIST_FILES.values()),
        "the Larochelle & Murray .amat files "
        "(http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/), "
        "or the shared data directory ../shared/data/binarized_mnist beside the repository"),
    "mnist": ManualFiles(
        IDX_FILES,
        "the four gzipped IDX files of LeCun, Cortes & Burges (tfds's mirror: "
        "https://storage.googleapis.com/cvdf-datasets/mnist/), "
        "or the shared data directory ../shared/data/mnist beside the repository"),
    "fashion_mnist": ManualFiles(IDX_FILES, "Zalando's four gzipped IDX files "
                                            "(https://github.com/zalandoresearch/fashion-mnist)"),
    "cifar10": ManualFiles(("cifar-10-binary.tar.gz",), "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
}


def _decode_split(source, keys=("image",)) -> dict[str, np.ndarray]:
    """Reads every record of a tfds data source [N] into stacked numpy arrays, one per key."""
    records = source.__getitems__(list(range(len(source))))   # one batched read, decoded by tfds
    return {k: np.stack([r[k] for r in records]) for k in keys}


def check_manual_dir(manual_dir: str, name: str = "binarized_mnist") -> Path:
    """The manual dir of set `name` as a Path; FileNotFoundError naming what is missing and where to get it."""
    need = MANUAL_FILES[name]
    listed = ", ".join(need.files)
    if not manual_dir:
        raise FileNotFoundError(
            f"{name} is not prepared in data.data_dir and data.manual_dir is empty: set "
            f"data.manual_dir to a directory holding {listed} ({need.where}).")
    path = Path(manual_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data.manual_dir={manual_dir!r} does not exist; it must hold {listed} "
                                f"({need.where}).")
    missing = [f for f in need.files if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{name}: {', '.join(missing)} missing in data.manual_dir={manual_dir!r}; "
                                f"get {need.where}.")
    return path


def _builder(name: str, cfg: DataConfig):
    import tensorflow_datasets as tfds
    return tfds.builder(name, data_dir=cfg.data_dir or None, file_format="array_record")


def check_available(name: str, cfg: DataConfig) -> None:
    """Returns when set `name` can be loaded offline: prepared in cfg.data_dir, or every
    file in cfg.manual_dir; else the FileNotFoundError of :func:`check_manual_dir`."""
    if not _builder(name, cfg).is_prepared():
        check_manual_dir(cfg.manual_dir, name)


def _prepared_sources(name: str, cfg: DataConfig, *, network: bool) -> dict:
    """{split: tfds data source} of tfds's builder `name`, prepared first when it is not.

    With cfg.manual_dir: offline, from its files (checked by name first). Without:
    downloaded by tfds when `network`, else refused.
    """
    import tensorflow_datasets as tfds
    builder = _builder(name, cfg)
    if not builder.is_prepared():
        if cfg.manual_dir or not network:
            manual_dir = check_manual_dir(cfg.manual_dir, name)
            # try_download_gcs=False: never look for a pre-built copy online; the download
            # manager then finds each registered file in manual_dir by its name and checks
            # its SHA-256 against checksums.tsv.
            config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), try_download_gcs=False)
            builder.download_and_prepare(download_config=config)
        else:
            try:
                builder.download_and_prepare()
            except OSError as e:   # requests' ConnectionError, socket and file errors are OSErrors
                where = cfg.data_dir or "tfds's default data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
                raise RuntimeError(
                    f"could not download or prepare tfds data set {name!r} into {where}: {e}. If this machine "
                    f"is offline, set data.manual_dir to a directory holding {', '.join(MANUAL_FILES[name].files)} "
                    f"({MANUAL_FILES[name].where}), or prepare it on a machine with network access "
                    f"(tfds.data_source({name!r}, data_dir=DIR)), copy DIR here and set data.data_dir=DIR.") from e
    return builder.as_data_source()


def load_binarized_mnist(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds's binarized_mnist, prepared offline from cfg.manual_dir into cfg.data_dir on first use."""
    del seed
    sources = _prepared_sources("binarized_mnist", cfg, network=False)
    images = {s: _decode_split(sources[s])["image"].astype(np.float32) for s in splits.SPLITS}
    return splits.RawSplits(images=images, labels={s: None for s in splits.SPLITS}, num_classes=0, grey_levels=1)


def _load_labelled_tfds(name: str, cfg: DataConfig) -> splits.RawSplits:
    """tfds sets with 'image' uint8 [H, W, C] and 'label' (mnist, fashion_mnist, cifar10); validation carved from train."""
    sources = _prepared_sources(name, cfg, network=True)
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

    Offline: data.manual_dir holding cifar-10-binary.tar.gz, or the data prepared by tfds
    elsewhere (tfds.data_source('cifar10', data_dir=DIR)) and data.data_dir=DIR here;
    use data.binarization='none'.
    """
    del seed
    return _load_labelled_tfds("cifar10", cfg)


def load_mnist(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds 'mnist': 60,000 train (validation carved from it) / 10,000 test, 10 classes, 256 grey levels.

    Offline: data.manual_dir holding the four IDX files (e.g. ../shared/data/mnist).
    """
    del seed
    return _load_labelled_tfds("mnist", cfg)


def load_fashion_mnist(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """tfds 'fashion_mnist': 60,000 train (validation carved from it) / 10,000 test, 10 classes."""
    del seed
    return _load_labelled_tfds("fashion_mnist", cfg)
