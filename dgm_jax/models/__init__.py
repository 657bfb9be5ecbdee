"""Model registry: ``config.model.name`` -> the model's ModelSpec (module, config fields, sampler).

A new model is one new file under dgm_jax/models/ (an AutoregressiveImageModel
subclass, its ``Config`` dataclass of fields and its ``SPEC``) and one line in
REGISTRY below. See base.py for what every model computes and spec.py for
what an entry holds.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from dgm_jax.models import bernoulli, eonade, fvsbn, gated_pixelcnn, made, nade, pixelcnn, pixelcnn_pp, pixelsnail
from dgm_jax.models.base import AutoregressiveImageModel
from dgm_jax.models.spec import ModelSpec

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    bernoulli.SPEC,
    fvsbn.SPEC,
    nade.SPEC,
    made.SPEC,
    eonade.SPEC,
    pixelcnn.SPEC,
    gated_pixelcnn.SPEC,
    pixelcnn_pp.SPEC,
    pixelsnail.SPEC,
)}
MODEL_NAMES = tuple(REGISTRY)
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Valid names: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def spec_of(model) -> ModelSpec:
    """The registry entry of a built module (looked up by its class)."""
    for spec in REGISTRY.values():
        if type(model) is spec.module:
            return spec
    raise ValueError(f"{type(model).__name__} is not a registered model")


def build_model(cfg, image_shape, num_classes: int = 0, *, num_levels: int = 2) -> AutoregressiveImageModel:
    """The module of model config `cfg` (config_schema.ModelConfig) for images (H, W, C) of num_levels levels.

    num_classes: classes of the data's integer labels (0 if none); only read when cfg.conditional.
    The observation model is cfg.likelihood ('auto': the model's default for the data).
    """
    from dgm_jax import observations  # noqa: WPS433

    spec = get_spec(cfg.name)
    likelihood = spec.default_likelihood if cfg.likelihood == "auto" else cfg.likelihood
    obs = observations.build(likelihood, cfg.likelihood_options, num_levels=num_levels,
                             num_channels=int(image_shape[-1]))
    return spec.build(cfg.options, image_shape=image_shape, observation=obs, num_classes=num_classes,
                      conditional=cfg.conditional, dtype=DTYPES[cfg.dtype])


def num_train_masks(model) -> int:
    return int(getattr(model, "num_train_masks", 1))


def num_eval_masks(model) -> int:
    return int(getattr(model, "num_eval_masks", 1))


def count_params(params) -> int:
    """Number of stored parameters (all leaves; masked-out entries are counted too)."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))


__all__ = ["DTYPES", "MODEL_NAMES", "REGISTRY", "AutoregressiveImageModel", "ModelSpec", "build_model",
           "count_params", "get_spec", "num_eval_masks", "num_train_masks", "spec_of"]
