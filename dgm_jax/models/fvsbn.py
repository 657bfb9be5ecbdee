"""Fully visible sigmoid belief network (FVSBN; Frey 1998, Neal 1992).

With sub-pixels flattened in raster order over (row, col, channel), i = 0..D-1,

    o_ip = a_ip + sum_{j<i} W_ipj x_j [+ (V y)_ip]          (P outputs per sub-pixel)

and for binary data (P = 1) p(x_i = 1 | x_<i, y) = sigma(o_i). Every
conditional is its own logistic (or, for P = K levels, softmax) regression on
the pixels before it: separate parameters per conditional, no sharing. W is
stored as a full [D, P, D] array and multiplied by the strictly
lower-triangular mask (j < i) in the forward pass, so the stored parameter is
never mutated and the gradient of the masked entries is exactly zero. The
log-likelihood is concave in (a, W, V): a sum of logistic-regression
log-likelihoods.
"""
from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.models.base import AutoregressiveImageModel
from dgm_jax.models.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class Config:
    """No fields: one regression per sub-pixel on all sub-pixels before it."""


class FVSBN(AutoregressiveImageModel):

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C]; y: [B, D_y] or None. Returns [B, H, W, C, P] float32."""
        del mask_index
        y = self.condition(y)
        d, p = math.prod(self.image_shape), self.params_per_subpixel
        w = self.param("weights", nn.initializers.zeros, (d, p, d), jnp.float32)   # W_ipj: input j -> output (i, p)
        a = self.param("bias", nn.initializers.zeros, (d, p), jnp.float32)
        causal = jnp.asarray(np.tril(np.ones((d, d), np.float32), k=-1))[:, None, :]   # keep j < i only
        xf = x.reshape(x.shape[0], d).astype(self.dtype)
        out = jnp.einsum("bj,ipj->bip", xf, (w * causal).astype(self.dtype)) + a.astype(self.dtype)
        if y is not None:
            out = out + nn.Dense(d * p, use_bias=False, dtype=self.dtype, name="cond")(y).reshape(out.shape)
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


SPEC = ModelSpec(name="fvsbn", module=FVSBN, config=Config)
