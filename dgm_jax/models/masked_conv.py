"""Masked 2-D convolutions for raster-order autoregressive image models.

The autoregressive order is raster order over (row, column, channel): pixel
(r, c, k) may depend on every pixel of an earlier row, on earlier columns of
its own row, and, at its own position, only on channels before k.

A kernel tap at offset (dr, dc) from the centre reads the input at
(r + dr, c + dc). Taps below the centre row (dr > 0), and to the right on the
centre row (dr = 0, dc > 0), see the future and are zeroed. The centre tap is
what distinguishes the two mask types of van den Oord et al. (2016):

* mask 'A' (first layer, reading the data): output channel group g may read
  input channel groups strictly before g; with one data channel the centre
  tap is zero, so a pixel never sees itself.
* mask 'B' (later layers, reading features): group g may read groups <= g,
  i.e. the feature at the same position, which only summarises the past.

With C data channels, features are split into C contiguous groups, group g
belonging to data channel g. For a 1x1 kernel the only tap is the centre, so
a 1x1 mask-B convolution is an ordinary 1x1 convolution (for C = 1); it must
never be masked as if it had rows above it.

The mask multiplies the kernel inside the forward pass; the stored parameter
is never mutated, so gradients of masked taps are exactly zero.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax import kernels


class PointwiseDense(nn.Module):
    """A Dense layer over the last axis of [..., in]: x @ kernel + bias, computed by
    dgm_jax.kernels (dense, add_bias), i.e. in the backend's fast form.

    Parameters as flax.linen.Dense's ('kernel' [in, out], lecun_normal; 'bias' [out], zeros), so
    values and checkpoints are interchangeable with nn.Dense.
    """
    features: int
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features), jnp.float32)
        y = kernels.dense(x.astype(self.dtype), kernel.astype(self.dtype))
        if self.use_bias:
            y = kernels.add_bias(y, self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32))
        return y


def channel_groups(num_features: int, num_data_channels: int) -> np.ndarray:
    """Group index in [0, C) of each of `num_features` channels (contiguous blocks)."""
    return (np.arange(num_features) * num_data_channels) // num_features


def conv_mask(kernel_size: tuple[int, int], in_features: int, out_features: int,
              mask_type: str, num_data_channels: int = 1) -> np.ndarray:
    """The {0,1} mask, shaped like the kernel [kh, kw, in, out]."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"masked convolutions need odd kernel sizes, got {kernel_size}")
    mask = np.zeros((kh, kw, in_features, out_features), np.float32)
    ch, cw = kh // 2, kw // 2
    mask[:ch, :, :, :] = 1.0          # every row above the centre
    mask[ch, :cw, :, :] = 1.0         # the centre row, left of the centre
    g_in = channel_groups(in_features, num_data_channels)[:, None]
    g_out = channel_groups(out_features, num_data_channels)[None, :]
    centre = (g_in < g_out) if mask_type == "A" else (g_in <= g_out)
    mask[ch, cw, :, :] = centre.astype(np.float32)
    return mask


class MaskedConv2D(nn.Module):
    """A SAME-padded convolution whose kernel is masked for raster order.

    Input [B, H, W, in], output [B, H, W, features].
    """
    features: int
    kernel_size: tuple[int, int]
    mask_type: str
    num_data_channels: int = 1
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        in_features = x.shape[-1]
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (kh, kw, in_features, self.features), jnp.float32)
        mask = conv_mask(self.kernel_size, in_features, self.features, self.mask_type,
                         self.num_data_channels)
        kernel = (kernel * mask).astype(self.dtype)
        if (kh, kw) == (1, 1):        # a per-position product
            y = kernels.dense(x.astype(self.dtype), kernel[0, 0])
        else:
            y = kernels.conv2d(x.astype(self.dtype), kernel, ((kh // 2, kh // 2), (kw // 2, kw // 2)))
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = kernels.add_bias(y, bias)
        return y
