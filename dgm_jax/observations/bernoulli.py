"""Bernoulli sub-pixels: binary images, one logit per sub-pixel (P = 1).

    log p(x_i | l_i) = x_i log sigma(l_i) + (1 - x_i) log sigma(-l_i) = x_i l_i - softplus(l_i)

computed with ``jax.nn.log_sigmoid`` (never ``log(sigmoid(.))``, which is
-inf once sigma underflows). Sampling: x_i = [u_i < sigma(l_i / T)].
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from dgm_jax.observations.base import ObservationModel, ObservationSpec, pick_channel


@dataclasses.dataclass(frozen=True)
class Config:
    """No options: K = 2 and one logit per sub-pixel."""


@dataclasses.dataclass(frozen=True)
class Bernoulli(ObservationModel):
    name = "bernoulli"

    def __post_init__(self):
        super().__post_init__()
        if self.num_levels != 2:
            raise ValueError(f"the bernoulli likelihood needs binary data (2 levels), got {self.num_levels} "
                             "levels; use 'categorical' or 'discretized_logistic_mixture', or binarize the data "
                             "(data.binarization = static | dynamic | threshold)")

    @property
    def params_per_subpixel(self) -> int:
        return 1

    def log_prob_per_pixel(self, outputs, x):
        """outputs [B, H, W, C, 1] logits, x [B, H, W, C] in {0, 1} -> [B, H, W] nats."""
        logits = outputs[..., 0].astype(jnp.float32)
        x = x.astype(jnp.float32)
        return (x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits)).sum(axis=-1)

    def sample(self, outputs, x_pixel, channel, u, temperature):
        del x_pixel
        logit = pick_channel(outputs, channel)[:, 0].astype(jnp.float32)
        return (pick_channel(u, channel)[:, 0] < jax.nn.sigmoid(logit / temperature)).astype(jnp.float32)

    def neg_entropy(self, outputs):
        """[B] sum_i p_i log p_i + (1 - p_i) log(1 - p_i), p = sigmoid(logit): finite for any logit."""
        logits = outputs[..., 0].astype(jnp.float32)
        p = jax.nn.sigmoid(logits)
        neg = p * jax.nn.log_sigmoid(logits) + (1.0 - p) * jax.nn.log_sigmoid(-logits)
        return neg.reshape(neg.shape[0], -1).sum(axis=-1)


SPEC = ObservationSpec(Bernoulli.name, Bernoulli, Config)
