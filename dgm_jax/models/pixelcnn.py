"""The original PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural Networks").

    h_0     = MaskA_{k0 x k0}(x)                       (the only layer that reads x)
    h_{l+1} = h_l + MaskB_{k x k}(relu(h_l)) [+ V_l y] (residual blocks, l < L)
    logits  = MaskB_1x1(relu(MaskB_1x1(relu(h_L))))    (per-pixel output head)

With masked k x k kernels stacked, the receptive field of a pixel grows up
and to the left but never reaches the triangle above-right of it: the known
"blind spot" that the gated PixelCNN removes (see tests/test_models.py).

Conditioning y (a one-hot class or any vector, [B, D]) adds a learned,
position-independent bias V_l y to every layer, so p(x | y) stays
autoregressive in x for each y.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dgm_jax.models.masked_conv import MaskedConv2D


class PixelCNN(nn.Module):
    image_shape: tuple[int, int, int]
    num_features: int = 64
    num_layers: int = 5
    kernel_size: int = 3
    first_kernel_size: int = 7
    head_features: int = 0
    num_classes: int = 0          # > 0: y may be given as int labels
    conditional: bool = False
    dtype: Any = jnp.float32

    @property
    def receptive_field_rows(self) -> int:
        """How many rows above a pixel can influence its logits."""
        return self.first_kernel_size // 2 + self.num_layers * (self.kernel_size // 2)

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] binary; y: [B, D] float or None. Returns logits [B, H, W, C] float32."""
        del mask_index  # only MADE has several masks
        if not self.conditional:
            y = None      # an unconditional model has no V_l to read y with
        elif y is None:
            raise ValueError("a conditional PixelCNN needs y [B, D]")
        c = self.image_shape[-1]
        feats = self.num_features
        if feats % c:
            raise ValueError(f"num_features={feats} must be divisible by the {c} data channels")
        conv = lambda f, k, t, name: MaskedConv2D(f, (k, k), t, num_data_channels=c,
                                                  dtype=self.dtype, name=name)
        cond = lambda name: nn.Dense(feats, use_bias=False, dtype=self.dtype, name=name)(y)[:, None, None, :]

        h = conv(feats, self.first_kernel_size, "A", "input_conv")(2.0 * x - 1.0)
        if y is not None:
            h = h + cond("input_cond")
        for i in range(self.num_layers):
            update = conv(feats, self.kernel_size, "B", f"res_conv_{i}")(nn.relu(h))
            if y is not None:
                update = update + cond(f"res_cond_{i}")
            h = h + update
        head = self.head_features or feats
        if head % c:
            raise ValueError(f"head_features={head} must be divisible by the {c} data channels")
        h = conv(head, 1, "B", "head_hidden")(nn.relu(h))
        logits = conv(c, 1, "B", "head_logits")(nn.relu(h))
        return logits.astype(jnp.float32)
