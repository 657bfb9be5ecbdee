"""Host-side checks of what a model is fed: images on its grid, labels among its classes, condition
vectors of its width.

Every public entry point that hands data to compiled code runs these first
(dgm_jax.log_prob, dgm_jax.sample / complete, evaluation of a split, the
training data pipeline), so bad input is refused before anything is traced,
with a message naming where it came from, the first bad index and its value.
Nothing is clipped or rounded into range. Inside traced code no host check
can run: there an off-grid pixel makes its log-probability NaN
(dgm_jax/observations/base.py) and so does a label outside [0, num_classes)
(dgm_jax/likelihood.py), so that a bad value never yields a plausible number.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def index_str(index) -> str:
    """(3, 2) -> '[3, 2]'."""
    return "[" + ", ".join(str(int(i)) for i in np.atleast_1d(index)) + "]"


def first_bad(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first True of a boolean array (row-major)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_labels(y, num_classes: int, where: str) -> None:
    """Integer class labels [N], each in [0, num_classes); ValueError naming `where`, index and value."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: class labels must be integers shaped [N], got dtype {y.dtype} shape {y.shape}")
    if num_classes <= 0:
        raise ValueError(f"{where}: integer labels given to a model built without classes (num_classes=0)")
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = first_bad(bad)[0]
        raise ValueError(f"{where}: label {y[i]} at index {i} is outside the classes 0..{num_classes - 1} "
                         f"({int(bad.sum())} such label(s))")


def check_vectors(y, width: int | None, where: str) -> None:
    """Condition vectors [N, D]: finite, and D == width (when width is known)."""
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"{where}: condition vectors must be shaped [N, D], got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"{where}: condition vectors must be numbers, got dtype {y.dtype}")
    finite = np.isfinite(y)
    if not finite.all():
        i = first_bad(~finite)
        raise ValueError(f"{where}: condition vectors must be finite; y{index_str(i)} = {y[i]}")
    if width is not None and y.shape[1] != width:
        raise ValueError(f"{where}: condition vectors have width {y.shape[1]}, the model reads vectors of "
                         f"width {width}")


@functools.lru_cache(maxsize=32)
def _width_axes(model) -> tuple[tuple[str, int], ...]:
    """(parameter path, axis) of the leaves whose size along axis is the condition width D: the
    axes that change between abstract inits with D = 1 and D = 2 (no compilation)."""
    def shapes(d):
        tree = jax.eval_shape(lambda: model.init(
            jax.random.key(0), jnp.zeros((1,) + tuple(model.image_shape), jnp.float32),
            jnp.zeros((1, d), jnp.float32))["params"])
        return {jax.tree_util.keystr(p): leaf.shape for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
    one, two = shapes(1), shapes(2)
    return tuple((k, axis) for k in one for axis, sizes in enumerate(zip(one[k], two.get(k, ())))
                 if sizes == (1, 2))


def condition_width(model, params) -> int | None:
    """D, the width of the condition vectors that `params` of a conditional `model` were made for
    (None when it cannot be told, e.g. parameters in a stacked multi-device layout)."""
    leaves = {jax.tree_util.keystr(p): np.shape(leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    for key, axis in _width_axes(model):
        if key in leaves and len(leaves[key]) > axis:
            return int(leaves[key][axis])
    return None


def check_condition(model, y, num_rows: int, where: str, params=None) -> None:
    """What a conditional model needs of y for num_rows images: int labels [N] in [0, num_classes) or
    finite vectors [N, D] of the model's width (checked against `params` when given), N = num_rows.
    Unconditional models ignore y; a traced y is left to the traced code."""
    if not getattr(model, "conditional", False):
        return
    if y is None:
        raise ValueError(f"{where}: a conditional model needs y: int labels [B] or vectors [B, D]")
    if isinstance(y, jax.core.Tracer):
        return
    y = np.asarray(y)
    if y.ndim == 1:
        check_labels(y, getattr(model, "num_classes", 0), where)
    else:
        check_vectors(y, None if params is None else condition_width(model, params), where)
    if y.shape[0] != num_rows:
        raise ValueError(f"{where}: y has {y.shape[0]} rows for {num_rows} images")


def check_split_inputs(model, images, labels, where: str) -> None:
    """A whole split fed to `model` (evaluation): images on its grid, labels among its classes."""
    model.obs.check_data(images, f"{where} images")
    if labels is not None and getattr(model, "conditional", False):
        check_condition(model, labels, len(images), f"{where} labels")
