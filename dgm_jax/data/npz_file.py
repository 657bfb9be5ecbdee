"""The user's own images, from one ``.npz`` file (``data.name='npz'``, ``data.path=FILE``).

Keys (any other key is an error, so a typo such as 'valid' is caught):
  train, test            required; images [N, H, W] or [N, H, W, C], N >= 1,
                         the same H, W, C in every split.
  validation             optional; when absent, carved from train by
                         :func:`dgm_jax.data.splits.carve_validation`
                         (data.validation_fraction, fixed permutation).
  train_labels, validation_labels, test_labels
                         optional, but all present or none (validation_labels
                         may be omitted only when validation is carved):
                         int [N] class labels, or float [N, D] conditioning
                         vectors (finite, same D everywhere).

Image values:
  - integer dtypes hold grey levels 0..255. If every value of every integer
    split is 0 or 1 the file is taken as BINARY (intensity = value);
    otherwise intensity = grey / 255 (a grey image that happens to use only
    levels 0 and 1 would be read as binary: store such data as float).
  - bool: binary.
  - float dtypes must already be intensities in [0, 1] (no NaN or inf); grey
    levels stored as floats (e.g. 0..255) are an error, not silently rescaled.
  - anything else (complex, strings, objects) is an error.
Class labels: num_classes = 1 + the largest train label; labels must be
non-negative and validation/test labels below num_classes.
Every problem raises a ValueError naming the file, the key and the problem.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dgm_jax import input_checks
from dgm_jax.config_schema import DataConfig
from dgm_jax.data import splits

IMAGE_KEYS = splits.SPLITS
LABEL_KEYS = tuple(f"{s}_labels" for s in splits.SPLITS)


def _fail(path, key, problem):
    where = f"{path}: key {key!r}" if key else str(path)
    raise ValueError(f"npz data set {where}: {problem}")


def _read(path_str: str) -> tuple[Path, dict[str, np.ndarray]]:
    """Every array of the file (no pickles), with the key set checked."""
    if not path_str:
        raise ValueError("data.name='npz' needs data.path, the .npz file with keys 'train' and 'test'")
    path = Path(path_str).expanduser()
    if not path.is_file():
        _fail(path, None, "file does not exist (data.path)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as e:  # not a zip, a pickled object array, a truncated file...
        _fail(path, None, f"cannot be read as an .npz of plain arrays ({type(e).__name__}: {e})")
    unknown = sorted(set(arrays) - set(IMAGE_KEYS) - set(LABEL_KEYS))
    if unknown:
        _fail(path, unknown[0], f"unknown key; valid keys: {', '.join(IMAGE_KEYS + LABEL_KEYS)}")
    for key in ("train", "test"):
        if key not in arrays:
            _fail(path, key, f"missing (the file has {', '.join(sorted(arrays)) or 'no arrays'})")
    return path, arrays


def _first(key, mask: np.ndarray) -> str:
    """'train[3, 2, 2]': the first True of mask, as an index into the file's array `key`."""
    return key + input_checks.index_str(input_checks.first_bad(mask))


def _check_images(path, key, stored: np.ndarray) -> np.ndarray:
    """Rank, size, dtype and value checks; returns x as [N, H, W, C] (same dtype)."""
    x = stored[..., None] if stored.ndim == 3 else stored
    if x.ndim != 4:
        _fail(path, key, f"images must be [N, H, W] or [N, H, W, C], got shape {x.shape}")
    if x.shape[0] == 0:
        _fail(path, key, "empty split (0 images)")
    if 0 in x.shape[1:]:
        _fail(path, key, f"images of size zero, shape {x.shape}")
    if x.dtype == bool:
        return x
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0:
            _fail(path, key, f"negative values (min {x.min()}), the first at {_first(key, stored < 0)}; "
                             "grey levels must be 0..255")
        if x.max() > 255:
            _fail(path, key, f"values above 255 (max {x.max()}), the first at {_first(key, stored > 255)}; "
                             "grey levels must be 0..255")
        return x
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            _fail(path, key, f"{np.isnan(x).sum()} NaN and {np.isinf(x).sum()} infinite values, the first at "
                             f"{_first(key, ~np.isfinite(stored))}")
        if x.min() < 0:
            _fail(path, key, f"negative values (min {x.min()}), the first at {_first(key, stored < 0)}")
        if x.max() > 1:
            _fail(path, key, f"float images must be intensities in [0, 1], max is {x.max()}, the first above 1 at "
                             f"{_first(key, stored > 1)}; store grey levels 0..255 as uint8")
        return x
    _fail(path, key, f"wrong dtype {x.dtype}; images must be uint8 (or other int) grey levels, bool, or float in [0, 1]")


