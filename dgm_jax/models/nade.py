"""NADE: neural autoregressive distribution estimator (Larochelle & Murray, 2011).

Pixels flattened in raster order over (row, col, channel), i = 0..D-1, H
hidden units shared by all conditionals:

    a_i = c [+ U y] + sum_{j<i} W_j x_j          (W_j: the hidden weights of input j, [H])
    h_i = sigma(a_i)                              [H]
    o_ip = b_ip + V_ip . h_i                      (P outputs per sub-pixel; P = 1 for binary data,
                                                   where p(x_i = 1 | x_<i, y) = sigma(o_i))

The weight sharing (W_j is the same for every i > j) is what makes NADE an
O(HD) model: a_{i+1} = a_i + W_i x_i, so all D pre-activations are one
cumulative sum over i of W_j x_j, shifted by one position (a_0 = c), instead
of D separate passes of cost O(HD) each. Memory is [B, D, H].
Conditioning adds U y to the hidden bias c, so every conditional, including
the first pixel's, sees y.
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
    num_hidden: int = 500            # H: hidden units shared by all conditionals


class NADE(AutoregressiveImageModel):
    num_hidden: int = 500

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C]; y: [B, D_y] or None. Returns outputs [B, H, W, C, P] float32."""
        del mask_index
        y = self.condition(y)
        d, nh, p = math.prod(self.image_shape), self.num_hidden, self.params_per_subpixel
        # W [D, H]: row j is the hidden weight vector of input j (the paper's W[:, j]);
        # fan-in D. V [D, H, P]: V[i, :, p] reads h_i; fan-in H.
        w = self.param("W", nn.initializers.lecun_normal(in_axis=-2, out_axis=-1), (d, nh), jnp.float32)
        c = self.param("c", nn.initializers.zeros, (nh,), jnp.float32)
        v = self.param("V", nn.initializers.lecun_normal(in_axis=-2, out_axis=(-3, -1)), (d, nh, p), jnp.float32)
        b = self.param("b", nn.initializers.zeros, (d, p), jnp.float32)

        xf = x.reshape(x.shape[0], d).astype(self.dtype)
        hidden_bias = jnp.broadcast_to(c.astype(self.dtype), (x.shape[0], nh))
        if y is not None:
            hidden_bias = hidden_bias + nn.Dense(nh, use_bias=False, dtype=self.dtype, name="cond")(y)
        contrib = xf[:, :, None] * w.astype(self.dtype)[None]          # [B, D, H]: W_j x_j
        running = jnp.cumsum(contrib, axis=1, dtype=jnp.float32)       # sum_{j<=i}, f32 accumulation
        # Shift by one so that a_i only holds j < i (a_0 = c exactly).
        running = jnp.pad(running[:, :-1], ((0, 0), (1, 0), (0, 0)))
        h = jax.nn.sigmoid(hidden_bias[:, None, :] + running.astype(self.dtype))   # [B, D, H]
        out = jnp.einsum("bdh,dhp->bdp", h, v.astype(self.dtype)) + b.astype(self.dtype)
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


SPEC = ModelSpec(name="nade", module=NADE, config=Config, size_fields=("num_hidden",))
