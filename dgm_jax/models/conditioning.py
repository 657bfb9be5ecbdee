"""Turning what the user gives as y into the conditioning vector the models read.

A model of p(x | y) reads y as a float vector [B, D]. Users give either
integer class labels [B] (turned into one-hot vectors of num_classes) or
their own vectors [B, D] (e.g. embeddings), passed through unchanged.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def as_condition(y, num_classes: int) -> jax.Array | None:
    """[B] int labels -> one-hot [B, num_classes]; [B, D] floats -> unchanged; None -> None."""
    if y is None:
        return None
    y = jnp.asarray(y)
    if y.ndim == 1:
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(f"class labels y shaped [B] must be integers, got dtype {y.dtype}")
        if num_classes <= 0:
            raise ValueError("integer labels given to a model built without classes (num_classes=0)")
        return jax.nn.one_hot(y, num_classes, dtype=jnp.float32)
    if y.ndim == 2:
        return y.astype(jnp.float32)
    raise ValueError(f"y must be integer labels [B] or vectors [B, D], got shape {y.shape}")


def model_condition(model, y) -> jax.Array | None:
    """The condition vector `model` reads: None for unconditional models (labels are ignored)."""
    if not getattr(model, "conditional", False):
        return None
    if y is None:
        raise ValueError("a conditional model needs y: int labels [B] or vectors [B, D]")
    return as_condition(y, getattr(model, "num_classes", 0))
