"""PixelCNN++ (Salimans, Karpathy, Chen and Kingma, 2017): two causal streams of gated ResNet
blocks over three resolutions, with the discretized logistic mixture by default.

Streams. F = num_features maps each, over the image and its 1/2 and 1/4 scales:

* u (the "down" stream) at (r, c) reads rows above r only: down-shifted
  convolutions, kernel 2x3 over rows r-1..r and columns c-1..c+1, zero padding
  one row on top and one column each side (no mask; the padding alone makes
  them causal).
* ul (the "down-right" stream) at (r, c) reads the pixels before (r, c) in
  raster order: down-right-shifted convolutions, kernel 2x2 over rows r-1..r
  and columns c-1..c, padding on top and on the left only; each ul block
  also reads u at the same position.

Both start from x' = [2x - 1, 1] (a channel of ones marks the image against
the zero padding):

    u_0  = down(conv_2x3(x'))                         rows r-2 .. r-1
    ul_0 = down(conv_1x3(x')) + right(conv_2x1(x'))   row r-1, cols c-1..c+1; rows r-1..r, col c-1

(down/right: shift one row down / one column right, zeros coming in), so
neither reads the pixel itself.

Gated ResNet block, with concat_elu(v) = elu([v, -v]) (2F maps from F):

    c1  = conv(concat_elu(v)) [+ 1x1(concat_elu(a))]      a: a skip input at the same scale
    c2  = conv(dropout(concat_elu(c1))) [+ V y]           2F maps; V y on both halves
    out = v + c2[:F] * sigmoid(c2[F:])

conv is the stream's own shifted convolution (u: 2x3, ul: 2x2); the ul
blocks take a = u (up pass) or a = [u, ul skip] (down pass); the u blocks of
the down pass take a = the u skip. The conditioning y (a one-hot class or
any vector, [B, D]) enters every block as a position-independent bias.

Network. Up pass: (u_0, ul_0), then num_resnet blocks per scale, with a
factor-2 downsampling of both streams between scales; every output is kept.
Down pass: from the 1/4 scale back, num_resnet blocks at 1/4 and
num_resnet + 1 at 1/2 and 1, each consuming one kept output of the up pass
(the skip connections), with a factor-2 upsampling between scales. Outputs
[B, H, W, C, P] = 1x1(concat_elu(ul)) (the paper: elu; concat_elu keeps every
output unit live for either sign of ul).

Resolution changes, causal without transposed or strided convolutions (both
run slow gradients on XLA:CPU: a strided convolution's input gradient is an
input-dilated one). On a coarse grid of factor f, block (i, j) stands for the
pixels f i .. f i + f - 1 of rows and columns; the invariant is

    u(i, j) reads x rows < f i;     ul(i, j) reads x before (f i, f j) in raster order.

* Down (f -> 2f): shift u one row down (ul one row down and one column right),
  then cut into 2x2 blocks (space-to-depth, zeros padded below / right to an
  even size, so any H, W works: the grid is ceil(H/2) x ceil(W/2)). Block
  (i, j) of shifted u holds u rows 2i-1, 2i, which read x rows < 2 f i; block
  (i, j) of shifted ul holds ul at rows 2i-1..2i, columns 2j-1..2j, all
  before (2i, 2j). Then u: a 1x3 convolution over the blocks (rows 2i-1..2i,
  columns 2j-2..2j+3); ul: a 1x1 one. These see what the paper's stride-2
  2x3 and 2x2 shifted convolutions see (the ul one exactly, the u one plus
  two columns, which u may read).
* Up (2f -> f): u: a 1x3 convolution to 4F maps on the coarse grid, ul: a
  1x1 one, then depth-to-space (each coarse position gives its 2x2 fine
  block), cropped to the fine size. Fine (2i + a, 2j + b) reads coarse (i, j)
  (u: and its row neighbours), which reads x before (2f i, 2f j) <= (f(2i+a),
  f(2j+b)): the invariant holds. These are the paper's shifted transposed
  convolutions after their cropping (the ul one exactly; the u one reads one
  more coarse column on the left).
The same shifted convolutions within each scale keep the invariant, so at
f = 1 ul(r, c) reads the pixels before (r, c) only: every output of pixel
(r, c) depends on earlier pixels and on none of its own sub-pixels.

Sub-pixels (C > 1). The logistic mixture couples them itself (G's mean reads
R, B's reads R and G, linearly, as in PixelCNN++), so its outputs need no
sub-pixel of the pixel. Any other likelihood (categorical, Bernoulli) would
then make the sub-pixels of a pixel independent given the past, so the head
gains the channel masks of masked_conv: hidden = 1x1(concat_elu(ul)) +
MaskA_1x1(2x - 1) (F maps in C groups; group g reads sub-pixels < g of the
pixel), outputs = MaskB_1x1(concat_elu of each group of hidden) (group g reads
hidden groups <= g). This needs num_features divisible by C.

Options. dropout_rate: dropout on c1 in training only; a model is in
training when its apply is given a 'dropout' rng (dgm_jax/steps.py does so
in the train step; evaluation, sampling and init never do, so they are
deterministic). weight_norm: every convolution and 1x1 layer of the streams
and of the mixture head is w = g v / ||v|| (Salimans and Kingma, 2016), with
g, b initialized from the data when data_init_examples > 0: on the first
data_init_examples training images (dgm_jax/assembly.py), each layer in turn
gets g = s / std(t), b = -mean(t) g for t = conv(x, v / ||v||) (s = 1, 0.1 in
the second convolution of a block), so its outputs start with mean 0 and
std s. With data_init_examples = 0, g = ||v|| (the same function as without
weight norm at initialization). The masked sub-pixel layers and the
conditioning are plain.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dgm_jax import kernels
from dgm_jax.models.base import AutoregressiveImageModel, check_at_least, check_dropout_rate
from dgm_jax.models.gated_pixelcnn import down_shift
from dgm_jax.models.masked_conv import MaskedConv2D
from dgm_jax.models.spec import ModelSpec

# Observation models that couple the sub-pixels of a pixel themselves (the network reads none of them).
COUPLED_LIKELIHOODS = ("discretized_logistic_mixture",)
NUM_DOWNSAMPLINGS = 2             # scales 1, 1/2, 1/4 as in the paper


def right_shift(x: jax.Array) -> jax.Array:
    """[B, H, W, F] -> [B, H, W, F] with out[:, :, c] = x[:, :, c - 1] and out[:, :, 0] = 0."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def concat_elu(x: jax.Array) -> jax.Array:
    """elu([x, -x]) over the last axis: [..., F] -> [..., 2F]."""
    return jax.nn.elu(jnp.concatenate([x, -x], axis=-1))


