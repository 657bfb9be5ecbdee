"""Image data sets as host numpy arrays, and the rules that make them binary or keep their grey levels.

``load_dataset(cfg)`` looks ``cfg.name`` up in a registry of loaders (name ->
function returning :class:`dgm_jax.data.splits.RawSplits`), checks what the
loader gave, applies the binarization rule and ``train_subset``, and returns an
:class:`ImageDataset`. Sets and their fixed carves are documented where they
are loaded: :mod:`.embedded` (mnist5k, digits), :mod:`.tfds_sets`
(binarized_mnist, mnist, fashion_mnist), :mod:`.npz_file` (npz). Another
module adds a set with :func:`register_dataset` (e.g. ``synthetic``).

Binarization (``cfg.binarization``): the first three make every image the
models see exactly 0/1 (2 levels, a Bernoulli likelihood by default); ``none``
keeps the stored grey levels:
  static     the data must already be binary; anything else is a ValueError at
             load time naming the set and the values found.
  threshold  pixel = intensity > cfg.threshold (0 <= threshold < 1).
  dynamic    training draws pixel ~ Bernoulli(intensity) afresh every epoch
             (see :mod:`.pipeline`); scoring uses ONE fixed draw per split
             (:meth:`ImageDataset.eval_images`, seed crc32(split name)), the usual
             practice, so scores are comparable between runs and machines.
             On binary data (e.g. binarized_mnist) dynamic is allowed and equals
             static, since Bernoulli(0) and Bernoulli(1) are deterministic.
  none       the images keep their K grey levels (mnist5k 256, digits 17,
             photo_patches and cifar10 256 per colour channel), as
             x = level / (K - 1); ``ImageDataset.num_levels`` is K and the
             likelihood (categorical, discretized_logistic_mixture) models all K.
Scores are only comparable within one scheme (static vs dynamic differ; a
binary NLL is not comparable with a grey-level one).

``train_subset = n > 0`` keeps the first n training images of a fixed
permutation (seed splits.SUBSET_SEED), for overfitting experiments.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable

import numpy as np

from dgm_jax import input_checks
from dgm_jax.config_schema import DataConfig
from dgm_jax.data import embedded, npz_file, photos, splits, tfds_sets
from dgm_jax.observations.base import off_grid

Loader = Callable[[DataConfig, int], splits.RawSplits]

_LOADERS: dict[str, Loader] = {
    "mnist5k": embedded.load_mnist5k,
    "digits": embedded.load_digits,
    "binarized_mnist": tfds_sets.load_binarized_mnist,
    "mnist": tfds_sets.load_mnist,
    "fashion_mnist": tfds_sets.load_fashion_mnist,
    "cifar10": tfds_sets.load_cifar10,
    "photo_patches": photos.load_photo_patches,
    "npz": npz_file.load_npz,
}
# The sets this module defines ('synthetic' is registered by data/synthetic.py).
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def register_dataset(name: str, loader: Loader) -> None:
    """Makes ``load_dataset`` accept ``cfg.name == name``.

    ``loader(cfg: DataConfig, seed: int) -> RawSplits`` returns float32
    intensities in [0, 1] for 'train', 'validation', 'test' (see
    :class:`dgm_jax.data.splits.RawSplits`); binarization checks and
    train_subset are applied by load_dataset, not by the loader.
    """
    if name in _LOADERS and _LOADERS[name] is not loader:
        raise ValueError(f"data set {name!r} is already registered")
    _LOADERS[name] = loader


def registered_datasets() -> tuple[str, ...]:
    """Every name load_dataset accepts now (DATASETS plus registered ones)."""
    return tuple(_LOADERS)


def eval_seed(split: str) -> int:
    """Seed of the fixed dynamic-binarization draw of a split: crc32 of its name (stable everywhere)."""
    return zlib.crc32(split.encode("utf-8"))


def bernoulli(intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A float32 {0,1} draw of the same shape, P(1) = intensity (exact for 0 and 1)."""
    return (rng.random(intensity.shape, dtype=np.float32) < intensity).astype(np.float32)