def _check_labels(path, key, y: np.ndarray, n: int) -> np.ndarray:
    """int [N] -> int32; float or int [N, D] -> float32 vectors."""
    if y.shape[:1] != (n,):
        _fail(path, key, f"wrong length: shape {y.shape} for {n} images (one label per image)")
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            _fail(path, key, f"class labels [N] must be integers, got dtype {y.dtype}")
        if y.min() < 0:
            i = int(np.argmax(y < 0))
            _fail(path, key, f"labels out of range: negative label {y[i]} at {key}[{i}]")
        return y.astype(np.int32)
    if y.ndim == 2 and (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        if not np.isfinite(y).all():
            i, j = np.argwhere(~np.isfinite(y))[0]
            _fail(path, key, f"conditioning vectors with NaN or infinite values: {key}[{i}, {j}] = {y[i, j]}")
        return y.astype(np.float32)
    _fail(path, key, f"labels must be int [N] classes or float [N, D] vectors, got shape {y.shape} dtype {y.dtype}")


def load_npz(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """The file at cfg.path, validated and converted by the rules of the module docstring."""
    del seed
    path, arrays = _read(cfg.path)
    images = {k: _check_images(path, k, arrays[k]) for k in IMAGE_KEYS if k in arrays}
    shapes = {k: x.shape[1:] for k, x in images.items()}
    if len(set(shapes.values())) > 1:
        _fail(path, None, "image sizes differ between splits: "
                          + ", ".join(f"{k} {list(s)}" for k, s in shapes.items()))

    # Joint decision for integer splits: binary only if ALL of them are 0/1,
    # so that splits of one file are never scaled differently.
    ints = [x for x in images.values() if np.issubdtype(x.dtype, np.integer)]
    binary_ints = all(x.max() <= 1 for x in ints)
    scale = 1.0 if binary_ints else 255.0
    images = {k: x.astype(np.float32) / (scale if np.issubdtype(x.dtype, np.integer) else 1.0)
              for k, x in images.items()}

    present = [k for k in LABEL_KEYS if k in arrays]
    needed = ["train_labels", "test_labels"] + (["validation_labels"] if "validation" in arrays else [])
    if present and sorted(present) != sorted(needed):
        missing = sorted(set(needed) - set(present))
        extra = sorted(set(present) - set(needed))
        _fail(path, (missing or extra)[0],
              "missing: labels must be given for every split or none" if missing
              else "labels for a split that is not in the file")
    labels = {s: (_check_labels(path, f"{s}_labels", arrays[f"{s}_labels"], len(images[s])) if present else None)
              for s in images}

    num_classes = 0
    if present:
        kinds = {k: (y.ndim, y.shape[1:]) for k, y in labels.items()}
        if len(set(kinds.values())) > 1:
            _fail(path, None, "labels differ in kind or width between splits: "
                              + ", ".join(f"{k}_labels {y.dtype}{list(y.shape)}" for k, y in labels.items()))
        if labels["train"].ndim == 1:
            num_classes = int(labels["train"].max()) + 1
            for s, y in labels.items():
                if y.max() >= num_classes:
                    i = int(np.argmax(y >= num_classes))
                    _fail(path, f"{s}_labels", f"labels out of range: label {y[i]} is not among the "
                                               f"train classes 0..{num_classes - 1} ({s}_labels[{i}])")

    if "validation" not in images:
        (tx, ty), (vx, vy) = splits.carve_validation(images["train"], labels["train"], cfg.validation_fraction)
        images.update(train=tx, validation=vx)
        labels.update(train=ty, validation=vy)
    return splits.RawSplits(images={s: images[s] for s in splits.SPLITS}, labels={s: labels[s] for s in splits.SPLITS},
                            num_classes=num_classes, grey_levels=int(scale) if ints else 1)
