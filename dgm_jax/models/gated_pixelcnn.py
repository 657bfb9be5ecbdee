"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN Decoders").

Layers l = 0..L (L = num_layers). Layer 0 reads the image x' = 2x - 1 with
kernel k0 = first_kernel_size in both stacks; layers 1..L read the previous
layer's features with kernel k = kernel_size. F = num_features.

    vertical    v~_l = Vconv_l(v_{l-1}) + Vv_l y                            [2F maps]
                v_l  = tanh(v~_l^f) * sigmoid(v~_l^g)                        [F]
    horizontal  h~_l = Hconv_l(h_{l-1}) + Link_l(down(v~_l)) + Vh_l y        [2F]
                g_l  = tanh(h~_l^f) * sigmoid(h~_l^g)                        [F]
                h_l  = h_{l-1} + Res_l(g_l)   for l >= 1;   h_0 = Res_0(g_0)  (no residual)
                s_l  = Skip_l(g_l)
    outputs = Out_2(relu(Out_1(relu(sum_l s_l))))                            [C x P]

(v_{-1} = h_{-1} = x'.) The conditioning V y (a position-independent bias,
y a one-hot class or any vector) enters BOTH halves f and g of the gate, in
BOTH stacks.

How causality is obtained (shifted, asymmetrically padded convolutions; a
tap at offset (dr, dc) reads row r + dr, column c + dc):

