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
from dgm_jax.observations.base import off_grid
from dgm_jax.observations.bernoulli import Bernoulli as BernoulliObservation


@dataclasses.dataclass(frozen=True)
class Config:
    """No fields: one output vector per sub-pixel."""


class Bernoulli(AutoregressiveImageModel):

    def setup(self):
        shape = tuple(self.image_shape) + (self.params_per_subpixel,)
        self.logits = self.param("logits", nn.initializers.zeros, shape, jnp.float32)
        if self.conditional:
            self.cond = nn.Dense(math.prod(shape), use_bias=False, dtype=self.dtype)

    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] (only its batch size is read); y: [B, D] or None. Returns [B, H, W, C, P] float32."""
        del mask_index
        y = self.condition(y)
        shape = self.output_shape(x)
        out = jnp.broadcast_to(self.logits.astype(self.dtype), shape)
        if y is not None:
            out = out + self.cond(y).reshape(shape)
        return out.astype(jnp.float32)

    def log_prob(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """[B] log p(x | y) in nats. For binary pixels without a condition, in closed form:

            log p(x) = sum_i [x_i log sigma(a_i) + (1 - x_i) log sigma(-a_i)]
                     = sum_i x_i (log sigma(a_i) - log sigma(-a_i)) + sum_i log sigma(-a_i),

        one matrix-vector product X [B, D] . w, w_i = log sigma(a_i) - log sigma(-a_i) (= a_i), plus
        a constant. The values are the observation model's (tests/test_models.py); the gradient
        with respect to w is then X^T c (c: the images' weights in the loss), one matrix-vector
        product, instead of a column sum over the batch of [B, D] that XLA:CPU runs slowly and
        that was most of this model's step (at batch 1,000 on a 2-core Intel Xeon the train step
        went from 3.5x to 1.4x its evaluation time per image).
        """
        if self.conditional or not isinstance(self.obs, BernoulliObservation):
            return super().log_prob(x, y, mask_index)
        a = self.logits[..., 0].reshape(-1).astype(jnp.float32)
        on, off = jax.nn.log_sigmoid(a), jax.nn.log_sigmoid(-a)
        flat = x.reshape(x.shape[0], -1).astype(jnp.float32)
        value = flat @ (on - off) + jnp.sum(off)
        # As the observation models' own log-likelihoods: an image with a pixel off {0, 1} gets NaN.
        return jnp.where(jnp.any(off_grid(flat, 2), axis=1), jnp.nan, value)


SPEC = ModelSpec(name="bernoulli", module=Bernoulli, config=Config)