def group_concat_elu(x: jax.Array, groups: int) -> jax.Array:
    """concat_elu within each of `groups` contiguous channel groups: [..., F] -> [..., 2F], group g's
    F/groups channels becoming its 2F/groups (so masked_conv's contiguous groups still match)."""
    lead, f = x.shape[:-1], x.shape[-1]
    return concat_elu(x.reshape(lead + (groups, f // groups))).reshape(lead + (2 * f,))


def space_to_depth(x: jax.Array) -> jax.Array:
    """[B, 2h, 2w, F] -> [B, h, w, 4F]: block (i, j) holds (2i + a, 2j + b) at channels (2a + b) F + f."""
    b, hh, ww, f = x.shape
    x = x.reshape(b, hh // 2, 2, ww // 2, 2, f).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hh // 2, ww // 2, 4 * f)


def depth_to_space(x: jax.Array) -> jax.Array:
    """The inverse of space_to_depth: [B, h, w, 4F] -> [B, 2h, 2w, F]."""
    b, h, w, f4 = x.shape
    x = x.reshape(b, h, w, 2, 2, f4 // 4).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, 2 * h, 2 * w, f4 // 4)


def coarse_blocks(x: jax.Array, shift_right: bool) -> jax.Array:
    """[B, H, W, F] -> [B, ceil(H/2), ceil(W/2), 4F]: x shifted one row down (and one column right
    if shift_right), zero-padded below / right to an even size, cut into 2x2 blocks."""
    _, h, w, _ = x.shape
    hh, ww = 2 * (-(-h // 2)), 2 * (-(-w // 2))
    left = 1 if shift_right else 0
    x = jnp.pad(x, ((0, 0), (1, hh - h), (left, ww - w), (0, 0)))[:, :hh, :ww]
    return space_to_depth(x)


def _conv(x, kernel, padding, dtype):
    """Stride-1 convolution, kernel [kh, kw, in, out], explicit ((top, bottom), (left, right)) padding."""
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    if kernel.shape[:2] == (1, 1):          # a per-position product
        return kernels.dense(x, kernel[0, 0])
    return kernels.conv2d(x, kernel, padding)


class ShiftedConv(nn.Module):
    """A stride-1 convolution [B, H, W, in] -> [B, H, W, features] whose output at (r, c) reads rows
    r - kh + 1 .. r and, for shift 'down', columns c - (kw-1)//2 .. c + (kw-1)//2 (kw odd), for
    'down_right' columns c - kw + 1 .. c: zero padding on top (and on the left), none below.

    Parameters: 'kernel' [kh, kw, in, features], 'bias'; with weight_norm 'v' (same shape), 'g'
    [features] and 'bias', kernel = g v / ||v|| (norm over kh, kw, in), g and bias set from the
    init batch when data_init (module docstring). init_scale: scales the initial kernel (with data
    init: the std the outputs start with on the init batch).
    """
    features: int
    kernel_size: tuple[int, int] = (1, 1)
    shift: str = "down"
    init_scale: float = 1.0
    weight_norm: bool = False
    data_init: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        left = (kw - 1) // 2 if self.shift == "down" else kw - 1
        padding = ((kh - 1, 0), (left, kw - 1 - left))
        shape = (kh, kw, x.shape[-1], self.features)
        init = nn.initializers.variance_scaling(self.init_scale ** 2, "fan_in", "truncated_normal")
        if not self.weight_norm:
            kernel = self.param("kernel", init, shape, jnp.float32)
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            return kernels.add_bias(_conv(x, kernel, padding, self.dtype), bias)
        v = self.param("v", init, shape, jnp.float32)
        v_norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1, 2)))
        direction = v / v_norm
        if self.data_init and self.is_initializing():
            # Outputs of the unit-norm kernel on the init batch: choose g, b so they start at
            # mean 0 and std init_scale (a variance floor keeps dead or constant maps finite).
            t = _conv(x, direction, padding, jnp.float32).reshape(-1, self.features)
            mean, var = jnp.mean(t, axis=0), jnp.var(t, axis=0)
            g_init = self.init_scale / jnp.sqrt(var + 1e-6)
            b_init = -mean * g_init
        else:
            g_init, b_init = v_norm, jnp.zeros((self.features,), jnp.float32)
        g = self.param("g", lambda _: g_init)
        bias = self.param("bias", lambda _: b_init)
        return kernels.add_bias(_conv(x, direction * g, padding, self.dtype), bias)


class GatedResnet(nn.Module):
    """v + a * sigmoid(b), [a, b] = conv(dropout(concat_elu(conv(concat_elu(v)) + 1x1(concat_elu(skip))))) + V y.

    v: [B, h, w, F]; skip: [B, h, w, F'] or None; cond: [B, D] or None. Returns [B, h, w, F].
    """
    kernel_size: tuple[int, int]
    shift: str
    dropout_rate: float = 0.0
    weight_norm: bool = False
    data_init: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, v, skip=None, cond=None):
        f = v.shape[-1]
        conv = lambda feats, k, scale, name: ShiftedConv(  # noqa: E731
            feats, k, self.shift, scale, self.weight_norm, self.data_init, self.dtype, name=name)
        c1 = conv(f, self.kernel_size, 1.0, "conv_in")(concat_elu(v))
        if skip is not None:
            c1 = c1 + conv(f, (1, 1), 1.0, "skip")(concat_elu(skip))
        c1 = concat_elu(c1)
        if self.dropout_rate > 0:        # training only: when the apply was given a 'dropout' rng
            c1 = nn.Dropout(self.dropout_rate, deterministic=not self.has_rng("dropout"))(c1)
        # The residual branch starts small (std 0.1), as in the paper.
        c2 = conv(2 * f, self.kernel_size, 0.1, "conv_out")(c1)
        if cond is not None:            # V y on both halves of the gate
            c2 = kernels.add_bias(c2, nn.Dense(2 * f, use_bias=False, dtype=self.dtype, name="cond")(cond))
        return v + c2[..., :f] * jax.nn.sigmoid(c2[..., f:])


@dataclasses.dataclass(frozen=True)
class Config:
    num_features: int = 64            # F: maps of each stream at every scale (the paper: 160)
    num_resnet: int = 2               # gated ResNet blocks per scale in the up pass (the paper: 5)
    dropout_rate: float = 0.0         # dropout in every block, training only (the paper: 0.5)
    weight_norm: bool = False         # w = g v / ||v|| in the streams and the mixture head
    data_init_examples: int = 16      # weight_norm: training images g, b are set from (0 = g = ||v||)

    def __post_init__(self):
        check_at_least("pixelcnn_pp", "num_features", self.num_features, 1, "the streams need maps")
        check_at_least("pixelcnn_pp", "num_resnet", self.num_resnet, 0, "a count of blocks per scale")
        check_dropout_rate("pixelcnn_pp", self.dropout_rate)
        check_at_least("pixelcnn_pp", "data_init_examples", self.data_init_examples, 0, "0 = no data-dependent init")


class PixelCNNPP(AutoregressiveImageModel):
    num_features: int = 64
    num_resnet: int = 2
    dropout_rate: float = 0.0
    weight_norm: bool = False
    data_init_examples: int = 16

    @property
    def init_examples(self) -> int:
        """Training images Run.init_params initializes on (data-dependent weight norm), 0 = zeros."""
        return self.data_init_examples if self.weight_norm else 0

    @property
    def reads_own_subpixels(self) -> bool:
        """Whether the head reads the earlier sub-pixels of the pixel (C > 1, uncoupled likelihood)."""
        return self.image_shape[-1] > 1 and self.obs.name not in COUPLED_LIKELIHOODS

    def _conv(self, features, kernel_size, shift, name, init_scale=1.0):
        data_init = self.weight_norm and self.data_init_examples > 0
        return ShiftedConv(features, kernel_size, shift, init_scale, self.weight_norm, data_init, self.dtype,
                           name=name)

    def _block(self, shift, name):
        data_init = self.weight_norm and self.data_init_examples > 0
        kernel = (2, 3) if shift == "down" else (2, 2)
        return GatedResnet(kernel, shift, self.dropout_rate, self.weight_norm, data_init, self.dtype, name=name)

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] in [0, 1]; y: [B, D] float or None. Returns outputs [B, H, W, C, P] float32."""
        del mask_index
        Config(num_features=self.num_features, num_resnet=self.num_resnet, dropout_rate=self.dropout_rate,
               data_init_examples=self.data_init_examples)        # the field checks, for a module built directly
        cond = self.condition(y)
        f, c, n = self.num_features, self.image_shape[-1], self.num_resnet
        xs = 2.0 * x.astype(self.dtype) - 1.0
        x_in = jnp.concatenate([xs, jnp.ones(xs.shape[:-1] + (1,), self.dtype)], axis=-1)

        # Up pass: every output kept for the down pass.
        us = [down_shift(self._conv(f, (2, 3), "down", "u_in")(x_in))]
        uls = [down_shift(self._conv(f, (1, 3), "down", "ul_in_above")(x_in))
               + right_shift(self._conv(f, (2, 1), "down_right", "ul_in_left")(x_in))]
        for scale in range(NUM_DOWNSAMPLINGS + 1):
            if scale > 0:
                us.append(self._conv(f, (1, 3), "down", f"down_{scale}_u")(coarse_blocks(us[-1], False)))
                uls.append(self._conv(f, (1, 1), "down_right", f"down_{scale}_ul")(coarse_blocks(uls[-1], True)))
            for i in range(n):
                us.append(self._block("down", f"up_{scale}_{i}_u")(us[-1], None, cond))
                uls.append(self._block("down_right", f"up_{scale}_{i}_ul")(uls[-1], us[-1], cond))

        # Down pass: one skip from the up pass per block, coarse to fine.
        u, ul = us.pop(), uls.pop()
        for scale in range(NUM_DOWNSAMPLINGS, -1, -1):
            for i in range(n if scale == NUM_DOWNSAMPLINGS else n + 1):
                u = self._block("down", f"dn_{scale}_{i}_u")(u, us.pop(), cond)
                ul = self._block("down_right", f"dn_{scale}_{i}_ul")(ul, jnp.concatenate([u, uls.pop()], -1), cond)
            if scale > 0:
                h, w = us[-1].shape[1:3]
                u = depth_to_space(self._conv(4 * f, (1, 3), "down", f"upsample_{scale}_u")(u))[:, :h, :w]
                ul = depth_to_space(self._conv(4 * f, (1, 1), "down_right", f"upsample_{scale}_ul")(ul))[:, :h, :w]
        assert not us and not uls

        p = self.params_per_subpixel
        if self.reads_own_subpixels:
            if f % c:
                raise ValueError(f"config.model.num_features={f} must be a multiple of the {c} sub-pixels per "
                                 f"pixel with the {self.obs.name} likelihood (the head splits its features into "
                                 f"one group per sub-pixel); the nearest valid: {f // c * c or c}, {-(-f // c) * c}")
            hidden = self._conv(f, (1, 1), "down", "head_hidden")(concat_elu(ul)) + MaskedConv2D(
                f, (1, 1), "A", c, use_bias=False, dtype=self.dtype, name="head_subpixels")(xs)
            out = MaskedConv2D(c * p, (1, 1), "B", c, dtype=self.dtype, name="head_out")(
                group_concat_elu(hidden, c))
        else:
            out = self._conv(c * p, (1, 1), "down", "head_out")(concat_elu(ul))
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


SPEC = ModelSpec(name="pixelcnn_pp", module=PixelCNNPP, config=Config,
                 size_fields=("num_features", "num_resnet"), default_likelihood="discretized_logistic_mixture")
