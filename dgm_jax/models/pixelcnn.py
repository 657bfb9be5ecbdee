"""The original PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural Networks").

    h_0     = MaskA_{k0 x k0}(x)                       (the only layer that reads x)
    h_{l+1} = h_l + MaskB_{k x k}(relu(h_l)) [+ V_l y] (residual blocks, l < L)
    outputs = MaskB_1x1(relu(MaskB_1x1(relu(h_L))))    (per-pixel output head, C x P maps)

With masked k x k kernels stacked, the receptive field of a pixel grows up
and to the left but never reaches the triangle above-right of it: the known
"blind spot" that the gated PixelCNN removes (see tests/test_models.py).

Colour (C > 1 sub-pixels, e.g. RGB): the features are split into C
channel groups (dgm_jax/models/masked_conv.py), so the P outputs of R read
no sub-pixel of the current pixel, G's read R, B's read R and G: the
sub-pixel autoregression R, then G | R, then B | R, G within the pixel.

Conditioning y (a one-hot class or any vector, [B, D]) adds a learned,
position-independent bias V_l y to every layer, so p(x | y) stays
autoregressive in x for each y.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from dgm_jax.models import sizes
from dgm_jax.models.base import AutoregressiveImageModel, check_at_least
from dgm_jax.models.masked_conv import MaskedConv2D
from dgm_jax.models.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class Config:
    num_features: int = 64           # maps in every hidden layer (divisible by the C sub-pixels)
    num_layers: int = 5              # residual mask-B layers after the input layer
    kernel_size: int = 3             # kernel of the residual layers
    first_kernel_size: int = 7       # kernel of the mask-A layer that reads the image
    head_features: int = 0           # width of the 1x1 ReLU layer before the outputs (0 = num_features)

    def __post_init__(self):
        check_sizes(self)


def check_sizes(m) -> None:
    """Refuses sizes that build a model that is not causal or not complete (m: a Config or a PixelCNN).

    The mask-A input layer is the only one that reads x: a 1x1 mask-A kernel has only its
    centre tap, which mask A zeroes for one sub-pixel, so the model would read no earlier pixel
    (independent pixels); from 3x3 on it reads the left neighbour and the row above. The later
    mask-B layers may be 1x1 (they only mix the features of a position).
    """
    check_at_least("pixelcnn", "num_features", m.num_features, 1, "the layers need features")
    check_at_least("pixelcnn", "num_layers", m.num_layers, 0, "a count of residual layers")
    sizes.odd_at_least("pixelcnn", "kernel_size", m.kernel_size, 1)
    sizes.odd_at_least("pixelcnn", "first_kernel_size", m.first_kernel_size, 3,
                       "a 1x1 mask-A input layer has no tap left of or above the pixel, so the model "
                       "would read no earlier pixel")
    check_at_least("pixelcnn", "head_features", m.head_features, 0, "0 = num_features")


class PixelCNN(AutoregressiveImageModel):
    num_features: int = 64
    num_layers: int = 5
    kernel_size: int = 3
    first_kernel_size: int = 7
    head_features: int = 0

    @property
    def receptive_field_rows(self) -> int:
        """How many rows above a pixel can influence its logits."""
        return self.first_kernel_size // 2 + self.num_layers * (self.kernel_size // 2)

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x: [B, H, W, C] in [0, 1]; y: [B, D] float or None. Returns outputs [B, H, W, C, P] float32."""
        del mask_index  # only MADE has several masks
        y = self.condition(y)
        c = self.image_shape[-1]
        feats = self.num_features
        check_sizes(self)
        sizes.divisible_by_channels("pixelcnn", "num_features", feats, c)
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
        sizes.divisible_by_channels("pixelcnn", "head_features", head, c)
        h = conv(head, 1, "B", "head_hidden")(nn.relu(h))
        out = conv(c * self.params_per_subpixel, 1, "B", "head_logits")(nn.relu(h))   # groups of P per sub-pixel
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


SPEC = ModelSpec(name="pixelcnn", module=PixelCNN, config=Config, size_fields=(
    "num_features", "num_layers", "kernel_size", "first_kernel_size", "head_features"))
