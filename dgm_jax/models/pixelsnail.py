"""PixelSNAIL (Chen, Mishra, Rohaninejad and Abbeel, 2018, "PixelSNAIL: An Improved Autoregressive
Generative Model"): causal convolutions interleaved with causal self-attention over raster positions.

F = num_features, C = sub-pixels per pixel, x' = 2x - 1, y the condition.

    u_0 = MaskA_3x3(x') + MaskA_3x3(1)                     (the second term: a fixed image-vs-padding map)
    for each of num_blocks blocks:
        num_res_per_block times:  u = u + Res(u)           (causal 2x2 or 2x3 convolutions)
        a = Attend(x', u, pos)                             (position i reads positions j < i only)
        u = u + Mix(u, a)                                  (1x1 convolutions)
    outputs = MaskB_1x1(elu(u))                           [C x P maps]

Both residual layers are the paper's gated residual units (its code's
gated_resnet with the ELU nonlinearity):

    Res(u)    = glu(K2(drop(elu(K1(elu(u))))) + V y),     K1: F -> F, K2: F -> 2F, causal 2x2
    Mix(u, a) = glu(P2(drop(elu(P1(elu(u)) + Pa(elu(a))))) + V' y),   1x1 mask-B P1, Pa, P2
    glu([a | b]) = a * sigmoid(b)   (a gated linear unit, the paper's gate; halves laid out per sub-pixel group)

The conditioning V y (a one-hot class or any vector) enters both halves of
every gate, as in the Gated PixelCNN.

The causal 2x2 convolution (``DownRightConv``) reads positions (r-1, c-1),
(r-1, c), (r, c-1) and (r, c), the last with the mask-B rule: the upper-left
quarter of masked_conv's 3x3 mask (the paper's "down-right shifted"
convolution). The convolutions alone see only the quadrant above-left of a
pixel (and the 3x3 input layer's one step up-right); the attention sees the
whole past, so there is no blind spot.

conv_width = 3 (not in the paper) widens both convolutions of every residual
layer to 2x3: the upper two rows of the 3x3 mask-B kernel, so a layer also
reads (r-1, c+1). The convolutions then see k columns right of c in the row
k rows up (PixelCNN's triangle, as far up as there are convolutions; its blind
spot above-right is the attention's), where 2x2 layers see one column (the input
layer's) in every row. A stroke running down-left, as in most 1s, 4s and 7s, is
then in the convolutions' view, not the attention's alone. It costs 1.5x the
convolutions' FLOPs.

Attention (one per block, ``num_heads`` heads of ``key_features`` query/key
and ``value_features`` value channels). Positional information as in the
paper: a fixed "background" of two maps, (r - H/2)/H and (c - W/2)/W,
concatenated to the inputs of the keys/values and of the queries.

    keys, values at j = Dense(z_j),  z_j = [x'_j, u_j, pos_j]   (x' itself: the raw content of pixel j)
                        (key_value_unit: z_j + Unit(z_j) instead of z_j, Unit as Res with 1x1 layers)
    queries at i      = MaskB_1x1(u_i) + Dense(pos_i)      (one query set per sub-pixel group)
    a_i = sum_{j < i} softmax_j(q_i . k_j / sqrt(key_features)) v_j,    a_0 = 0

Why the unit matters for locality: without it a logit is linear in each position, q_i . k_j =
A(u_i, pos_i) . (B z_j), so as a function of pos_j it is the plane w_i . pos_j + const; its softmax
favours the far edge of the past in the direction w_i and can never peak at a nearby position (the
pixel above-right, say). A key that is a nonlinear function of pos_j can hold |pos_j|^2 too, and
q_i . k_j = 2 (pos_i + d) . pos_j - |pos_j|^2 = -|pos_i + d - pos_j|^2 + const(i) peaks at the
offset d from i. The convolutions of this network see only the quadrant above-left of a pixel, so
that is how a small PixelSNAIL finds the stroke above-right.

Why position i attends to j < i only, and why that is the right mask here:
the keys and values of position j contain x'_j, the content of pixel j
(as in the paper), so j = i would hand every sub-pixel of pixel i its own
value. With j < i the keys and values only hold complete earlier pixels,
which every output of pixel i may read. The queries are where the current
pixel's content could leak: u_i of sub-pixel group g already reads the
sub-pixels < g of pixel i (mask B). So each group g has its own queries,
computed by a mask-B 1x1 layer from the groups <= g, and the result
a_i (laid out group by group) reaches the features through the mask-B 1x1
Pa: group g of a_i depends on earlier pixels and x_i[<g] only, exactly what
group g of u_i may read. With C = 1 this is ordinary multi-head attention
with a strictly causal mask. (The alternative, j <= i with keys and values
computed from features only, would need group-masked keys and values; the
paper's choice needs none.) tests/test_models.py proves the order by Jacobian
(grey and RGB) and the normalization by enumeration.

Sub-pixels (C > 1): features are split into C contiguous groups
(masked_conv); the 2F gate pre-activations group by group, each holding F/C
'a' then F/C 'b' inputs (gated_pixelcnn.gate_half_indices' layout), so the
gate multiplies channels of one group and the masks apply unchanged.
Requires num_features divisible by C.

Differences from the paper's code: no weight normalization or data-dependent
init; its code passes the inputs of the keys/values and of the queries through
a 1x1 gated residual unit before their 1x1 projections: here key_value_unit=True
does so for the keys/values (their inputs hold complete pixels, so the unit
needs no sub-pixel masks), the queries are a single projection either way; our
sub-pixel masks within a pixel (its code predicts whole pixels, R, G, B coupled only inside
the logistic mixture); any number of heads (it used one). Dropout (its
CIFAR-10 run: 0.5) is applied in training when dropout_rate > 0 (a 'dropout' rng in the apply).

Sampling: ``cached_sampler`` draws exactly what the naive sampler draws (one
position per step: every convolution at that position only, from cached
maps; the attention against cached keys and values), about C forward passes
per image instead of H*W*C.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax import kernels
from dgm_jax.models import sizes
from dgm_jax.models.base import AutoregressiveImageModel, check_at_least, check_dropout_rate
from dgm_jax.models.masked_conv import MaskedConv2D, PointwiseDense, conv_mask
from dgm_jax.models.spec import ModelSpec

MASKED_LOGIT = -1e30        # attention logit of a masked (future or current) position, before the softmax


def background(height: int, width: int) -> np.ndarray:
    """The paper's positional maps [H, W, 2]: ((r - H/2) / H, (c - W/2) / W), in [-0.5, 0.5)."""
    rows = (np.arange(height, dtype=np.float32) - height / 2) / height
    cols = (np.arange(width, dtype=np.float32) - width / 2) / width
    return np.stack(np.broadcast_arrays(rows[:, None], cols[None, :]), axis=-1)


