"""What every model shares: its attributes, its outputs and how it reads the condition y.

Every model maps images x [B, H, W, C] (values level / (K - 1) in [0, 1]; 0/1
for binary data) and optionally a condition y [B, D] to outputs
[B, H, W, C, P] in raster order over (row, column, channel): the P numbers
that its observation model (``observation``, see dgm_jax/observations)
turns into p(x_i | x_<i, y). The outputs of sub-pixel i may depend on the
sub-pixels before i only; tests/test_models.py checks this by Jacobian and
normalization by enumeration for every model.

    outputs = model.apply({"params": params}, x, y, mask_index=0)

Models with several connectivity masks (MADE) read ``mask_index``; the others
ignore it.

Orderings. The outputs are always laid out in raster order, but a model may
factorize p(x) in another order of its sub-pixels: ``subpixel_order(k)`` is the
permutation that mask (or ensemble member) k follows, order[t] = the raster
index of the t-th sub-pixel, and the outputs of sub-pixel order[t] depend on
x[order[:t]] only. Raster (the identity) unless the model says otherwise;
``raster_ordered`` is False when some mask is not raster (MADE with
ordering='random', EoNADE). The causality test, the samplers (which draw in
that order) and completion (refused unless raster) read it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.observations.bernoulli import Bernoulli


class AutoregressiveImageModel(nn.Module):
    image_shape: tuple[int, int, int]          # (H, W, C)
    observation: Any = None                    # an ObservationModel; None = Bernoulli (binary data)
    num_classes: int = 0                       # > 0: y may be given as int labels
    conditional: bool = False                  # models p(x | y)
    dtype: Any = jnp.float32                   # compute dtype; parameters stay float32

    @property
    def obs(self):
        """The observation model (Bernoulli sub-pixels when none was given)."""
        if self.observation is not None:
            return self.observation
        return Bernoulli(num_levels=2, num_channels=self.image_shape[-1])

    @property
    def params_per_subpixel(self) -> int:
        """P: the outputs per sub-pixel that the observation model reads."""
        return self.obs.params_per_subpixel

    def condition(self, y: jax.Array | None) -> jax.Array | None:
        """The condition this model reads: None when unconditional (y ignored); an error if a
        conditional model is called without y."""
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"a conditional {type(self).__name__} needs y [B, D]")
        return y

    def log_prob(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """[B] log p(x | y) in nats: the observation model on this model's outputs. A model may
        compute it another way with the same values (NADE: value and gradient in one scan);
        training uses it when no penalty reads the outputs (dgm_jax/steps.py).

            log_p = model.apply({"params": params}, x, y, mask_index=0, method="log_prob")
        """
        return self.obs.log_prob(self(x, y, mask_index=mask_index), x)

    def subpixel_order(self, mask_index: int = 0) -> np.ndarray:
        """int [H*W*C]: the raster indices of the sub-pixels in the order mask `mask_index`
        factorizes p(x) (raster: 0, 1, ..., D - 1)."""
        del mask_index
        return np.arange(math.prod(self.image_shape))

    @property
    def raster_ordered(self) -> bool:
        """True when every mask factorizes p(x) in raster order."""
        return True

    def output_shape(self, x: jax.Array) -> tuple[int, ...]:
        """[B, h, W, C, P] for input x [B, h, W, C] (h < H for a window of rows)."""
        return tuple(x.shape) + (self.params_per_subpixel,)


def pixel_major_order(image_shape: Sequence[int], seed: Sequence[int]) -> np.ndarray:
    """A random sub-pixel order [H*W*C] that keeps each pixel's channels together, in channel
    order: the H*W pixels in a uniformly random order (numpy Generator seeded with `seed`),
    each expanded to its C sub-pixels. (Observation models couple a pixel's channels in
    channel order, e.g. the logistic mixture's G mean reads R: that stays causal.)"""
    h, w, c = image_shape
    pixels = np.random.default_rng(list(seed)).permutation(h * w)
    return (pixels[:, None] * c + np.arange(c)[None, :]).reshape(-1)


def check_at_least(model: str, field: str, value: int, smallest: int, why: str = "") -> None:
    """Config-time check of a size field: raises ConfigError naming the field, its value and the
    smallest valid value."""
    if value < smallest:
        from dgm_jax.config_schema import ConfigError  # noqa: WPS433 - config_schema imports the registry lazily
        raise ConfigError(f"config.model.{field}={value} is too small for model {model!r}: the smallest "
                          f"valid value is {smallest}{f' ({why})' if why else ''}")


def check_dropout_rate(model: str, rate: float) -> None:
    """Config-time check of a dropout rate: in [0, 1) (0 = no dropout), else ConfigError."""
    if not 0.0 <= rate < 1.0:
        from dgm_jax.config_schema import ConfigError  # noqa: WPS433 - config_schema imports the registry lazily
        raise ConfigError(f"config.model.dropout_rate={rate} is not valid for model {model!r}: "
                          f"it must be in [0, 1) (0 = no dropout)")
