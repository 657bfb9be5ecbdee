"""The log-likelihood of images under an autoregressive model, in nats per image.

    log p(x | y) = sum over pixels of log p(x_pixel | x_<pixel, y)

The model maps x to outputs [B, H, W, C, P]; its observation model
(``model.obs``, dgm_jax/observations) turns them into per-pixel
log-probabilities (the model's ``log_prob`` method, dgm_jax/models/base.py): a Bernoulli per sub-pixel for binary images, a K-way
softmax or a discretized logistic mixture for grey levels. A model with an
ensemble of connectivity masks (MADE) is the equal mixture of its masks'
models, log p = log (1/K sum_k p_k). Everything is per image, in nats; bits
per dimension is converted in exactly one place, :func:`bits_per_dim`.
An image with a value off the grid, or a label outside [0, num_classes), gets
log p = NaN (:func:`poison_bad_inputs`): the public entry points refuse such
input on the host (dgm_jax/input_checks.py), and under jit nothing else can.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from dgm_jax import models
from dgm_jax.models.conditioning import model_condition


def model_log_prob(model, params, x, y=None, mask_index=None) -> jax.Array:
    """Exact log p(x | y) in nats, [B] float32; for a mask ensemble the log-mean-exp over its masks.

    x: [B, H, W, C] values level / (K - 1) (0/1 for binary data).
    y: None, int labels [B] or condition vectors [B, D].
    mask_index: one mask of an ensemble (the mixture when None).
    """
    cond = model_condition(model, y)

    def one(i):   # the model's log_prob method: obs.log_prob of its outputs, or an equal computation
        return model.apply({"params": params}, x, cond, mask_index=i, method="log_prob")

    if mask_index is not None:
        log_p = one(mask_index)
    elif models.num_eval_masks(model) == 1:
        log_p = one(0)
    else:
        log_p = log_mean_exp(jax.lax.map(one, jnp.arange(models.num_eval_masks(model))), axis=0)
    return poison_bad_inputs(model, log_p, x, y)


def poison_bad_inputs(model, log_p: jax.Array, x: jax.Array, y=None) -> jax.Array:
    """log_p [B] -> NaN for an image with an off-grid value or, for a class-conditional model, a label
    outside [0, num_classes) (whose one-hot vector would be all zeros): the traced counterpart of the
    host checks (dgm_jax/input_checks.py), which cannot run under jit."""
    log_p = model.obs.poison_images(log_p, x)
    if getattr(model, "conditional", False) and y is not None and jnp.ndim(y) == 1:
        y = jnp.asarray(y)
        log_p = jnp.where((y < 0) | (y >= getattr(model, "num_classes", 0)), jnp.nan, log_p)
    return log_p


def log_mean_exp(log_probs: jax.Array, axis: int = 0) -> jax.Array:
    """log (1/K sum_k exp(a_k)): the log-likelihood of an equal mixture of K models."""
    k = log_probs.shape[axis]
    return jax.nn.logsumexp(log_probs, axis=axis) - math.log(k)


def bits_per_dim(nats_per_image, num_dims: int):
    """Converts nats per image to bits per dimension: nats / (D ln 2), D = H * W * C."""
    return nats_per_image / (num_dims * math.log(2.0))
