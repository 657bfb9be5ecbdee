"""The log-likelihood of binary images under an autoregressive model.

For binary pixels and logits l_i = logit p(x_i = 1 | x_<i, y),

    log p(x | y) = sum_i [ x_i log sigma(l_i) + (1 - x_i) log sigma(-l_i) ]
                 = sum_i [ x_i l_i - softplus(l_i) ],

computed with ``jax.nn.log_sigmoid`` (never ``log(sigmoid(.))``, which is
-inf once sigma underflows). Everything is per image, in nats; bits per
dimension is converted in exactly one place, :func:`bits_per_dim`.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Per-image log-likelihood in nats.

    Args:
      logits: [B, H, W, C] logits of p(x_i = 1 | x_<i); any float dtype
        (accumulated in float32).
      x: [B, H, W, C] binary images (0/1, any dtype).
    Returns:
      [B] float32: sum over pixels of log Bernoulli(x_i | sigmoid(logit_i)).
    """
    logits = logits.astype(jnp.float32)
    x = x.astype(jnp.float32)
    per_pixel = x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits)
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(axis=-1)


def log_mean_exp(log_probs: jax.Array, axis: int = 0) -> jax.Array:
    """log (1/K sum_k exp(a_k)): the log-likelihood of an equal mixture of K models."""
    k = log_probs.shape[axis]
    return jax.nn.logsumexp(log_probs, axis=axis) - math.log(k)


def bits_per_dim(nats_per_image, num_dims: int):
    """Converts nats per image to bits per dimension: nats / (D ln 2)."""
    return nats_per_image / (num_dims * math.log(2.0))


def check_binary(x, where: str) -> None:
    """Raises ValueError naming `where` if host array `x` holds values other than 0/1."""
    import numpy as np

    values = np.unique(np.asarray(x))
    bad = values[(values != 0) & (values != 1)]
    if bad.size:
        shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if values.size > 8 else "")
        raise ValueError(f"{where}: a Bernoulli likelihood needs pixel values 0/1, found values {shown}")
