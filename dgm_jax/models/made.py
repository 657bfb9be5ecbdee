"""MADE: masked autoencoder for distribution estimation (Germain et al., 2015).

An MLP x -> h^1 -> ... -> h^L -> logits whose weight matrices are multiplied
by binary masks so that output i only depends on the inputs before it in an
ordering. Input (sub-pixel) j, in raster order over (row, col, channel), gets
the degree m(j) = its position in the ordering + 1 (1..D): with
ordering='raster' m(j) = j + 1 for every mask; with ordering='random' each
mask k has its own order (base.pixel_major_order seeded with (MASK_SEED, k,
1): the pixels shuffled, a pixel's channels kept in channel order), also for
num_masks = 1 (the paper's released code shuffles the order before training
so that the natural order gives no edge). Outputs stay in raster layout;
``subpixel_order(k)`` says mask k's order. Hidden unit k of layer l gets a
degree m^l(k) in [min_k' m^{l-1}(k'), D - 1];
connections:

    input j  -> h^1_k     iff m^1(k) >= m(j)
    h^{l-1}_k' -> h^l_k   iff m^l(k) >= m^{l-1}(k')
    h^L_k    -> output i  iff m(i) > m^L(k)                 (strict)
    input j  -> output i  iff m(i) > m(j)                   (optional direct connection)

so every path from input j to output i has m(j) <= ... < m(i). Hidden layers
use ReLU; h^l = relu(masked W^l h^{l-1} + b^l [+ V^l y]); outputs =
masked W^out h^L + b [+ masked A x] [+ V^out y], P per sub-pixel (the
observation model's; P = 1 logit for binary data), each of the P outputs of
sub-pixel i masked like output i. The conditioning V y is
added to every hidden layer and to the logits (the first sub-pixel of the
order has no hidden unit below its degree, so only the output term lets its
p(x | y) depend on y).

Connectivity-agnostic (and, with ordering='random', order-agnostic: the
paper's "Full" shuffling) training: `num_masks` masks, mask k's hidden degrees
drawn by numpy's RNG seeded with (MASK_SEED, k) and its order as above, so
mask k is the same in every process and run. Training draws mask_index
uniformly from range(num_train_masks); log p is evaluated as the log-mean-exp over
mask_index in range(num_eval_masks) (an equal mixture of the masks'
autoregressive models, each normalized, so the mixture is too).

Only the degrees are stacked as constants ([num_masks, units] int32 per
layer, and [num_masks, D] for the input degrees of random orders) and
selected with jnp.take, so mask_index may be a traced int32 scalar; the
[in, out] masks are rebuilt from the selected degrees by one comparison in
the forward pass (stacking the masks themselves would embed
num_masks * D * units floats per layer as constants). An out-of-range traced
index is clipped to the last mask (still a valid autoregressive mask); an
out-of-range Python int is an error. Masks multiply the kernels in the
forward pass; stored parameters are never mutated.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.models.base import AutoregressiveImageModel, check_at_least, pixel_major_order
from dgm_jax.models.spec import ModelSpec

MASK_SEED = 1502_03509  # the MADE arXiv number; any fixed value works
ORDERINGS = ("raster", "random")


def hidden_degrees(num_inputs: int, num_hidden: int, num_hidden_layers: int,
                   mask_index: int) -> list[np.ndarray]:
    """Degrees m^l(k) of the hidden units of mask `mask_index`, one int array [num_hidden] per layer.

    Deterministic: numpy Generator seeded with (MASK_SEED, mask_index).
    """
    rng = np.random.default_rng([MASK_SEED, mask_index])
    top = max(num_inputs - 1, 1)          # D - 1 (D = 1: a single degree-1 unit that feeds nothing)
    low, degrees = 1, []
    for _ in range(num_hidden_layers):
        deg = rng.integers(low, top + 1, size=num_hidden)
        low = int(deg.min())
        degrees.append(deg.astype(np.int32))
    return degrees


class _MaskedDense(nn.Module):
    """y = x @ (kernel * mask) + bias in float32; mask [in, out] given at call time.

    The product takes x and the masked kernel in ``dtype`` and accumulates in float32
    (with bfloat16, the CPU's or GPU's bfloat16 matrix units), so the logits are float32
    sums whatever the compute dtype.
    """
    features: int
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features), jnp.float32)
        y = jnp.dot(x.astype(self.dtype), (kernel * mask).astype(self.dtype), preferred_element_type=jnp.float32)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


@dataclasses.dataclass(frozen=True)
class Config:
    num_hidden: int = 500            # units per hidden layer
    num_hidden_layers: int = 1
    num_masks: int = 1               # masks drawn from in training (1 = one fixed mask)
    num_eval_masks: int = 1          # masks 0..num_eval_masks-1 averaged (in probability) at evaluation
    direct_connection: bool = False  # add a masked direct input -> output linear path
    ordering: str = "raster"         # raster: every mask in raster order (only the hidden connectivity
                                     # differs between masks) | random: each mask also has its own random
                                     # input order (the paper's "Full" shuffling; 1 mask = 1 random order)

    def __post_init__(self):
        check_at_least("made", "num_hidden", self.num_hidden, 1)
        check_at_least("made", "num_hidden_layers", self.num_hidden_layers, 1)
        check_at_least("made", "num_masks", self.num_masks, 1)
        check_at_least("made", "num_eval_masks", self.num_eval_masks, 1)
        if self.num_eval_masks > self.num_masks:
            from dgm_jax.config_schema import ConfigError  # noqa: WPS433
            raise ConfigError(f"config.model.num_eval_masks={self.num_eval_masks} exceeds num_masks="
                              f"{self.num_masks}: evaluation averages trained masks only (1 <= num_eval_masks "
                              f"<= num_masks)")
        if self.ordering not in ORDERINGS:
            from dgm_jax.config_schema import ConfigError  # noqa: WPS433
            raise ConfigError(f"config.model.ordering={self.ordering!r} is not valid for model 'made'. "
                              f"Valid names: {', '.join(ORDERINGS)}.")


class MADE(AutoregressiveImageModel):
    num_hidden: int = 500
    num_hidden_layers: int = 1
    num_masks: int = 1              # masks cycled in training (= num_train_masks)
    num_eval_masks: int = 1         # masks 0..num_eval_masks-1 averaged at evaluation
    direct_connection: bool = False
    ordering: str = "raster"        # raster | random (see Config)

    @property
    def num_train_masks(self) -> int:
        return self.num_masks

    @property
    def raster_ordered(self) -> bool:
        return self.ordering == "raster"

    def subpixel_order(self, mask_index: int = 0) -> np.ndarray:
        """int [D]: the raster indices of the sub-pixels in mask `mask_index`'s order."""
        if self.ordering == "raster":
            return super().subpixel_order(mask_index)
        return pixel_major_order(self.image_shape, (MASK_SEED, int(mask_index), 1))

    def input_degree_table(self) -> np.ndarray:
        """m(j) of every mask: int32 [num_masks, D], m(order[t]) = t + 1."""
        d = math.prod(self.image_shape)
        table = np.zeros((self.num_masks, d), np.int32)
        for k in range(self.num_masks):
            table[k, self.subpixel_order(k)] = np.arange(1, d + 1)
        return table

    def _check(self) -> None:
        """The Config's checks, for a module built directly (not from a config)."""
        Config(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Config)})

    def degree_table(self) -> list[np.ndarray]:
        """Per hidden layer, the degrees of every mask stacked: int32 [num_masks, num_hidden]."""
        d = math.prod(self.image_shape)
        per_mask = [hidden_degrees(d, self.num_hidden, self.num_hidden_layers, k) for k in range(self.num_masks)]
        return [np.stack([m[l] for m in per_mask]) for l in range(self.num_hidden_layers)]

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C]; y: [B, D_y] or None; mask_index: int or int32 scalar in [0, num_masks).

        Returns outputs [B, H, W, C, P] float32.
        """
        self._check()
        y = self.condition(y)
        if isinstance(mask_index, (int, np.integer)) and not 0 <= mask_index < self.num_masks:
            raise ValueError(f"mask_index={mask_index} outside [0, {self.num_masks})")
        d = math.prod(self.image_shape)
        index = jnp.asarray(mask_index, jnp.int32)
        if self.ordering == "raster":
            in_deg = jnp.arange(1, d + 1, dtype=jnp.int32)
        else:
            in_deg = jnp.take(jnp.asarray(self.input_degree_table()), index, axis=0, mode="clip")   # [D]
        prev_deg = in_deg
        h = x.reshape(x.shape[0], d).astype(self.dtype)
        xf = h
        for l, table in enumerate(self.degree_table()):
            deg = jnp.take(jnp.asarray(table), index, axis=0, mode="clip")       # [num_hidden]
            mask = (deg[None, :] >= prev_deg[:, None]).astype(jnp.float32)
            h = _MaskedDense(self.num_hidden, dtype=self.dtype, name=f"hidden_{l}")(h, mask)
            if y is not None:
                h = h + nn.Dense(self.num_hidden, use_bias=False, dtype=self.dtype, name=f"cond_{l}")(y)
            h = nn.relu(h).astype(self.dtype)
            prev_deg = deg
        # Output (i, p) is masked like output i: the mask's columns repeated P times.
        p = self.params_per_subpixel
        per_output = lambda m: jnp.repeat(m, p, axis=1)  # noqa: E731 - [in, D] -> [in, D * P]
        out_mask = per_output((in_deg[None, :] > prev_deg[:, None]).astype(jnp.float32))
        out = _MaskedDense(d * p, dtype=self.dtype, name="output")(h, out_mask)
        if self.direct_connection:
            direct_mask = per_output((in_deg[None, :] > in_deg[:, None]).astype(jnp.float32))
            out = out + _MaskedDense(d * p, use_bias=False, dtype=self.dtype, name="direct")(xf, direct_mask)
        if y is not None:
            out = out + nn.Dense(d * p, use_bias=False, dtype=self.dtype, name="cond_out")(y)
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


SPEC = ModelSpec(name="made", module=MADE, config=Config, size_fields=("num_hidden", "num_hidden_layers"))
