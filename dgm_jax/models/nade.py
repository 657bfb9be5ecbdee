"""NADE: neural autoregressive distribution estimator (Larochelle & Murray, 2011).

Pixels flattened in raster order over (row, col, channel), i = 0..D-1, H
hidden units shared by all conditionals:

    a_i = c [+ U y] + sum_{j<i} W_j x_j          (W_j: the hidden weights of input j, [H])
    h_i = sigma(a_i)                              [H]
    o_ip = b_ip + V_ip . h_i                      (P outputs per sub-pixel; P = 1 for binary data,
                                                   where p(x_i = 1 | x_<i, y) = sigma(o_i))

The weight sharing (W_j is the same for every i > j) is what makes NADE an
O(BDH) model: a_{i+1} = a_i + W_i x_i, so all D pre-activations are one
running (prefix) sum over i of W_j x_j instead of D separate passes of cost
O(HD) each. Conditioning adds U y to the hidden bias c, so every conditional,
including the first pixel's, sees y.

How the prefix sum is computed (a blocked prefix sum). The D positions are cut
into blocks of K = _BLOCK consecutive sub-pixels, i = nK + k (0 <= k < K; D is
zero-padded to a multiple of K, padded inputs contribute nothing and padded
outputs are dropped). With r_n = c [+ U y] + sum_{j<nK} W_j x_j, the running
sum at the start of block n,

    a_{nK+k} = r_n + sum_{l<k} x_{nK+l} W_{nK+l}       r_{n+1} = r_n + sum_{l<K} x_{nK+l} W_{nK+l}

The within-block term, for the K positions and the B images at once, is one
small matmul M_n @ W_n with M_n[(k, b), l] = x_{b, nK+l} [l < k] (the inputs
masked by a strictly lower-triangular K x K matrix) and W_n the block's K rows
of W: K multiply-adds per (image, position, hidden unit). A lax.scan over the
D/K blocks carries r_n [B, H] in float32 and emits each block's outputs, so the
working set is one block's [K, B, H] (1.6 MB at B = 100, H = 500) and no
[B, D, H] array is ever materialized; jax.checkpoint on the block makes the
backward pass a reverse scan that recomputes each block's h from the saved
r_n (D/K x [B, H]). That backward is the transposed recurrence: the cotangent
of r_n is sum over i >= nK of dL/da_i (a reverse prefix sum, again blocked),
dW_n = M_n^T dL/da + X_n^T (cotangent of r_{n+1}), dV, db per block.
(jnp.cumsum over [B, D, H], and its reverse-cumsum gradient, lower on XLA:CPU
to an associative scan of strided slices and pads over the whole array: over
10x slower per training step.) r_n is broadcast over the K positions; its
transpose, the per-block sum over k of dL/da, is a reduction that XLA fuses
with the elementwise backward. (An earlier version spread r_n by a
[K, 1] x [1, B*H] matmul, faster while XLA:CPU's YNNPACK fusions were on;
with them off, see dgm_jax/xla_cpu.py, the broadcast is faster.) The hidden
units use dgm_jax.models.sigmoid, a polynomial sigmoid that XLA:CPU fuses into
one vectorized loop; with jax.nn.sigmoid its exp and divide were the largest
cost of the step. Storing h for the backward pass instead of recomputing it
(no jax.checkpoint, or a policy that saves h) was 2x slower on a 2-core CPU:
[B, D, H] round trips through memory cost more than the recomputation in cache.
K = 8 measured best (vs 4 and 16) on a 2-core CPU at B = 100, H = 500;
experiments/bench_nade.py times it against the original.

Precision: the running sum, the within-block matmul and the hidden bias are
accumulated in float32 (the bias is the scan's initial value); the sum is cast
to ``dtype`` before the sigmoid, and the sigmoid and the output layer run in
``dtype``.
"""
from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from dgm_jax.models.base import AutoregressiveImageModel
from dgm_jax.models.sigmoid import sigmoid
from dgm_jax.models.spec import ModelSpec

_BLOCK = 8     # K: sub-pixels per block of the blocked prefix sum


@dataclasses.dataclass(frozen=True)
class Config:
    num_hidden: int = 500            # H: hidden units shared by all conditionals


def blocked_nade_outputs(xf: jax.Array, hidden_bias: jax.Array, w: jax.Array, v: jax.Array, b: jax.Array,
                         dtype=jnp.float32, block: int = _BLOCK) -> jax.Array:
    """o[b, i, p] = b_ip + V_ip . sigma(hidden_bias_b + sum_{j<i} W_j x_bj), by the blocked prefix sum.

    xf [B, D] inputs (raster order), hidden_bias [B, H] (c [+ U y]), w [D, H], v [D, H, P], b [D, P].
    Returns [B, D, P] in ``dtype``.
    """
    bsz, d = xf.shape
    nh, p = w.shape[1], v.shape[-1]
    k = block
    nb = -(-d // k)
    pad = nb * k - d
    xf, w, v, b = xf.astype(dtype), w.astype(dtype), v.astype(dtype), b.astype(dtype)
    if pad:                                                    # zero inputs add nothing to any a_i
        xf = jnp.pad(xf, ((0, 0), (0, pad)))
        w = jnp.pad(w, ((0, pad), (0, 0)))
        v = jnp.pad(v, ((0, pad), (0, 0), (0, 0)))
        b = jnp.pad(b, ((0, pad), (0, 0)))
    xs = xf.reshape(bsz, nb, k).transpose(1, 2, 0)             # [nb, K, B]: x_{b, nK+l}
    ws = w.reshape(nb, k, nh)                                   # [nb, K, H]
    vs = v.reshape(nb, k, nh, p)                                # [nb, K, H, P]
    bs = b.reshape(nb, k, p)                                    # [nb, K, P]
    tri = jnp.tril(jnp.ones((k, k), dtype), -1)                 # tri[k, l] = [l < k]

    def block_step(running, inputs):
        """running [B, H] f32 = r_n; returns r_{n+1} and the block's outputs [K, B, P]."""
        x_blk, w_blk, v_blk, b_blk = inputs
        masked = (tri[:, None, :] * x_blk.T[None]).reshape(k * bsz, k)          # [(k, b), l]
        within = jnp.dot(masked, w_blk, preferred_element_type=jnp.float32)     # [(k, b), H]
        a = running[None] + within.reshape(k, bsz, nh)                          # r_n + within, [K, B, H]
        h = sigmoid(a.astype(dtype))                                            # [K, B, H]
        out = jnp.einsum("kbh,khp->kbp", h, v_blk) + b_blk[:, None, :]
        running = running + jnp.dot(x_blk.T, w_blk, preferred_element_type=jnp.float32)
        return running, out

    _, out = jax.lax.scan(jax.checkpoint(block_step), hidden_bias.astype(jnp.float32), (xs, ws, vs, bs))
    return out.reshape(nb * k, bsz, p).transpose(1, 0, 2)[:, :d]               # [B, D, P]


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

        xf = x.reshape(x.shape[0], d)
        hidden_bias = jnp.broadcast_to(c.astype(self.dtype), (x.shape[0], nh))
        if y is not None:
            hidden_bias = hidden_bias + nn.Dense(nh, use_bias=False, dtype=self.dtype, name="cond")(y)
        out = blocked_nade_outputs(xf, hidden_bias, w, v, b, dtype=self.dtype)   # [B, D, P]
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


SPEC = ModelSpec(name="nade", module=NADE, config=Config, size_fields=("num_hidden",))