* Vconv: a (k//2 + 1) x k kernel over rows r - k//2 .. r and columns
  c - k//2 .. c + k//2 (input zero-padded k//2 rows on top, none below), no
  mask. So v~_l at row r reads rows <= r only, and never horizontal features.
  Its receptive field is a full rectangle: rows r - S_l .. r, columns
  c +- S_l, S_l = k0//2 + l k//2.
* down(.): shift one row down (a zero row on top). The horizontal stack of
  row r reads vertical features computed from rows <= r - 1 only. Without
  the shift, v~ of row r (which reads row r of x, right of the pixel too)
  would leak the current and future pixels.
* Hconv: a 1 x (k//2 + 1) kernel over columns c - k//2 .. c of the same
  row. Its last tap (the current position) is masked like the centre tap of
  masked_conv: mask A in layer 0 (with C = 1, pixel (r, c) never reads
  itself), mask B afterwards (reads features of the current position, which
  only summarise the past). Res/Skip/Out are 1x1 mask-B convolutions.
* No residual around layer 0: h_0 must not contain x' itself.

Hence the logits of (r, c) read row r at columns c - S_L .. c - 1 and every
pixel of rows r - 1 - S_L .. r - 1 within columns c - S_L .. c + S_L: a
rectangle with no blind spot. receptive_field_rows = 1 + S_L.

Channels (C > 1, raster order over (row, col, channel)): features are split
into C contiguous groups as in masked_conv (group g belongs to data channel
g); the 2F pre-activations are laid out group by group, each group holding
its F/C tanh inputs then its F/C sigmoid inputs, so that the gate multiplies
channels of the same group and masked_conv's group masks (A: g_in < g_out,
B: g_in <= g_out at the current position) apply unchanged. The vertical
stack needs no channel mask: after the shift it only carries rows above.
Requires num_features and head_features divisible by C.

Structure for row-by-row sampling: ``vertical_stack(x, y)`` returns the L+1
pre-activations v~_l (row r depends on x rows <= r only, rows r - S_l..r);
``horizontal_stack(x_rows, v_above, y)`` maps any number of rows of x plus
the matching rows of down(v~_l) to logits; its convolutions are 1 x k, so
every row is computed independently. A sampler can thus run the vertical
stack once per completed row (on the last 1 + S_L rows) and the cheap
one-row horizontal stack once per pixel. ``__call__`` composes the two.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax import kernels
from dgm_jax.models import sizes
from dgm_jax.models.base import AutoregressiveImageModel, check_at_least
from dgm_jax.models.masked_conv import MaskedConv2D, PointwiseDense, conv_mask
from dgm_jax.models.spec import ModelSpec


def down_shift(v: jax.Array) -> jax.Array:
    """[B, H, W, F] -> [B, H, W, F] with out[:, r] = v[:, r - 1] and out[:, 0] = 0."""
    return jnp.pad(v, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def gate_half_indices(num_features: int, num_data_channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the 2F pre-activation axis of the tanh (f) and sigmoid (g) halves.

    With C = 1 these are [0, F) and [F, 2F); in general group by group.
    """
    per = num_features // num_data_channels
    idx = np.arange(2 * num_features).reshape(num_data_channels, 2, per)
    return idx[:, 0].reshape(-1), idx[:, 1].reshape(-1)


def gate(pre: jax.Array, num_data_channels: int) -> jax.Array:
    """tanh(f) * sigmoid(g) of pre-activations [..., 2F] laid out as in gate_half_indices -> [..., F]."""
    *lead, two_f = pre.shape
    if num_data_channels == 1:      # the two contiguous halves (the same numbers, no 6-D view)
        return jnp.tanh(pre[..., : two_f // 2]) * jax.nn.sigmoid(pre[..., two_f // 2:])
    p = pre.reshape(*lead, num_data_channels, 2, two_f // (2 * num_data_channels))
    return (jnp.tanh(p[..., 0, :]) * jax.nn.sigmoid(p[..., 1, :])).reshape(*lead, two_f // 2)


def _conv(x, kernel, padding, dtype):
    return kernels.conv2d(x.astype(dtype), kernel.astype(dtype), padding)


class VerticalConv(nn.Module):
    """Unmasked (k//2 + 1) x k conv: output row r reads input rows r - k//2 .. r. [B,H,W,in] -> [B,H,W,features]."""
    features: int
    kernel_size: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, p = self.kernel_size, self.kernel_size // 2
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (p + 1, k, x.shape[-1], self.features),
                            jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return kernels.add_bias(_conv(x, kernel, ((p, 0), (p, p)), self.dtype), bias)


class HorizontalConv(nn.Module):
    """1 x (k//2 + 1) conv over columns c - k//2 .. c of the same row; the current-position tap is
    masked by channel group (mask A or B, see masked_conv). [B,h,W,in] -> [B,h,W,features]."""
    features: int
    kernel_size: int
    mask_type: str
    num_data_channels: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, p = self.kernel_size, self.kernel_size // 2
        in_features = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (1, p + 1, in_features, self.features),
                            jnp.float32)
        # The left half and centre of masked_conv's (1, k) mask: ones left, group rule at the centre.
        mask = conv_mask((1, k), in_features, self.features, self.mask_type, self.num_data_channels)[:, :p + 1]
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return kernels.add_bias(_conv(x, kernel * mask, ((0, 0), (p, 0)), self.dtype), bias)


@dataclasses.dataclass(frozen=True)
class Config:
    num_features: int = 64           # F: maps per stack (the gates read 2F); divisible by the C sub-pixels
    num_layers: int = 5              # gated layers after the first one
    kernel_size: int = 3             # odd k: vertical (k//2+1) x k, horizontal 1 x (k//2+1)
    first_kernel_size: int = 7       # odd k0 of layer 0 (its horizontal tap excludes the current pixel)
    head_features: int = 0           # width of the 1x1 ReLU layer before the outputs (0 = num_features)

    def __post_init__(self):
        check_sizes(self)


def check_sizes(m) -> None:
    """Refuses sizes that build a model that is not causal or not complete (m: a Config or a GatedPixelCNN).

    Layer 0's horizontal kernel 1 x (k0//2 + 1) is the only path from the current row to the
    outputs, and its last tap (the pixel itself) is masked: with k0 = 1 it has no other tap, so
    the model would never read the current row. From k0 = 3 on it reads the left neighbour (and
    the vertical stack the row above). Later layers may be 1x1: they keep the causal structure.
    """
    check_at_least("gated_pixelcnn", "num_features", m.num_features, 1, "the stacks need features")
    check_at_least("gated_pixelcnn", "num_layers", m.num_layers, 0, "a count of gated layers after the first")
    sizes.odd_at_least("gated_pixelcnn", "kernel_size", m.kernel_size, 1)
    sizes.odd_at_least("gated_pixelcnn", "first_kernel_size", m.first_kernel_size, 3,
                       "with k0 = 1 the first horizontal kernel is only the masked current-pixel tap, "
                       "so the model would never read the current row")
    check_at_least("gated_pixelcnn", "head_features", m.head_features, 0, "0 = num_features")


class GatedPixelCNN(AutoregressiveImageModel):
    num_features: int = 64
    num_layers: int = 5
    kernel_size: int = 3
    first_kernel_size: int = 7
    head_features: int = 0

    @property
    def receptive_field_rows(self) -> int:
        """How many rows above a pixel can influence its logits: 1 (the shift) + S_L."""
        return 1 + self.first_kernel_size // 2 + self.num_layers * (self.kernel_size // 2)

    def setup(self):
        c, feats = self.image_shape[-1], self.num_features
        head = self.head_features or feats
        check_sizes(self)
        sizes.divisible_by_channels("gated_pixelcnn", "num_features", feats, c)
        sizes.divisible_by_channels("gated_pixelcnn", "head_features", head, c)
        kernels = [self.first_kernel_size] + [self.kernel_size] * self.num_layers
        dt = self.dtype
        self.v_convs = [VerticalConv(2 * feats, k, dtype=dt) for k in kernels]
        self.h_convs = [HorizontalConv(2 * feats, k, "A" if l == 0 else "B", c, dtype=dt)
                        for l, k in enumerate(kernels)]
        self.links = [PointwiseDense(2 * feats, dtype=dt) for _ in kernels]          # down(v~_l) -> h~_l, 1x1
        self.residuals = [MaskedConv2D(feats, (1, 1), "B", c, dtype=dt) for _ in kernels]
        self.skips = [MaskedConv2D(feats, (1, 1), "B", c, dtype=dt) for _ in kernels]
        if self.conditional:
            self.v_conds = [nn.Dense(2 * feats, use_bias=False, dtype=dt) for _ in kernels]
            self.h_conds = [nn.Dense(2 * feats, use_bias=False, dtype=dt) for _ in kernels]
        self.head_hidden = MaskedConv2D(head, (1, 1), "B", c, dtype=dt)
        # The P outputs of each sub-pixel, group by group (group g = sub-pixel g).
        self.head_logits = MaskedConv2D(c * self.params_per_subpixel, (1, 1), "B", c, dtype=dt)

    def head(self, skip: jax.Array) -> jax.Array:
        """[..., F] summed skips -> outputs [..., C, P] float32."""
        out = self.head_logits(nn.relu(self.head_hidden(nn.relu(skip))))
        return out.reshape(out.shape[:-1] + (self.image_shape[-1], self.params_per_subpixel)).astype(jnp.float32)

    def vertical_stack(self, x: jax.Array, y: jax.Array | None = None) -> tuple[jax.Array, ...]:
        """x [B, h, W, C] in [0, 1] -> the L+1 vertical pre-activations v~_l [B, h, W, 2F] (NOT shifted).

        Row r of v~_l depends on rows r - S_l .. r of x only.
        """
        y = self.condition(y)
        c = self.image_shape[-1]
        v = 2.0 * x.astype(self.dtype) - 1.0
        pres = []
        for l in range(self.num_layers + 1):
            pre = self.v_convs[l](v)
            if y is not None:
                pre = kernels.add_bias(pre, self.v_conds[l](y))
            pres.append(pre)
            if l < self.num_layers:      # the last layer's gated v is read by nobody
                v = gate(pre, c)
        return tuple(pres)

    def horizontal_stack(self, x: jax.Array, v_above: Sequence[jax.Array], y: jax.Array | None = None) -> jax.Array:
        """Outputs [B, h, W, C, P] float32 of the rows of x [B, h, W, C].

        v_above[l]: [B, h, W, 2F], the vertical pre-activation of the row ABOVE each row of x,
        i.e. the matching rows of down_shift(vertical_stack(x_full)[l]) (zeros for row 0).
        Rows are independent (all convolutions here are 1 x k).
        """
        y = self.condition(y)
        c = self.image_shape[-1]
        h = 2.0 * x.astype(self.dtype) - 1.0
        skip = 0.0
        for l in range(self.num_layers + 1):
            pre = self.h_convs[l](h) + self.links[l](v_above[l].astype(self.dtype))
            if y is not None:
                pre = kernels.add_bias(pre, self.h_conds[l](y))
            g = gate(pre, c)
            skip = skip + self.skips[l](g)
            if l < self.num_layers:               # the last layer's h is read by nobody
                # No residual around layer 0: h_0 must not contain x itself.
                h = self.residuals[l](g) if l == 0 else h + self.residuals[l](g)
        return self.head(skip)

    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] in [0, 1]; y: [B, D] float or None. Returns outputs [B, H, W, C, P] float32."""
        del mask_index
        v = self.vertical_stack(x, y)
        return self.horizontal_stack(x, [down_shift(p) for p in v], y)


# ----------------------------------------------------------------------------- incremental sampling
#
# The vertical convolutions read rows r - p .. r of the layer below and the
# horizontal ones columns c - p .. c of the same row (p = k//2), so:
#   * at the start of row r, once row r - 1 of x is final, row r - 1 of every
#     vertical layer is computed from the cached rows above of the layer below:
#     the gated v_l feed the next layer (cached, [N, H, W, F]) and the
#     pre-activations v~_l[r - 1] give row r's link term Link_l(down(v~_l)),
#     a per-row bias of the horizontal stack;
#   * at pixel (r, c) every horizontal layer is computed at column c only, from
#     the cached columns c - p .. c of the layer below in the current row. These
#     features read x[r, <c] (and, through the mask-B centre taps, the
#     sub-pixels already drawn at (r, c)), so later columns reuse them once the
#     pixel is complete.
# Each step evaluates a conv on a p + 1 wide slice and keeps its last position,
# with the slice clipped at the image border exactly like the full network's
# zero padding, so every value equals the full network's. A whole image costs
# about one forward pass (times p + 1 for the convs) instead of H*W*C.

def _causal_at(conv, inp, pos, p: int, axis: int):
    """conv (reading positions pos - p .. pos along `axis`, zero-padded before 0) at `pos` only."""
    size = inp.shape[axis]
    win = min(p + 1, size)
    start = jnp.clip(pos - p, 0, size - win)
    out = conv(jax.lax.dynamic_slice_in_dim(inp, start, win, axis=axis))
    return jax.lax.dynamic_slice_in_dim(out, pos - start, 1, axis=axis)


def _half_kernel(m, layer: int) -> int:
    return (m.first_kernel_size if layer == 0 else m.kernel_size) // 2


def _vertical_row(m, x, vin, row, cond):
    """Row `row` of every vertical layer, from x and the cached gated rows <= row.

    x [N, H, W, C]; vin: L buffers [N, H, W, F] holding v_0 .. v_{L-1}.
    Returns (vin with row `row` written, the L+1 pre-activations v~_l[row] [N, 1, W, 2F]).
    """
    c = m.image_shape[-1]
    inp = 2.0 * x.astype(m.dtype) - 1.0
    vin, pres = list(vin), []
    for l in range(m.num_layers + 1):
        pre = _causal_at(m.v_convs[l], inp, row, _half_kernel(m, l), axis=1)
        if cond is not None:
            pre = pre + m.v_conds[l](cond)[:, None, None, :]
        pres.append(pre)
        if l < m.num_layers:
            vin[l] = jax.lax.dynamic_update_slice_in_dim(vin[l], gate(pre, c).astype(vin[l].dtype), row, axis=1)
            inp = vin[l]
    return tuple(vin), tuple(pres)


def _links(m, pres_above):
    """Link_l(v~_l of the row above) [N, 1, W, 2F] for every layer."""
    return tuple(m.links[l](p.astype(m.dtype)) for l, p in enumerate(pres_above))


def _pixel_outputs(m, x_row, hin, links, col, cond):
    """Outputs [N, C, P] at column `col` of the current row x_row [N, 1, W, C].

    hin: L buffers [N, 1, W, F] holding h_0 .. h_{L-1} of this row (final left of col);
    returned with column `col` written.
    """
    c = m.image_shape[-1]
    h = 2.0 * x_row.astype(m.dtype) - 1.0
    hin, skip = list(hin), 0.0
    for l in range(m.num_layers + 1):
        pre = _causal_at(m.h_convs[l], h, col, _half_kernel(m, l), axis=2) + \
            jax.lax.dynamic_slice_in_dim(links[l], col, 1, axis=2)
        if cond is not None:
            pre = pre + m.h_conds[l](cond)[:, None, None, :]
        g = gate(pre, c)
        skip = skip + m.skips[l](g)
        if l < m.num_layers:
            # No residual around layer 0 (h_0 must not contain x itself).
            new = m.residuals[l](g) if l == 0 else jax.lax.dynamic_slice_in_dim(h, col, 1, axis=2) + m.residuals[l](g)
            hin[l] = jax.lax.dynamic_update_slice_in_dim(hin[l], new.astype(hin[l].dtype), col, axis=2)
            h = hin[l]
    return m.head(skip)[:, 0, 0], tuple(hin)


def incremental_sampler(model, params, x0, cond, u, temperature, start_row):
    """Exact samples [N, H, W, C] from p(x | y), rows >= start_row drawn, at about one forward pass.

    x0 [N, H, W, C] (rows < start_row given); cond [N, D] or None; u [N, H*W*C, U]
    the uniforms of every sub-pixel in raster order. Draws exactly what the naive
    sampler draws from the same uniforms (tests/test_sampling.py).
    """
    h, w, c = model.image_shape
    n, feats, num_layers = x0.shape[0], model.num_features, model.num_layers
    obs = model.obs
    apply = lambda fn, *args: model.apply({"params": params}, *args, method=fn)  # noqa: E731
    if start_row > 0:      # given rows: their vertical features in one pass
        vin = tuple(gate(p, c) for p in apply(GatedPixelCNN.vertical_stack, x0, cond)[:num_layers])
    else:
        vin = tuple(jnp.zeros((n, h, w, feats), model.dtype) for _ in range(num_layers))

    def row_body(r, carry):
        x, vin = carry
        vin, pres = apply(_vertical_row, x, vin, jnp.maximum(r - 1, 0), cond)
        # Row 0 reads zeros from above (down_shift); the row-0 values just written
        # into vin are recomputed at r = 1 from the sampled row.
        links = apply(_links, tuple(jnp.where(r > 0, p, jnp.zeros_like(p)) for p in pres))

        def subpixel_body(j, carry):
            x, hin = carry
            col, ch = j // c, j % c
            out, hin = apply(_pixel_outputs, jax.lax.dynamic_slice_in_dim(x, r, 1, axis=1), hin, links, col, cond)
            u_px = jax.lax.dynamic_slice_in_dim(u, (r * w + col) * c, c, axis=1)
            value = obs.sample(out, x[:, r, col, :], ch, u_px, temperature)
            return x.at[:, r, col, ch].set(value), hin

        hin = tuple(jnp.zeros((n, 1, w, feats), model.dtype) for _ in range(num_layers))
        x, _ = jax.lax.fori_loop(0, w * c, subpixel_body, (x, hin))
        return x, vin

    x, _ = jax.lax.fori_loop(start_row, h, row_body, (x0, vin))
    return x


SPEC = ModelSpec(name="gated_pixelcnn", module=GatedPixelCNN, config=Config, size_fields=(
    "num_features", "num_layers", "kernel_size", "first_kernel_size", "head_features"),
    fast_sampler=incremental_sampler, fast_sampler_name="incremental")
