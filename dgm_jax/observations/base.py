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

Values off the grid (NaN, +-inf, below 0, above 1, or between two levels) are
never rounded or clipped into a plausible pixel. On the host, every public
entry point refuses them before anything is compiled (``check_data``, called by
dgm_jax.log_prob, sample / complete, evaluation and the data pipeline; the
message names where, the first index and its value). Inside traced code (a
direct ``model.apply`` or ``log_prob_per_pixel`` under ``jit``, where no host
check can run) every ``log_prob_per_pixel`` returns NaN for a pixel that holds
such a value: subclasses' implementations are wrapped so that this holds for
every observation model (``__init_subclass__`` below). A bad value thus gives
a NaN log-likelihood, which a training step refuses to apply (its non-finite
check); ``levels`` still clips, but only so that table look-ups of those
poisoned pixels stay in range.

Bits per dimension are converted in exactly one place,
:func:`dgm_jax.likelihood.bits_per_dim`.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np


# A value is on the grid of K levels when x (K - 1) is within this many levels of an integer
# 0..K-1 (float32 level / (K - 1) is off by ~1e-5 levels at K = 256).
GRID_TOLERANCE = 1e-3


def off_grid(x, num_levels: int, xp=jnp):
    """True where x is not level / (K - 1) for an integer level 0..K-1: NaN, +-inf, < 0, > 1 or between
    levels. xp = jnp (traced) or np (host); the same rule on both sides."""
    scaled = x * (num_levels - 1)
    on_grid = (x >= 0) & (x <= 1) & (xp.abs(scaled - xp.round(scaled)) <= GRID_TOLERANCE)   # NaN: False
    return ~on_grid


def _poisoning(log_prob_per_pixel):
    """Wraps a log_prob_per_pixel so that pixels holding off-grid values get NaN (module docstring)."""
    @functools.wraps(log_prob_per_pixel)
    def wrapped(self, outputs, x):
        return self.poison_off_grid(log_prob_per_pixel(self, outputs, x), x)
    wrapped.poisons_off_grid = True
    return wrapped


@dataclasses.dataclass(frozen=True)
class ObservationModel:
    num_levels: int = 2        # K: values per sub-pixel
    num_channels: int = 1      # C: sub-pixels per pixel

    name = "observation"       # overridden by each model (a class attribute, not a field)
    num_uniforms = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("log_prob_per_pixel")
        if own is not None and not getattr(own, "poisons_off_grid", False):
            cls.log_prob_per_pixel = _poisoning(own)

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
        """float32 values level / (K - 1) -> int32 levels 0..K-1 (clipped: off-grid pixels are
        poisoned by log_prob_per_pixel, and the clip only keeps their look-ups in range)."""
        return jnp.clip(jnp.round(x.astype(jnp.float32) * (self.num_levels - 1)), 0,
                        self.num_levels - 1).astype(jnp.int32)

    def values(self, levels: jax.Array) -> jax.Array:
        """int levels -> float32 values level / (K - 1)."""
        return levels.astype(jnp.float32) / (self.num_levels - 1)

    def off_grid(self, x: jax.Array) -> jax.Array:
        """[...] bool, traced: True where x holds a value that is not on this model's K-level grid."""
        return off_grid(x.astype(jnp.float32), self.num_levels)

    def poison_off_grid(self, per_pixel: jax.Array, x: jax.Array) -> jax.Array:
        """per_pixel [...] log p of the pixels of x [..., C] -> NaN where a sub-pixel of x is off the grid."""
        return jnp.where(self.off_grid(x).any(axis=-1), jnp.nan, per_pixel)

    def poison_images(self, log_p: jax.Array, x: jax.Array) -> jax.Array:
        """log_p [B] of images x [B, ...] -> NaN for an image holding an off-grid value."""
        return jnp.where(self.off_grid(x).reshape(x.shape[0], -1).any(axis=-1), jnp.nan, log_p)

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
        """Raises ValueError naming `where`, the first bad index and its value if host array x is not
        on the K-level grid of [0, 1] (the rule of :func:`off_grid`)."""
        x = np.asarray(x, np.float32)
        with np.errstate(invalid="ignore"):        # inf - inf is NaN, and off the grid
            bad = off_grid(x, self.num_levels, np)
        if not bad.any():
            return
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        values = np.unique(x[bad])
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
        k = self.num_levels - 1
        grid = "0/1" if k == 1 else f"level / {k} for levels 0..{k}"
        raise ValueError(f"{where}: a {self.name} likelihood with {self.num_levels} levels needs pixel values "
                         f"{grid}, found {shown} ({int(bad.sum())} value(s) off the grid; the first at "
                         f"x[{', '.join(map(str, first))}] = {x[first]:g})")


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
