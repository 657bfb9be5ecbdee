"""What every observation model provides: the distribution of one pixel given the network's outputs.

An autoregressive image model factorizes p(x | y) over pixels in raster order
and, inside a pixel, over its C sub-pixels (R, then G | R, then B | R, G).
The network maps the image to ``outputs`` [B, H, W, C, P]: P numbers per
sub-pixel, where the outputs of sub-pixel (r, c, k) may depend on every
earlier pixel and on the sub-pixels k' < k of pixel (r, c) only. The
observation model turns those numbers into a normalized distribution over
the pixel's values:

    log p(x_pixel | outputs_pixel) = sum_k log p_k(x_k | outputs[k], x_<k)     (per sub-pixel), or
                                   = log sum_m pi_m prod_k p_mk(x_k | ...)     (a mixture shared by the pixel)

Values: the data are K grey levels per sub-pixel (K = 2 for binary images),
stored as float32 x = level / (K - 1) in [0, 1], so binary images are exactly
0/1 and the models read the same numbers as before. ``levels(x)`` recovers
the integer level.

Every observation model is a frozen, hashable dataclass (a static argument of
jitted functions) with pure methods:

    params_per_subpixel        P, the network outputs it reads per sub-pixel
    num_uniforms               U, the uniforms sample() uses per sub-pixel
    log_prob_per_pixel(out, x) [B, H, W] log p of each pixel in nats (float32)
    log_prob(out, x)           [B] log p(x) in nats: the sum over pixels
    sample(out_px, x_px, k, u, temperature)
                               the value of sub-pixel k of one pixel, [N], given
                               its outputs [N, C, P], the values of the pixel so
                               far [N, C] (sub-pixels < k final) and its uniforms
                               [N, C, U]. Exact: P(value) is the model's
                               conditional at temperature 1.
    check_data(x, where)       raises ValueError if x holds values off the K-level grid

Bits per dimension are converted in exactly one place,
:func:`dgm_jax.likelihood.bits_per_dim`.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class ObservationModel:
    num_levels: int = 2        # K: values per sub-pixel
    num_channels: int = 1      # C: sub-pixels per pixel

    name = "observation"       # overridden by each model (a class attribute, not a field)
    num_uniforms = 1

    def __post_init__(self):
        if self.num_levels < 2:
            raise ValueError(f"{self.name}: num_levels must be >= 2, got {self.num_levels}")
        if self.num_channels < 1:
            raise ValueError(f"{self.name}: num_channels must be >= 1, got {self.num_channels}")

    @property
    def params_per_subpixel(self) -> int:
        raise NotImplementedError

    # --- values <-> levels
    def levels(self, x: jax.Array) -> jax.Array:
        """float32 values level / (K - 1) -> int32 levels 0..K-1."""
        return jnp.clip(jnp.round(x.astype(jnp.float32) * (self.num_levels - 1)), 0,
                        self.num_levels - 1).astype(jnp.int32)

    def values(self, levels: jax.Array) -> jax.Array:
        """int levels -> float32 values level / (K - 1)."""
        return levels.astype(jnp.float32) / (self.num_levels - 1)

    # --- the distribution
    def log_prob_per_pixel(self, outputs: jax.Array, x: jax.Array) -> jax.Array:
        raise NotImplementedError

    def log_prob(self, outputs: jax.Array, x: jax.Array) -> jax.Array:
        """[B] log p(x) in nats: the sum over pixels of log_prob_per_pixel (float32)."""
        per_pixel = self.log_prob_per_pixel(outputs, x)
        return per_pixel.reshape(per_pixel.shape[0], -1).sum(axis=-1)

    def sample(self, outputs: jax.Array, x_pixel: jax.Array, channel, u: jax.Array,
               temperature) -> jax.Array:
        raise NotImplementedError

    def neg_entropy(self, outputs: jax.Array) -> jax.Array:
        """[B] sum over sub-pixels of -H(p(x_i | x_<i)): the 'confidence' penalty's R."""
        raise NotImplementedError(
            f"the {self.name} observation model has no per-sub-pixel entropy in closed form; the "
            "'confidence' penalty needs bernoulli or categorical")

    # --- checks of host data
    def check_outputs(self, outputs: jax.Array) -> None:
        want = (self.num_channels, self.params_per_subpixel)
        if tuple(outputs.shape[-2:]) != want:
            raise ValueError(f"{self.name}: model outputs end in {tuple(outputs.shape[-2:])}, expected "
                             f"[..., C={want[0]}, P={want[1]}]")

    def check_data(self, x, where: str) -> None:
        """Raises ValueError naming `where` if host array x is not on the K-level grid of [0, 1]."""
        x = np.asarray(x, np.float32)
        if x.size and not np.isfinite(x).all():
            raise ValueError(f"{where}: non-finite pixel values")
        k = self.num_levels - 1
        scaled = x * k
        off = np.abs(scaled - np.round(scaled)) > 1e-3
        out = (x < 0) | (x > 1)
        if off.any() or out.any():
            bad = np.unique(x[off | out])
            shown = ", ".join(f"{v:g}" for v in bad[:6]) + (", ..." if bad.size > 6 else "")
            grid = "0/1" if k == 1 else f"level / {k} for levels 0..{k}"
            raise ValueError(f"{where}: a {self.name} likelihood with {self.num_levels} levels needs pixel "
                             f"values {grid}, found {shown}")


def pick_channel(a: jax.Array, channel) -> jax.Array:
    """a[:, channel] for a (possibly traced) channel index: [N, C, ...] -> [N, ...]."""
    return jnp.take(a, channel, axis=1)


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """A registry entry: the name that config.model.likelihood uses, the class, and its options.

    ``config`` is a frozen dataclass of the model's options (its fields may be
    set in the config's model section, e.g. model.num_mixtures); a field of
    another observation model there is an error.
    """
    name: str
    cls: type
    config: type

    def build(self, options, *, num_levels: int, num_channels: int) -> ObservationModel:
        return self.cls(num_levels=num_levels, num_channels=num_channels, **dataclasses.asdict(options))
