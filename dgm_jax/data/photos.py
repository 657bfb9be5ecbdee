"""A small real colour data set that works offline: patches of scikit-learn's two sample photographs.

``sklearn.datasets.load_sample_images()`` ships two 427 x 640 RGB photographs
(china.jpg, a temple; flower.jpg, a flower). ``photo_patches`` cuts each into
non-overlapping ``data.patch_size`` x ``patch_size`` patches on a grid from the
top-left corner (at 32: 13 x 20 = 260 patches per photograph, 520 in all;
at 8: 8,480), 8-bit colour [P, P, 3], intensity = level / 255, label = the
photograph (0 china, 1 flower), so class-conditional models can use it.
Carve (fixed, independent of config.seed): a class-balanced 10% test set
(dgm_jax.data.splits.balanced_test_indices), then ``validation_fraction`` of
the rest for validation. For grey levels use ``data.binarization = 'none'``
(256 levels per sub-pixel; R, G, B are modelled in that order inside a pixel).
"""
from __future__ import annotations

import functools

import numpy as np

from dgm_jax.config_schema import DataConfig
from dgm_jax.data import splits

TEST_FRACTION = 0.1


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images  # noqa: WPS433 - slow import, only here
    images = tuple(np.asarray(im, np.uint8) for im in load_sample_images().images)
    for im in images:
        im.setflags(write=False)
    return images


def patches(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size patches of image [H, W, C] on a grid from (0, 0): [N, size, size, C]."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    if rows == 0 or cols == 0:
        raise ValueError(f"patch_size={size} is larger than the photograph ({image.shape[0]} x {image.shape[1]})")
    grid = image[:rows * size, :cols * size].reshape(rows, size, cols, size, -1)
    return grid.transpose(0, 2, 1, 3, 4).reshape(rows * cols, size, size, -1)


def load_photo_patches(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """Patches of the two photographs, labelled by photograph, carved as in the module docstring."""
    del seed
    cut = [patches(im, cfg.patch_size) for im in _photos()]
    grey = np.concatenate(cut)
    labels = np.concatenate([np.full(len(p), i, np.int32) for i, p in enumerate(cut)])
    per_class = max(1, int(round(TEST_FRACTION * min(len(p) for p in cut))))
    test_idx = splits.balanced_test_indices(labels, per_class)
    rest = np.setdiff1d(np.arange(len(labels)), test_idx)
    train_pos, val_pos = splits.validation_carve(len(rest), cfg.validation_fraction)
    idx = {"train": rest[train_pos], "validation": rest[val_pos], "test": test_idx}
    images = grey.astype(np.float32) / 255.0
    return splits.RawSplits(images={k: images[v] for k, v in idx.items()}, labels={k: labels[v] for k, v in idx.items()},
                            num_classes=2, grey_levels=255)
