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
units use dgm_jax.kernels.sigmoid (on the CPU a polynomial sigmoid that XLA:CPU fuses into
one vectorized loop; with jax.nn.sigmoid its exp and divide were the largest
cost of the step. Storing h for the backward pass instead of recomputing it
(no jax.checkpoint, or a policy that saves h) was 2x slower on a 2-core CPU:
[B, D, H] round trips through memory cost more than the recomputation in cache.
K = 8 measured best (vs 4 and 16) on a 2-core CPU at B = 100, H = 500;
experiments/bench_nade.py times it against the original.

Training does not go through the outputs: ``NADE.log_prob`` (what the train step and the
evaluation call) computes log p(x) and its parameter gradient in ONE forward scan
(:func:`nade_log_prob`, explained above it), with a custom VJP; autodiff of the outputs
runs the scan forward, again to recompute it, and a reverse scan. On a 2-core Intel Xeon,
batch 100, H = 500, one data-parallel CPU device per core (experiments/benchmark.py on the
nade config): 2,120 images/s through the outputs, 3,060 with log_prob.

Precision: the running sum, the within-block matmul and the hidden bias are
accumulated in float32 (the bias is the scan's initial value); the sum is cast
to ``dtype`` before the sigmoid, and the sigmoid and the output layer run in
``dtype``.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from dgm_jax.models.base import AutoregressiveImageModel, check_at_least
from dgm_jax.kernels import sigmoid
from dgm_jax.models.spec import ModelSpec

_BLOCK = 8     # K: sub-pixels per block of the blocked prefix sum


@dataclasses.dataclass(frozen=True)
class Config:
    num_hidden: int = 500            # H: hidden units shared by all conditionals

    def __post_init__(self):
        check_at_least("nade", "num_hidden", self.num_hidden, 1)


def blocked_nade_outputs(xf: jax.Array, hidden_bias: jax.Array, w: jax.Array, v: jax.Array, b: jax.Array,
                         dtype=jnp.float32, block: int = _BLOCK) -> jax.Array:
    """o[b, i, p] = b_ip + V_ip . sigma(hidden_bias_b + sum_{j<i} W_j x_bj), by the blocked prefix sum.

    xf [B, D] inputs (raster order), hidden_bias [B, H] (c [+ U y]), w [D, H], v [D, H, P], b [D, P].
    Returns [B, D, P] in ``dtype``.
    """
    bsz, d = xf.shape
    p, k = v.shape[-1], block
    xs, ws, vs, bs = _blocks(xf, w, v, b, dtype, k)

    def block_step(running, inputs):
        """running [B, H] f32 = r_n; returns r_{n+1} and the block's outputs [K, B, P]."""
        x_blk, w_blk, v_blk, b_blk = inputs
        _, h, out = _block_forward(running, x_blk, w_blk, v_blk, b_blk, dtype)
        running = running + jnp.dot(x_blk.T, w_blk, preferred_element_type=jnp.float32)
        return running, out

    _, out = jax.lax.scan(jax.checkpoint(block_step), hidden_bias.astype(jnp.float32), (xs, ws, vs, bs))
    return out.reshape(-1, bsz, p).transpose(1, 0, 2)[:, :d]                   # [B, D, P]


def _blocks(xf, w, v, b, dtype, k):
    """The inputs and parameters cut into blocks of K sub-pixels, D zero-padded to a multiple of K
    (zero inputs add nothing to any a_i; the outputs of padded positions are dropped):
    xs [nb, K, B] (x_{b, nK+l}), ws [nb, K, H], vs [nb, K, H, P], bs [nb, K, P]."""
    bsz, d = xf.shape
    nh, p = w.shape[1], v.shape[-1]
    nb = -(-d // k)
    pad = nb * k - d
    xf, w, v, b = xf.astype(dtype), w.astype(dtype), v.astype(dtype), b.astype(dtype)
    if pad:
        xf = jnp.pad(xf, ((0, 0), (0, pad)))
        w = jnp.pad(w, ((0, pad), (0, 0)))
        v = jnp.pad(v, ((0, pad), (0, 0), (0, 0)))
        b = jnp.pad(b, ((0, pad), (0, 0)))
    return (xf.reshape(bsz, nb, k).transpose(1, 2, 0), w.reshape(nb, k, nh), v.reshape(nb, k, nh, p),
            b.reshape(nb, k, p))


def _masked_inputs(x_blk):
    """M [(k, b), l] = x_{b, nK+l} [l < k] for a block's inputs x_blk [K, B]."""
    k, bsz = x_blk.shape
    tri = jnp.tril(jnp.ones((k, k), x_blk.dtype), -1)                          # tri[k, l] = [l < k]
    return (tri[:, None, :] * x_blk.T[None]).reshape(k * bsz, k)


def _block_forward(running, x_blk, w_blk, v_blk, b_blk, dtype):
    """One block: the within-block sums (one [(K B), K] x [K, H] product), h = sigma(r_n + within)
    and the outputs. Returns (M [(k, b), l], h [K, B, H], outputs [K, B, P])."""
    k, bsz = x_blk.shape
    masked = _masked_inputs(x_blk)
    within = jnp.dot(masked, w_blk, preferred_element_type=jnp.float32)         # [(k, b), H]
    a = running[None] + within.reshape(k, bsz, -1)                             # r_n + within, [K, B, H]
    h = sigmoid(a.astype(dtype))                                                # [K, B, H]
    out = jnp.einsum("kbh,khp->kbp", h, v_blk) + b_blk[:, None, :]
    return masked, h, out


# ----------------------------------------------------------------------------- log p and its gradient
#
# Training only needs log p(x) and its gradient with respect to the parameters. Autodiff of the
# outputs above runs the blocked forward twice (the forward pass, then its recomputation in the
# backward scan) and then the backward. The log-likelihood's gradient has a structure that
# lets one forward scan compute both: the derivative of sum_b log p(x_b) with respect to the
# outputs o_i is local (it only reads o_i and x_i), so each block can turn its own outputs into
#
#     g_i = d log p / d o_i   [B, P]          dV_i = sum_b g_bi h_bi          db_i = sum_b g_bi
#     e_i = (sum_p g_ip V_ip) * h_i (1 - h_i)          (d log p / d a_i, [B, H])
#
# while h_i is at hand. The weights W_j reach every later a_i, i > j, so
#
#     dW_j = sum_b x_bj sum_{i > j} e_bi = (within the block: M^T e) + x_j^T G_{n+1},
#
# with G_{n+1} = sum over the blocks after j's of their e_i. With the block sums S_n = sum_k
# e_nK+k, G_{n+1} = T - F_n (T = sum of all S_m, F_n = sum_{m <= n} S_m, a running sum the scan
# carries), so the scan emits M^T e - x_j^T F_n and one product x_j^T T over all j follows it.
# (The difference T - F_n rounds like float32 sums of T's size: ~1e-7 |T| per entry.)
# d log p / d (hidden bias) = T per image. One sigmoid per (image, position, unit) instead of
# two, and no backward scan.
#
# The sums over images above weigh every image alike: they are the gradient of sum_b log p_b.
# The VJP receives the weights c_b of the images (the loss's cotangent, -1/B for a mean NLL);
# when they are all equal it scales the precomputed sums, otherwise it falls back to
# autodiff of the two-pass computation, so the gradient is right for any weights. The images
# themselves are data: log p here does not differentiate with respect to x (stop_gradient).

def _pixel_log_prob(obs, out, x):
    """log p(x_i | o_i) of every sub-pixel of a block: out [K, B, P], x [K, B] -> [K, B] (one channel)."""
    k, bsz, p = out.shape
    return obs.log_prob_per_pixel(out.reshape(k, bsz, 1, 1, p), x.reshape(k, bsz, 1, 1)).reshape(k, bsz)


def _log_prob_two_pass(xf, hidden_bias, w, v, b, obs, dtype, block):
    """log p [B] from the outputs of blocked_nade_outputs (one channel: sub-pixel = pixel)."""
    out = blocked_nade_outputs(xf, hidden_bias, w, v, b, dtype=dtype, block=block)          # [B, D, P]
    return _pixel_log_prob(obs, out.transpose(1, 0, 2), xf.T).sum(axis=0)


def _valid(n_blocks, k, d):
    """[nb, K] 1 for real positions, 0 for the zero padding of the last block."""
    return (jnp.arange(n_blocks * k) < d).astype(jnp.float32).reshape(n_blocks, k)


def _fused_forward(xf, hidden_bias, w, v, b, obs, dtype, block, with_grad: bool):
    bsz, d = xf.shape
    xs, ws, vs, bs = _blocks(xf, w, v, b, dtype, block)
    valid = _valid(xs.shape[0], block, d)

    def block_step(carry, inputs):
        running, log_p, *rest = carry
        x_blk, w_blk, v_blk, b_blk, ok = inputs
        masked, h, out = _block_forward(running, x_blk, w_blk, v_blk, b_blk, dtype)
        lp_fn = lambda o: jnp.sum(_pixel_log_prob(obs, o, x_blk) * ok[:, None], axis=0)   # noqa: E731
        running = running + jnp.dot(x_blk.T, w_blk, preferred_element_type=jnp.float32)
        if not with_grad:
            return (running, log_p + lp_fn(out.astype(jnp.float32))), None
        seen = rest[0]
        lp, pull = jax.vjp(lp_fn, out.astype(jnp.float32))
        g = pull(jnp.ones_like(lp))[0].astype(dtype)                                   # [K, B, P]
        dh = jnp.einsum("kbp,khp->kbh", g, v_blk) if g.shape[-1] > 1 else g * v_blk[:, None, :, 0]
        e = (dh * h * (1.0 - h)).astype(jnp.float32)                                   # [K, B, H]
        dv = jnp.einsum("kbp,kbh->khp", g, h, preferred_element_type=jnp.float32)
        db = jnp.sum(g, axis=1, dtype=jnp.float32)
        dw_within = jnp.dot(masked.T, e.reshape(-1, e.shape[-1]), preferred_element_type=jnp.float32)
        seen = seen + jnp.sum(e, axis=0)                                               # F_n = sum_{m <= n} S_m
        dw_seen = jnp.dot(x_blk.astype(jnp.float32), seen)                             # x_j^T F_n
        return (running, log_p + lp, seen), (dw_within - dw_seen, dv, db)

    nh, p = w.shape[1], v.shape[-1]
    zeros = jnp.zeros((bsz, nh), jnp.float32)
    init = (hidden_bias.astype(jnp.float32), jnp.zeros((bsz,), jnp.float32)) + ((zeros,) if with_grad else ())
    carry, per_block = jax.lax.scan(block_step, init, (xs, ws, vs, bs, valid))
    if not with_grad:
        return carry[1], None
    _, log_p, total = carry                      # total T [B, H] = F_last: d log p_b / d hidden_bias_b
    dw_part, dv, db = per_block
    # G_{n+1} = T - F_n, so x_j^T G_{n+1} = x_j^T T - x_j^T F_n: the first term for every j at once.
    dw = dw_part + jnp.einsum("nkb,bh->nkh", xs.astype(jnp.float32), total)
    return log_p, (dw.reshape(-1, nh)[:d], dv.reshape(-1, nh, p)[:d], db.reshape(-1, p)[:d], total)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _log_prob(xf, hidden_bias, w, v, b, obs, dtype, block):
    return _fused_forward(xf, hidden_bias, w, v, b, obs, dtype, block, with_grad=False)[0]


def _log_prob_fwd(xf, hidden_bias, w, v, b, obs, dtype, block):
    log_p, grads = _fused_forward(xf, hidden_bias, w, v, b, obs, dtype, block, with_grad=True)
    return log_p, (grads, (xf, hidden_bias, w, v, b))


def _log_prob_bwd(obs, dtype, block, res, c):
    (dw, dv, db, dhb), primals = res
    xf, hidden_bias, w, v, b = primals

    def equal_weights(_):
        return (c[:, None] * dhb).astype(hidden_bias.dtype), c[0] * dw, c[0] * dv, c[0] * db

    def any_weights(_):
        _, pull = jax.vjp(lambda *a: _log_prob_two_pass(xf, *a, obs, dtype, block), hidden_bias, w, v, b)
        return pull(c)

    cotangents = jax.lax.cond(jnp.all(c == c[0]), equal_weights, any_weights, None)
    return (jnp.zeros_like(xf),) + tuple(t.astype(p.dtype) for t, p in zip(cotangents, (hidden_bias, w, v, b)))


_log_prob.defvjp(_log_prob_fwd, _log_prob_bwd)


def nade_log_prob(xf, hidden_bias, w, v, b, obs, dtype=jnp.float32, block: int = _BLOCK) -> jax.Array:
    """log p(x_b) [B] in nats for one-channel images xf [B, D] (raster order), hidden_bias [B, H],
    W [D, H], V [D, H, P], b [D, P]: the values of obs.log_prob on blocked_nade_outputs, and a
    gradient with respect to (hidden_bias, W, V, b) from one forward scan (see above). No
    gradient flows to xf."""
    return _log_prob(jax.lax.stop_gradient(xf), hidden_bias, w, v, b, obs, dtype, block)


class NADE(AutoregressiveImageModel):
    num_hidden: int = 500

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0, log_prob: bool = False) -> jax.Array:
        """x: [B, H, W, C]; y: [B, D_y] or None. Returns outputs [B, H, W, C, P] float32 (log_prob=True:
        log p(x | y) [B], see log_prob)."""
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
        if log_prob:
            return nade_log_prob(xf, hidden_bias, w, v, b, self.obs, dtype=self.dtype)
        out = blocked_nade_outputs(xf, hidden_bias, w, v, b, dtype=self.dtype)   # [B, D, P]
        return out.reshape(self.output_shape(x)).astype(jnp.float32)

    def log_prob(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """[B] log p(x | y) in nats, the same values as obs.log_prob(self(x, y), x); for one-channel
        images by nade_log_prob (one forward scan for value and parameter gradient)."""
        if self.image_shape[-1] != 1:
            return super().log_prob(x, y, mask_index)
        return self(x, y, mask_index, log_prob=True)


SPEC = ModelSpec(name="nade", module=NADE, config=Config, size_fields=("num_hidden",))
