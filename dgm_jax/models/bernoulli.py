"""Independent Bernoulli pixels: the coin, one per pixel.

    p(x | y) = prod_i Bernoulli(x_i | sigma(l_i)),   l_i = a_i [+ (V y)_i]

Each pixel i = (row, col, channel) has its own logit a_i and ignores every
other pixel, so it is trivially autoregressive (in any order). The maximum
likelihood estimate is closed-form: sigma(a_i*) = mean of x_i over the data
(a_i* = +-inf for a pixel that is always 1 / always 0). Conditional version:
a class-dependent logit a + V y, i.e. one coin per pixel per class for
one-hot y.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class Bernoulli(nn.Module):
    image_shape: tuple[int, int, int]
    num_classes: int = 0
    conditional: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] binary (only its batch size is read); y: [B, D] or None.

        Returns logits [B, H, W, C] float32. An unconditional model ignores y.
        """
        del mask_index
        if not self.conditional:
            y = None
        elif y is None:
            raise ValueError("a conditional Bernoulli model needs y [B, D]")
        a = self.param("logits", nn.initializers.zeros, tuple(self.image_shape), jnp.float32)
        logits = jnp.broadcast_to(a.astype(self.dtype), x.shape)
        if y is not None:
            d = math.prod(self.image_shape)
            v = nn.Dense(d, use_bias=False, dtype=self.dtype, name="cond")(y)
            logits = logits + v.reshape(x.shape)
        return logits.astype(jnp.float32)