def threshold_images(intensity: np.ndarray, threshold: float) -> np.ndarray:
    """float32 {0,1}: intensity > threshold."""
    return (intensity > threshold).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """Host-side splits of one data set.

    images: 'train', 'validation', 'test' -> float32 [N, H, W, C] intensities
      in [0, 1] (exactly 0/1 for binary sets).
    labels: split -> int32 [N] class labels, float32 [N, D] conditioning
      vectors, or None when unlabelled.
    num_classes: classes of int labels, 0 otherwise.
    binarization, threshold: the rule from the config (module docstring).
    truth: the known data distribution of a synthetic set
      (:class:`dgm_jax.data.synthetic.KnownDistribution`), else None; when
      set, evaluation also reports the exact KL (dgm_jax/known_truth.py).
    """
    name: str
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray | None]
    num_classes: int
    binarization: str
    threshold: float
    grey_levels: int = 1     # the stored level that means intensity 1 (255 for 8-bit data, 1 for binary)
    truth: Any = None
    # Not an init field, so dataclasses.replace(ds, images=...) starts with an empty cache.
    _eval_cache: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C)."""
        return tuple(self.images["train"].shape[1:])

    @property
    def num_levels(self) -> int:
        """K, the values per sub-pixel the models see: 2 once binarized, grey_levels + 1 with 'none'."""
        return self.grey_levels + 1 if self.binarization == "none" else 2

    @property
    def cond_dim(self) -> int:
        """Width of the conditioning vector: num_classes for int labels, D for [N, D] vectors, 0 if none."""
        y = self.labels["train"]
        if y is None:
            return 0
        return self.num_classes if y.ndim == 1 else int(y.shape[1])

    def eval_images(self, split: str) -> np.ndarray:
        """float32 [N, H, W, C]: the fixed images a split is scored on (0/1, or level / (K - 1) for 'none').

        static and none: as stored; threshold: intensity > threshold; dynamic: one
        Bernoulli draw with seed :func:`eval_seed` (split) — identical on
        every call and every machine. Cached; treat the result as read-only.
        """
        if split not in self._eval_cache:
            x = self.images[split]
            if self.binarization in ("static", "none"):
                out = x.view()   # a read-only view; the stored array stays writable
            elif self.binarization == "threshold":
                out = threshold_images(x, self.threshold)
            else:
                out = bernoulli(x, np.random.default_rng(eval_seed(split)))
            out.setflags(write=False)
            self._eval_cache[split] = out
        return self._eval_cache[split]


def _describe_values(values: np.ndarray, grey_levels: int) -> str:
    """'0, 3, 18, ..., 255' of the distinct values, shown as the stored grey levels."""
    shown = np.round(values * grey_levels, 4) if grey_levels > 1 else values
    fmt = lambda v: f"{v:g}"  # noqa: E731
    if len(shown) <= 8:
        return ", ".join(map(fmt, shown))
    return ", ".join(map(fmt, shown[:6])) + f", ... {fmt(shown[-1])} ({len(shown)} distinct)"


def _check_splits(name: str, raw: splits.RawSplits) -> None:
    """What every loader must give: the three splits, float32 [N,H,W,C] in [0,1], one image size, matching labels."""
    for s in splits.SPLITS:
        x = raw.images.get(s)
        if x is None or x.dtype != np.float32 or x.ndim != 4 or len(x) == 0:
            raise ValueError(f"{name}: split {s!r} must be non-empty float32 [N, H, W, C], got "
                             f"{None if x is None else (x.dtype, x.shape)}")
        if x.shape[1:] != raw.images["train"].shape[1:]:
            raise ValueError(f"{name}: split {s!r} images are {x.shape[1:]}, train's {raw.images['train'].shape[1:]}")
        check_intensities(x, f"{name}: split {s!r}")
        y = raw.labels.get(s)
        if (y is None) != (raw.labels.get("train") is None):
            raise ValueError(f"{name}: labels must be given for every split or none (split {s!r})")
        if y is not None and len(y) != len(x):
            raise ValueError(f"{name}: split {s!r} has {len(y)} labels for {len(x)} images")
        if y is not None and y.ndim == 1 and y.dtype != np.int32:
            raise ValueError(f"{name}: split {s!r} labels must be int32 class labels, got {y.dtype}")
        if y is not None:
            _check_split_labels(y, raw.num_classes, f"{name}: split {s!r}")


_CHUNK = 4096     # images per block of the value checks


def check_intensities(x: np.ndarray, where: str) -> None:
    """float intensities [N, H, W, C] finite and in [0, 1]; a ValueError naming the first bad index and value."""
    for start in range(0, len(x), _CHUNK):         # in chunks: no full-size temporaries for big sets
        part = x[start:start + _CHUNK]
        bad = ~((part >= 0) & (part <= 1))          # NaN compares False: bad
        if bad.any():
            i = input_checks.first_bad(bad)
            index = (start + i[0],) + i[1:]
            raise ValueError(f"{where} has intensities outside [0, 1] or not finite: image {index[0]} "
                             f"x{input_checks.index_str(index)} = {part[i]:g}")


def _check_split_labels(y: np.ndarray, num_classes: int, where: str) -> None:
    """int labels [N] in [0, num_classes), or finite vectors [N, D]."""
    if y.ndim == 1:
        input_checks.check_labels(y, num_classes, where + " labels")
    else:
        input_checks.check_vectors(y, None, where + " labels")


def check_split(ds: "ImageDataset", split: str) -> None:
    """What a model is fed from split `split` of ds: intensities in [0, 1], exactly on the grid of
    ds.num_levels when they are used as stored (binarization static or none), int labels in
    [0, num_classes) or finite vectors of width cond_dim. A ValueError names the set, the split,
    the index and the value (the training pipeline and build_run call it)."""
    x, y = ds.images[split], ds.labels.get(split)
    where = f"data set {ds.name!r}: split {split!r}"
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"{where}: images must be non-empty [N, H, W, C], got shape {x.shape}")
    check_intensities(x, where)
    if ds.binarization in ("static", "none"):
        k = ds.num_levels
        for start in range(0, len(x), _CHUNK):
            part = x[start:start + _CHUNK]
            bad = off_grid(part, k, np)
            if bad.any():
                i = input_checks.first_bad(bad)
                index = (start + i[0],) + i[1:]
                grid = "0/1 (binarization='static')" if ds.binarization == "static" else f"multiples of 1/{k - 1}"
                raise ValueError(f"{where}: intensities must be {grid}; image {index[0]} "
                                 f"x{input_checks.index_str(index)} = {part[i]:g}")
    if y is not None:
        if len(y) != len(x):
            raise ValueError(f"{where}: {len(y)} labels for {len(x)} images")
        _check_split_labels(y, ds.num_classes, where)
        if y.ndim == 2 and y.shape[1] != ds.cond_dim:
            raise ValueError(f"{where}: condition vectors of width {y.shape[1]}, the train split's are {ds.cond_dim}")



def _check_grey_levels(name: str, raw: splits.RawSplits) -> None:
    """binarization='none': every intensity must be level / grey_levels for an integer level."""
    for s in splits.SPLITS:
        x = raw.images[s] * raw.grey_levels
        if np.abs(x - np.round(x)).max() > 1e-3:
            raise ValueError(f"{name}: binarization='none' keeps grey levels, but split {s!r} has intensities that "
                             f"are not multiples of 1/{raw.grey_levels} (e.g. float images); store 8-bit data as "
                             "uint8, or binarize (static | dynamic | threshold)")


def load_dataset(cfg: DataConfig, *, seed: int = 0) -> ImageDataset:
    """Loads cfg.name, checks it against cfg.binarization, applies cfg.train_subset.

    ``seed`` is passed to the loader; the built-in sets ignore it (their carves
    are fixed so that every run is selected and scored on the same images).
    """
    if cfg.name not in _LOADERS:
        raise ValueError(f"unknown data set {cfg.name!r}; valid names: {', '.join(_LOADERS)}")
    if cfg.binarization not in ("static", "dynamic", "threshold", "none"):
        raise ValueError(f"data.binarization={cfg.binarization!r}; valid: static, dynamic, threshold, none")
    if cfg.binarization == "threshold" and not 0.0 <= cfg.threshold < 1.0:
        raise ValueError(f"data.threshold={cfg.threshold} must be in [0, 1)")
    if cfg.train_subset < 0:
        raise ValueError(f"data.train_subset={cfg.train_subset} must be >= 0")

    raw = _LOADERS[cfg.name](cfg, seed)
    _check_splits(cfg.name, raw)
    if cfg.binarization == "static" and not all(((x == 0) | (x == 1)).all() for x in raw.images.values()):
        values = np.unique(np.concatenate([raw.images[s].ravel() for s in splits.SPLITS]))
        raise ValueError(f"{cfg.name} has pixel values other than 0/1 (found "
                         f"{_describe_values(values, raw.grey_levels)}); "
                         "use binarization='dynamic' or 'threshold'")

    if cfg.binarization == "none":
        _check_grey_levels(cfg.name, raw)
    images, labels = dict(raw.images), dict(raw.labels)
    if cfg.train_subset > 0:
        idx = splits.subset_indices(len(images["train"]), cfg.train_subset)
        images["train"], labels["train"] = images["train"][idx], splits.take(labels["train"], idx)
    return ImageDataset(name=cfg.name, images=images, labels=labels, num_classes=raw.num_classes,
                        binarization=cfg.binarization, threshold=cfg.threshold, grey_levels=raw.grey_levels,
                        truth=raw.truth)
