"""Model registry: ``config.model.name`` -> a flax.linen module.

Every model maps binary images x [B, H, W, C] (and optionally a condition
y [B, D]) to logits [B, H, W, C] of p(x_i = 1 | x_<i, y) in raster order
over (row, column, channel):

    logits = model.apply({"params": params}, x, y, mask_index=0)

Models with several connectivity masks (MADE) take ``mask_index``; the
others ignore it. Attributes read by the rest of the library:
``num_train_masks`` / ``num_eval_masks`` (default 1), ``num_classes``,
``conditional`` and ``image_shape``.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from dgm_jax.config_schema import ModelConfig
from dgm_jax.models.bernoulli import Bernoulli
from dgm_jax.models.fvsbn import FVSBN
from dgm_jax.models.gated_pixelcnn import GatedPixelCNN
from dgm_jax.models.made import MADE
from dgm_jax.models.nade import NADE
from dgm_jax.models.pixelcnn import PixelCNN

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _pixelcnn(cfg: ModelConfig, image_shape, num_classes: int) -> nn.Module:
    return PixelCNN(image_shape=tuple(image_shape), num_features=cfg.num_features,
                    num_layers=cfg.num_layers, kernel_size=cfg.kernel_size,
                    first_kernel_size=cfg.first_kernel_size, head_features=cfg.head_features,
                    num_classes=num_classes, conditional=cfg.conditional,
                    dtype=_DTYPES[cfg.dtype])


def _gated_pixelcnn(cfg: ModelConfig, image_shape, num_classes: int) -> nn.Module:
    return GatedPixelCNN(image_shape=tuple(image_shape), num_features=cfg.num_features,
                         num_layers=cfg.num_layers, kernel_size=cfg.kernel_size,
                         first_kernel_size=cfg.first_kernel_size, head_features=cfg.head_features,
                         num_classes=num_classes, conditional=cfg.conditional,
                         dtype=_DTYPES[cfg.dtype])


def _bernoulli(cfg: ModelConfig, image_shape, num_classes: int) -> nn.Module:
    return Bernoulli(image_shape=tuple(image_shape), num_classes=num_classes,
                     conditional=cfg.conditional, dtype=_DTYPES[cfg.dtype])


def _fvsbn(cfg: ModelConfig, image_shape, num_classes: int) -> nn.Module:
    return FVSBN(image_shape=tuple(image_shape), num_classes=num_classes,
                 conditional=cfg.conditional, dtype=_DTYPES[cfg.dtype])


def _nade(cfg: ModelConfig, image_shape, num_classes: int) -> nn.Module:
    return NADE(image_shape=tuple(image_shape), num_hidden=cfg.num_hidden, num_classes=num_classes,
                conditional=cfg.conditional, dtype=_DTYPES[cfg.dtype])


def _made(cfg: ModelConfig, image_shape, num_classes: int) -> nn.Module:
    return MADE(image_shape=tuple(image_shape), num_hidden=cfg.num_hidden,
                num_hidden_layers=cfg.num_hidden_layers, num_masks=cfg.num_masks,
                num_eval_masks=cfg.num_eval_masks, direct_connection=cfg.direct_connection,
                num_classes=num_classes, conditional=cfg.conditional, dtype=_DTYPES[cfg.dtype])


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "bernoulli": _bernoulli,
    "fvsbn": _fvsbn,
    "nade": _nade,
    "made": _made,
    "pixelcnn": _pixelcnn,
    "gated_pixelcnn": _gated_pixelcnn,
}
MODEL_NAMES = tuple(_BUILDERS)


def build_model(cfg: ModelConfig, image_shape, num_classes: int = 0) -> nn.Module:
    """Builds the module named by cfg.name for images [H, W, C].

    num_classes: number of classes of the data set's integer labels (0 if none);
    only used when cfg.conditional.
    """
    if cfg.name not in _BUILDERS:
        raise ValueError(f"Unknown model {cfg.name!r}. Valid names: {', '.join(_BUILDERS)}.")
    return _BUILDERS[cfg.name](cfg, image_shape, num_classes if cfg.conditional else 0)


def num_train_masks(model: nn.Module) -> int:
    return int(getattr(model, "num_train_masks", 1))


def num_eval_masks(model: nn.Module) -> int:
    return int(getattr(model, "num_eval_masks", 1))


def count_params(params) -> int:
    """Number of stored parameters (all leaves; masked-out entries are counted too)."""
    import jax
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))
