"""A K-way softmax per sub-pixel (P = K): the 256-way softmax of PixelRNN / PixelCNN for 8-bit data.

    log p(x_i = l | o_i) = log_softmax(o_i)[l]

No ordering of the levels is assumed (level 127 is as far from 128 as from 0):
the most flexible choice, at K outputs per sub-pixel. With K = 2 it is a
Bernoulli with two logits. Sampling by inverting the CDF of
softmax(o_i / T) with one uniform.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from dgm_jax.observations.base import ObservationModel, ObservationSpec, pick_channel


@dataclasses.dataclass(frozen=True)
class Config:
    """No options: K comes from the data (e.g. 256 for 8-bit images, 17 for sklearn digits)."""


@dataclasses.dataclass(frozen=True)
class Categorical(ObservationModel):
    name = "categorical"

    @property
    def params_per_subpixel(self) -> int:
        return self.num_levels

    def log_prob_per_pixel(self, outputs, x):
        """outputs [B, H, W, C, K], x [B, H, W, C] (level / (K - 1)) -> [B, H, W] nats."""
        logp = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
        chosen = jnp.take_along_axis(logp, self.levels(x)[..., None], axis=-1)[..., 0]
        return chosen.sum(axis=-1)

    def sample(self, outputs, x_pixel, channel, u, temperature):
        del x_pixel
        logits = pick_channel(outputs, channel).astype(jnp.float32) / temperature      # [N, K]
        cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
        level = jnp.sum(cdf < pick_channel(u, channel)[:, :1], axis=-1)                  # inverse CDF
        return self.values(jnp.minimum(level, self.num_levels - 1))

    def neg_entropy(self, outputs):
        """[B] sum over sub-pixels of sum_l p_l log p_l."""
        logp = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
        neg = jnp.sum(jnp.exp(logp) * logp, axis=-1)
        return neg.reshape(neg.shape[0], -1).sum(axis=-1)


SPEC = ObservationSpec(Categorical.name, Categorical, Config)
