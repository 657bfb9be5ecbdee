"""Ancestral sampling in raster order, jit-compiled end to end.

x is filled one dimension i = (row, col, channel) at a time:

    x_i ~ Bernoulli(sigmoid(logit_i(x_<i, y) / T)),   T = temperature,

using the uniform draw u_i = U(fold_in(key, i)) and x_i = [u_i < p_i], so
that two methods that compute the same logits give the same samples for the
same key. The loop over the H*W*C dimensions is a ``lax.fori_loop`` inside
one compiled program.

Methods:
* ``naive``: the whole network on the whole image for every dimension
  (H*W*C full passes).
* ``fast`` (models exposing ``receptive_field_rows``, e.g. pixelcnn): the
  logits of row r depend on rows r - R .. r only, R the receptive field
  height, so each step runs the network on a window of R + 1 rows. The window
  starts at max(0, r - R) (clipped so it fits), which keeps the zero padding
  seen by row r identical to the full image's. Models may instead provide
  their own ``fast_sample_logits`` (see gated_pixelcnn).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from dgm_jax import models
from dgm_jax.models.conditioning import model_condition

METHODS = ("auto", "naive", "fast")


def has_fast_method(model) -> bool:
    rows = getattr(model, "receptive_field_rows", None)
    return rows is not None and rows + 1 < model.image_shape[0]


def sample(model, params, rng, num_samples: int, y=None, *, temperature: float = 1.0,
           method: str = "auto") -> jax.Array:
    """Draws `num_samples` binary images [N, H, W, C] (float32 0/1) from p(x | y).

    y: None, int labels [N] or condition vectors [N, D]. method: auto | naive | fast.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown sampling method {method!r}. Valid names: {', '.join(METHODS)}.")
    if method == "fast" and not has_fast_method(model):
        raise ValueError(f"model {type(model).__name__} has no fast sampling method; use method='naive'")
    if method == "auto":
        method = "fast" if has_fast_method(model) else "naive"
    cond = model_condition(model, y)
    if cond is not None and cond.shape[0] != num_samples:
        raise ValueError(f"y has {cond.shape[0]} rows for {num_samples} samples")
    return _sample(model, params, rng, cond, num_samples, jnp.float32(temperature), method)


def _apply(model, params, x, cond, mask_idx):
    """Logits [N, h, W, C]; with a mask ensemble each sample uses its own mask."""
    if mask_idx is None:
        return model.apply({"params": params}, x, cond)
    one = lambda xi, ci, mi: model.apply({"params": params}, xi[None], None if ci is None else ci[None],
                                         mask_index=mi)[0]
    return jax.vmap(one)(x, cond, mask_idx)


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "method"))
def _sample(model, params, rng, cond, num_samples, temperature, method):
    h, w, c = model.image_shape
    key_mask, key_pix = jax.random.split(rng)
    k = models.num_eval_masks(model)
    # Sampling from the equal mixture of K masks: pick a mask per sample, then
    # sample exactly from that mask's autoregressive distribution.
    mask_idx = jax.random.randint(key_mask, (num_samples,), 0, k) if k > 1 else None
    window = (model.receptive_field_rows + 1) if method == "fast" else h

    def body(i, x):
        r, col, ch = i // (w * c), (i // c) % w, i % c
        start = jnp.clip(r - (window - 1), 0, h - window)
        view = jax.lax.dynamic_slice_in_dim(x, start, window, axis=1)
        logits = _apply(model, params, view, cond, mask_idx)
        logit = logits[:, r - start, col, ch]
        u = jax.random.uniform(jax.random.fold_in(key_pix, i), (num_samples,))
        bit = (u < jax.nn.sigmoid(logit / temperature)).astype(x.dtype)
        return x.at[:, r, col, ch].set(bit)

    x0 = jnp.zeros((num_samples, h, w, c), jnp.float32)
    return jax.lax.fori_loop(0, h * w * c, body, x0)