def glu(pre: jax.Array, num_data_channels: int) -> jax.Array:
    """a * sigmoid(b) of pre-activations [..., 2F] laid out group by group (gate_half_indices) -> [..., F]."""
    *lead, two_f = pre.shape
    if num_data_channels == 1:       # the two contiguous halves (the same numbers, no extra view)
        return pre[..., : two_f // 2] * jax.nn.sigmoid(pre[..., two_f // 2:])
    p = pre.reshape(*lead, num_data_channels, 2, two_f // (2 * num_data_channels))
    return (p[..., 0, :] * jax.nn.sigmoid(p[..., 1, :])).reshape(*lead, two_f // 2)


def masked_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax attention restricted to `mask`; a query with no allowed key gets zeros.

    q [B, I, G, h, dk] (G query sets, one per sub-pixel group), k [B, J, h, dk], v [B, J, h, dv],
    mask [I, J] bool (True: query i may read key j). Returns [B, I, G, h, dv]. The softmax
    runs in float32. With l_ij the logits, m_i = max_j l_ij and e_ij = exp(l_ij - m_i),

        a_i = (sum_j e_ij v_j) * [i has an allowed key] / sum_j e_ij,

    the softmax's normalization applied to the [dv] result instead of the [J] weights (the
    same numbers to float32 rounding, one pass less over the [I, J] weights). Masked logits
    get MASKED_LOGIT added, so exp underflows to exactly 0 for them whenever the row has an
    allowed key: they carry exactly zero value and zero derivative. A row with none (query 0
    of a causal mask) is multiplied by 0, its value and every derivative through it zero.
    """
    b, i, g, h, dk = q.shape
    dv = v.shape[-1]
    # Heads first, queries of a head as one [I G] axis: both products are plain batched matrix
    # products, [B h, I G, dk] x [B h, dk, J] and [B h, I G, J] x [B h, J, dv], so XLA moves only
    # the small q, k, v and the output between layouts, never the [I G, J] logits or weights.
    # PixelSNAIL 8x2x64, batch 32 of 28x28, 2-core AMD EPYC, A/B under load (train / eval
    # images/s): einsums over "bighd,bjhd->bghij" and back (XLA:CPU transposed the logits and
    # the weights for each product) 7.0 / 25-27; these products 7.7-7.8 / 31-32; with the
    # normalization after the product and the mask added rather than selected 8.4-8.5 / 32.
    qh = q.transpose(0, 3, 1, 2, 4).reshape(b, h, i * g, dk)
    kh = k.transpose(0, 2, 3, 1)                                   # [B, h, dk, J]
    vh = v.transpose(0, 2, 1, 3)                                   # [B, h, J, dv]
    allowed = jnp.repeat(mask, g, axis=0)                          # [I G, J]: row i g is query i's
    logits = jnp.matmul(qh, kh).astype(jnp.float32) / math.sqrt(dk)
    logits = logits + jnp.where(allowed, 0.0, MASKED_LOGIT).astype(jnp.float32)
    e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))   # m_i: no derivative needed
    scale = jnp.any(allowed, -1, keepdims=True) / e.sum(-1, keepdims=True)        # [B, h, I G, 1]
    out = jnp.matmul(e.astype(v.dtype), vh) * scale.astype(v.dtype)              # [B, h, I G, dv]
    return out.reshape(b, h, i, g, dv).transpose(0, 2, 3, 1, 4)


# Query blocks of causal_attention: at most 8, of at least 64 queries (smaller blocks do not pay
# for their extra ops). On the 2-core Xeon, PixelSNAIL 8x2x64 at batch 32 on 28x28 images, one
# A/B under load: 1 block 4.4-5.0 train / 12-15 eval images/s, 4 blocks 5.6-6.9 / 19-22,
# 8 blocks 7.0 / 21 (compile 15 s), 16: 6.5 / 22, 28: 7.1 / 26 (compile 40 s).
CAUSAL_CHUNKS, MIN_CHUNK = 8, 64


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, num_chunks: int | None = None) -> jax.Array:
    """masked_attention with the strict causal mask j < i, computed by blocks of queries.

    Queries i in [s, e) can only read keys j < e - 1, so block [s, e) takes the logits against the
    first e - 1 keys only: with c equal blocks the logits (their softmax, its gradient and their
    memory) are (c + 1) / (2c) of the full [N, N] square instead of all of it, the part above the
    diagonal block never computed. Each row is the same softmax over the same allowed keys (the
    skipped keys' weights are exactly 0 in masked_attention), equal to it to float32 rounding
    (the reductions run over fewer terms). Shapes as masked_attention.
    """
    n = q.shape[1]
    if num_chunks is None:
        num_chunks = min(CAUSAL_CHUNKS, max(1, n // MIN_CHUNK))
    bounds = np.linspace(0, n, min(num_chunks, n) + 1).round().astype(int)    # strictly increasing
    parts = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        m = max(int(e) - 1, 1)                               # keys 0 .. e - 2 are the only readable ones
        mask = jnp.arange(s, e)[:, None] > jnp.arange(m)[None, :]
        parts.append(masked_attention(q[:, s:e], k[:, :m], v[:, :m], mask))
    return jnp.concatenate(parts, axis=1)


class DownRightConv(nn.Module):
    """Causal 2 x width convolution. width = 2 (the paper's): output (r, c) reads input (r-1, c-1),
    (r-1, c), (r, c-1) and (r, c), the last tap by channel group with mask B (the upper-left
    quarter of masked_conv's 3x3 mask). width = 3: also (r-1, c+1), the upper two rows of the 3x3
    mask-B kernel (its tap (r, c+1) is masked out).

    x [B, H, W, in] -> [B, H, W, features] (zero padding above, left and, for width 3, right); with
    window=True, x [N, 2, width, in] is the neighbourhood of one position and the result its output
    [N, features].
    """
    features: int
    num_data_channels: int = 1
    width: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, window: bool = False) -> jax.Array:
        in_features = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (2, self.width, in_features, self.features),
                            jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        mask = conv_mask((3, 3), in_features, self.features, "B", self.num_data_channels)[:2, :self.width]
        kernel = (kernel * mask).astype(self.dtype)
        x = x.astype(self.dtype)
        if window:     # one output: a [N, 2 width in] x [2 width in, features] product (no convolution in a loop)
            return kernels.add_bias(kernels.dense(x.reshape(x.shape[0], -1), kernel.reshape(-1, self.features)), bias)
        return kernels.add_bias(kernels.conv2d(x, kernel, ((1, 0), (1, self.width - 2))), bias)


@dataclasses.dataclass(frozen=True)
class Config:
    num_features: int = 32           # F: maps of every layer (divisible by the C sub-pixels)
    num_blocks: int = 4              # blocks of residual layers + one attention each
    num_res_per_block: int = 2       # gated residual layers (causal 2x2 convolutions) per block
    num_heads: int = 1               # attention heads
    key_features: int = 8            # query/key channels per head
    value_features: int = 16         # value channels per head
    dropout_rate: float = 0.0        # dropout inside every gated residual unit, training only (the paper: 0.5)
    key_value_unit: bool = False     # the keys' and values' inputs through a 1x1 gated residual unit (the paper's code)
    conv_width: int = 2              # the residual layers' causal convolutions: 2x2 (the paper's) or 2x3 (also above-right)

    def __post_init__(self):
        check_sizes(self)


def check_sizes(m) -> None:
    """Refuses sizes that build no model (m: a Config or a PixelSNAIL); ConfigError names the field."""
    check_at_least("pixelsnail", "num_features", m.num_features, 1, "the layers need features")
    check_at_least("pixelsnail", "num_blocks", m.num_blocks, 1, "each block holds one attention layer")
    check_at_least("pixelsnail", "num_res_per_block", m.num_res_per_block, 0, "a count of residual layers")
    check_at_least("pixelsnail", "num_heads", m.num_heads, 1, "the attention needs a head")
    check_at_least("pixelsnail", "key_features", m.key_features, 1, "queries and keys need channels")
    check_at_least("pixelsnail", "value_features", m.value_features, 1, "values need channels")
    check_dropout_rate("pixelsnail", m.dropout_rate)
    if m.conv_width not in (2, 3):
        from dgm_jax.config_schema import ConfigError  # noqa: WPS433 - config_schema imports the registry lazily
        raise ConfigError(f"config.model.conv_width={m.conv_width} is not valid for model 'pixelsnail': it must be "
                          "2 (causal 2x2 convolutions, the paper's) or 3 (2x3, also reading the pixel above-right)")


class PixelSNAIL(AutoregressiveImageModel):
    num_features: int = 32
    num_blocks: int = 4
    num_res_per_block: int = 2
    num_heads: int = 1
    key_features: int = 8
    value_features: int = 16
    dropout_rate: float = 0.0
    key_value_unit: bool = False
    conv_width: int = 2

    def setup(self):
        check_sizes(self)
        c, feats, dt = self.image_shape[-1], self.num_features, self.dtype
        sizes.divisible_by_channels("pixelsnail", "num_features", feats, c)
        hk, hv = self.num_heads * self.key_features, self.num_heads * self.value_features
        num_res = self.num_blocks * self.num_res_per_block
        self.input_conv = MaskedConv2D(feats, (3, 3), "A", c, dtype=dt)
        # A mask-A 3x3 layer on a map of ones: where the taps fall on the image or on the padding.
        self.border_conv = MaskedConv2D(feats, (3, 3), "A", 1, use_bias=False, dtype=dt)
        self.res_in = [DownRightConv(feats, c, self.conv_width, dtype=dt) for _ in range(num_res)]
        self.res_out = [DownRightConv(2 * feats, c, self.conv_width, dtype=dt) for _ in range(num_res)]
        self.keys_values = [PointwiseDense(hk + hv, dtype=dt) for _ in range(self.num_blocks)]
        if self.key_value_unit:      # z + glu(W2 drop(elu(W1 elu(z)))) on z = [x', u, pos]
            z_features = c + feats + 2
            self.kv_unit_in = [PointwiseDense(z_features, dtype=dt) for _ in range(self.num_blocks)]
            self.kv_unit_out = [PointwiseDense(2 * z_features, dtype=dt) for _ in range(self.num_blocks)]
        self.queries = [MaskedConv2D(c * hk, (1, 1), "B", c, dtype=dt) for _ in range(self.num_blocks)]
        self.query_pos = [PointwiseDense(c * hk, use_bias=False, dtype=dt) for _ in range(self.num_blocks)]
        self.mix_in = [MaskedConv2D(feats, (1, 1), "B", c, dtype=dt) for _ in range(self.num_blocks)]
        self.mix_att = [MaskedConv2D(feats, (1, 1), "B", c, use_bias=False, dtype=dt)
                        for _ in range(self.num_blocks)]
        self.mix_out = [MaskedConv2D(2 * feats, (1, 1), "B", c, dtype=dt) for _ in range(self.num_blocks)]
        if self.conditional:
            self.res_conds = [nn.Dense(2 * feats, use_bias=False, dtype=dt) for _ in range(num_res)]
            self.mix_conds = [nn.Dense(2 * feats, use_bias=False, dtype=dt) for _ in range(self.num_blocks)]
        self.head_out = MaskedConv2D(c * self.params_per_subpixel, (1, 1), "B", c, dtype=dt)
        self.drop = nn.Dropout(self.dropout_rate)

    # ------------------------------------------------------------------ pieces shared with the sampler

    def border(self) -> jax.Array:
        """[1, H, W, F]: the input layer's image-vs-padding map (the paper's channel of ones)."""
        return self.border_conv(jnp.ones((1,) + tuple(self.image_shape[:2]) + (1,), self.dtype))

    def gate(self, pre: jax.Array, conds, index: int, y) -> jax.Array:
        """glu(pre + V_index y): pre [..., 2F] -> [..., F]."""
        if y is not None:
            pre = kernels.add_bias(pre, conds[index](y))
        return glu(pre, self.image_shape[-1])

    def dropped(self, h: jax.Array) -> jax.Array:
        """Dropout in training only: when the apply was given a 'dropout' rng (dgm_jax/steps.py)."""
        if self.dropout_rate == 0 or not self.has_rng("dropout"):
            return h
        return self.drop(h, deterministic=False)

    def queries_of(self, block: int, u: jax.Array, pos: jax.Array) -> jax.Array:
        """u [..., F], pos [..., 2] (broadcastable) -> queries [..., C, h, dk]; group g's read groups <= g of u."""
        q = self.queries[block](u) + self.query_pos[block](pos.astype(self.dtype))      # pos broadcast over B
        return q.reshape(q.shape[:-1] + (self.image_shape[-1], self.num_heads, self.key_features))

    def keys_values_of(self, block: int, xs: jax.Array, u: jax.Array, pos: jax.Array):
        """z = [x', u, pos] [..., C + F + 2] -> keys [..., h, dk], values [..., h, dv] (of z + Unit(z)
        with key_value_unit; z holds complete pixels only, so the unit mixes all its channels)."""
        z = jnp.concatenate([xs.astype(self.dtype), u, pos.astype(self.dtype)], -1)
        if self.key_value_unit:
            h = nn.elu(self.kv_unit_in[block](nn.elu(z)))
            z = z + glu(self.kv_unit_out[block](self.dropped(h)), 1)
        kv = self.keys_values[block](z)
        hk = self.num_heads * self.key_features
        lead = kv.shape[:-1]
        return (kv[..., :hk].reshape(lead + (self.num_heads, self.key_features)),
                kv[..., hk:].reshape(lead + (self.num_heads, self.value_features)))

    def mix(self, block: int, u: jax.Array, att: jax.Array, y) -> jax.Array:
        """u + Mix(u, a): u [..., F], att [..., C h dv] (group by group) -> [..., F]."""
        h = nn.elu(self.mix_in[block](nn.elu(u)) + self.mix_att[block](nn.elu(att)))
        pre = self.mix_out[block](self.dropped(h))
        return u + self.gate(pre, getattr(self, "mix_conds", None), block, y)

    def head(self, u: jax.Array) -> jax.Array:
        """[..., F] -> outputs [..., C, P] float32."""
        out = self.head_out(nn.elu(u))
        return out.reshape(out.shape[:-1] + (self.image_shape[-1], self.params_per_subpixel)).astype(jnp.float32)

    # ------------------------------------------------------------------ the full network

    def residual(self, layer: int, u: jax.Array, y) -> jax.Array:
        """u + Res(u) on whole maps [B, H, W, F]."""
        h = nn.elu(self.res_in[layer](nn.elu(u)))
        pre = self.res_out[layer](self.dropped(h))
        return u + self.gate(pre, getattr(self, "res_conds", None), layer, y)

    def attend(self, block: int, xs: jax.Array, u: jax.Array, pos: jax.Array) -> jax.Array:
        """a [B, H, W, C h dv] of block `block`: every position i attends to the positions j < i."""
        b, hgt, wid, _ = u.shape
        n = hgt * wid
        pos = jnp.asarray(pos)
        k, v = self.keys_values_of(block, xs, u, jnp.broadcast_to(pos, (b, hgt, wid, 2)))
        q = self.queries_of(block, u, pos)
        a = causal_attention(q.reshape((b, n) + q.shape[3:]), k.reshape((b, n) + k.shape[3:]),
                             v.reshape((b, n) + v.shape[3:]))
        return a.reshape(b, hgt, wid, -1)

    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] in [0, 1]; y: [B, D] float or None. Returns outputs [B, H, W, C, P] float32.

        With dropout_rate > 0 and a 'dropout' rng given to apply (training), dropout is applied.
        """
        del mask_index
        y = self.condition(y)
        xs = 2.0 * x.astype(self.dtype) - 1.0
        pos = background(*self.image_shape[:2])
        u = self.input_conv(xs) + self.border()
        for block in range(self.num_blocks):
            for k in range(self.num_res_per_block):
                u = self.residual(block * self.num_res_per_block + k, u, y)
            u = self.mix(block, u, self.attend(block, xs, u, pos), y)
        return self.head(u)


# ----------------------------------------------------------------------------- cached sampling
#
# Raster position p = (r, c) is computed at p only, once per sub-pixel: the
# outputs of sub-pixel k read x at earlier pixels and x[p, <k] only, so the
# placeholder zeros of x[p, >=k] never matter. What a layer at p reads:
#   * the 3x3 mask-A input layer: x' at (r-1..r+1, c-1..c+1), zero-padded;
#   * a causal 2x2 convolution: its input map at (r-1..r, c-1..c) (2x3: also
#     (r-1, c+1), a position of the finished row above). Each map (elu of a
#     residual layer's input, elu of its hidden layer) is cached, [N, H+1, W+1, F]
#     with a zero row on top and a zero column on the left (the full network's
#     padding; 2x3: [N, H+1, W+2, F], a zero column on the right too), position
#     (r, c) at [r+1, c+1]; the value at p is written just before it is read,
#     earlier positions are final (a map at p never reads x[p]'s last sub-pixel);
#   * the attention: the keys and values of positions j < p, cached
#     [N, H*W, h, d]. Those of p read all of x[p], so they are written once the
#     pixel is complete, from the attention's input u at p (which does not
#     depend on x[p]'s last sub-pixel) and the drawn pixel.
# Given rows (completion) are filled by the same step, one per given pixel.

def _window(cache: jax.Array, r, c, rows: int, cols: int) -> jax.Array:
    """cache[:, r : r + rows, c : c + cols] of a padded map [N, H+pad, W+pad, F]."""
    return jax.lax.dynamic_slice(cache, (0, r, c, 0), (cache.shape[0], rows, cols, cache.shape[-1]))


def _position_forward(m, x, caches, p, y):
    """Outputs [N, C, P] of raster position p of x [N, H, W, C], computed at p only.

    Returns (outputs, caches with position p's maps written, the attention inputs u at p [N, F] per block).
    """
    hgt, wid, _ = m.image_shape
    r, c = p // wid, p % wid
    xs = jnp.pad(2.0 * x.astype(m.dtype) - 1.0, ((0, 0), (1, 1), (1, 1), (0, 0)))
    pos = jnp.asarray(background(hgt, wid))[r, c][None, :]                           # [1, 2]
    u = m.input_conv(_window(xs, r, c, 3, 3))[:, 1, 1] + \
        jax.lax.dynamic_slice(caches["border"], (0, r, c, 0), (1, 1, 1, m.num_features))[:, 0, 0]
    res_in, res_hidden = list(caches["res_in"]), list(caches["res_hidden"])
    att_inputs = []
    for block in range(m.num_blocks):
        for k in range(m.num_res_per_block):
            l = block * m.num_res_per_block + k
            res_in[l] = res_in[l].at[:, r + 1, c + 1].set(nn.elu(u).astype(res_in[l].dtype))
            h = nn.elu(m.res_in[l](_window(res_in[l], r, c, 2, m.conv_width), window=True))
            res_hidden[l] = res_hidden[l].at[:, r + 1, c + 1].set(h.astype(res_hidden[l].dtype))
            pre = m.res_out[l](_window(res_hidden[l], r, c, 2, m.conv_width), window=True)
            u = u + m.gate(pre, getattr(m, "res_conds", None), l, y)
        att_inputs.append(u)
        q = m.queries_of(block, u, pos)[:, None]                                      # [N, 1, C, h, dk]
        mask = (jnp.arange(hgt * wid) < p)[None, :]                                   # keys j < p
        a = masked_attention(q, caches["keys"][block], caches["values"][block], mask)
        u = m.mix(block, u, a.reshape(a.shape[0], -1), y)
    caches = {**caches, "res_in": tuple(res_in), "res_hidden": tuple(res_hidden)}
    return m.head(u), caches, tuple(att_inputs)


def _store_keys_values(m, x, att_inputs, caches, p):
    """Writes the keys and values of position p (complete in x) from its attention inputs [N, F]."""
    hgt, wid, _ = m.image_shape
    r, c = p // wid, p % wid
    xs = 2.0 * x[:, r, c].astype(m.dtype) - 1.0                                      # [N, C]
    pos = jnp.broadcast_to(jnp.asarray(background(hgt, wid))[r, c], (x.shape[0], 2))
    keys, values = list(caches["keys"]), list(caches["values"])
    for block in range(m.num_blocks):
        k, v = m.keys_values_of(block, xs, att_inputs[block], pos)
        keys[block] = keys[block].at[:, p].set(k.astype(keys[block].dtype))
        values[block] = values[block].at[:, p].set(v.astype(values[block].dtype))
    return {**caches, "keys": tuple(keys), "values": tuple(values)}


def cached_sampler(model, params, x0, cond, u, temperature, start_row):
    """Exact samples [N, H, W, C] from p(x | y), rows >= start_row drawn, about C forward passes.

    x0 [N, H, W, C] (rows < start_row given); cond [N, D] or None; u [N, H*W*C, U] the
    uniforms of every sub-pixel in raster order. Draws exactly what the naive sampler draws
    from the same uniforms (tests/test_sampling.py).
    """
    hgt, wid, c = model.image_shape
    n, feats = x0.shape[0], model.num_features
    obs = model.obs
    apply = lambda fn, *args: model.apply({"params": params}, *args, method=fn)  # noqa: E731
    num_res = model.num_blocks * model.num_res_per_block
    # position (r, c) at [r + 1, c + 1]: a zero row on top, a zero column on the left (and, for the
    # 2x3 convolutions, on the right)
    padded = lambda: jnp.zeros((n, hgt + 1, wid + model.conv_width - 1, feats), model.dtype)  # noqa: E731
    per_block = lambda d: tuple(jnp.zeros((n, hgt * wid, model.num_heads, d), model.dtype)  # noqa: E731
                                for _ in range(model.num_blocks))
    caches = {"border": apply(PixelSNAIL.border),                    # [1, H, W, F], fixed
              "res_in": tuple(padded() for _ in range(num_res)),
              "res_hidden": tuple(padded() for _ in range(num_res)),
              "keys": per_block(model.key_features), "values": per_block(model.value_features)}

    def given_pixel(p, caches):          # the pixel is known: one pass fills its maps, keys and values
        _, caches, att = apply(_position_forward, x0, caches, p, cond)
        return apply(_store_keys_values, x0, att, caches, p)

    def drawn_pixel(p, carry):
        x, caches = carry
        r, col = p // wid, p % wid

        def subpixel(k, carry):
            x, caches, _ = carry
            out, caches, att = apply(_position_forward, x, caches, p, cond)
            u_px = jax.lax.dynamic_slice_in_dim(u, p * c, c, axis=1)
            value = obs.sample(out, x[:, r, col, :], k, u_px, temperature)
            return x.at[:, r, col, k].set(value), caches, att

        att0 = tuple(jnp.zeros((n, feats), model.dtype) for _ in range(model.num_blocks))
        x, caches, att = jax.lax.fori_loop(0, c, subpixel, (x, caches, att0))
        return x, apply(_store_keys_values, x, att, caches, p)

    caches = jax.lax.fori_loop(0, start_row * wid, given_pixel, caches)
    x, _ = jax.lax.fori_loop(start_row * wid, hgt * wid, drawn_pixel, (x0, caches))
    return x


SPEC = ModelSpec(name="pixelsnail", module=PixelSNAIL, config=Config, size_fields=(
    "num_features", "num_blocks", "num_res_per_block", "num_heads", "key_features", "value_features"),
    fast_sampler=cached_sampler, fast_sampler_name="cached")
