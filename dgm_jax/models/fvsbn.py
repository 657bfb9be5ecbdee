"""Fully visible sigmoid belief network (FVSBN; Frey 1998, Neal 1992).

With pixels flattened in raster order over (row, col, channel), i = 0..D-1,

    p(x_i = 1 | x_<i, y) = sigma(l_i),   l_i = a_i + sum_{j<i} W_ij x_j [+ (V y)_i].

Every conditional is its own logistic regression on the pixels before it:
separate parameters per conditional, no sharing. W is stored as a full D x D
matrix and multiplied by the strictly lower-triangular mask (j < i) in the
forward pass, so the stored parameter is never mutated and the gradient of
its upper triangle (and diagonal) is exactly zero. Of the D^2 + D stored
numbers, D(D-1)/2 + D are used. The log-likelihood is concave in (a, W, V):
a sum of logistic-regression log-likelihoods.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class FVSBN(nn.Module):
    image_shape: tuple[int, int, int]
    num_classes: int = 0
    conditional: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] binary; y: [B, D_y] or None. Returns logits [B, H, W, C] float32."""
        del mask_index
        if not self.conditional:
            y = None
        elif y is None:
            raise ValueError("a conditional FVSBN needs y [B, D]")
        d = math.prod(self.image_shape)
        w = self.param("weights", nn.initializers.zeros, (d, d), jnp.float32)   # W_ij: input j -> logit i
        a = self.param("bias", nn.initializers.zeros, (d,), jnp.float32)
        w_causal = jnp.tril(w, k=-1).astype(self.dtype)                         # keep j < i only
        xf = x.reshape(x.shape[0], d).astype(self.dtype)
        logits = xf @ w_causal.T + a.astype(self.dtype)
        if y is not None:
            logits = logits + nn.Dense(d, use_bias=False, dtype=self.dtype, name="cond")(y)
        return logits.reshape(x.shape).astype(jnp.float32)
