"""Independent pixels: the coin, one per sub-pixel (named after the binary case).

    p(x | y) = prod_i p(x_i | o_i),   o_i = a_i [+ (V y)_i]   (P outputs per sub-pixel)

Each sub-pixel i = (row, col, channel) has its own outputs a_i and ignores
every other pixel, so it is trivially autoregressive (in any order). For
Bernoulli sub-pixels the maximum likelihood estimate is closed-form:
sigma(a_i*) = mean of x_i over the data (a_i* = +-inf for a pixel that is
always 1 / always 0); for a categorical, softmax(a_i*) = the level
frequencies. Conditional version: class-dependent outputs a + V y, i.e. one
coin per pixel per class for one-hot y.
"""
from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from dgm_jax.models.base import AutoregressiveImageModel
from dgm_jax.models.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class Config:
    """No fields: one output vector per sub-pixel."""


class Bernoulli(AutoregressiveImageModel):

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] (only its batch size is read); y: [B, D] or None. Returns [B, H, W, C, P] float32."""
        del mask_index
        y = self.condition(y)
        shape = self.output_shape(x)
        a = self.param("logits", nn.initializers.zeros, shape[1:], jnp.float32)
        out = jnp.broadcast_to(a.astype(self.dtype), shape)
        if y is not None:
            v = nn.Dense(math.prod(shape[1:]), use_bias=False, dtype=self.dtype, name="cond")(y)
            out = out + v.reshape(shape)
        return out.astype(jnp.float32)


SPEC = ModelSpec(name="bernoulli", module=Bernoulli, config=Config)
