"""Shared base of every experiment config.

The defaults (and the comment on every field) live in the typed dataclasses
of ``dgm_jax/config_schema.py`` and, for the model's own fields, in the
model's registry entry (``dgm_jax/models/<model>.py``, its ``Config``). This
turns them into an ml_collections ConfigDict so that each field can be
overridden from the command line (``--config.model.num_layers=5``).
Experiment files call ``base.get_config(model)`` and change what they need;
the launcher locks the result, so assigning a misspelled key, or a field of
another model, is an error.

Variants (``--config=file.py:tiny``) go through :func:`variant`: one place
that checks the name and shrinks the config for this CPU.
"""
from __future__ import annotations

from typing import Callable, Mapping

import ml_collections

from dgm_jax import config_schema


def get_config(model: str = "pixelcnn", likelihood: str = "auto") -> ml_collections.ConfigDict:
    """Every field with its default; config.model holds the common fields plus `model`'s own
    (and the likelihood's, e.g. num_mixtures for discretized_logistic_mixture)."""
    raw = config_schema.to_dict(config_schema.Config())
    raw["model"] = config_schema.model_section(model, likelihood)
    # Penalties: a tuple of (name, weight, mask[, schedule, warmup_steps]);
    # see dgm_jax/penalties.py. Empty = pure maximum likelihood. A tuple from the start (to_dict
    # gives a list, and a ConfigDict field keeps its first type), because the command-line
    # override --config.penalties="(('l2', 1e-3, 'kernels'),)" only parses into tuple fields.
    raw["penalties"] = ()
    return ml_collections.ConfigDict(raw)


# Model fields that tiny() shrinks, where the chosen model has them.
TINY_MODEL = {"num_features": 8, "num_layers": 2, "first_kernel_size": 3, "num_hidden": 32,
              "num_eval_orderings": 4, "num_resnet": 0, "num_blocks": 1, "num_res_per_block": 1,
              "key_features": 4, "value_features": 8}


def tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks any config to seconds on a laptop CPU (tests, smoke runs)."""
    config.data.name = "digits"          # 8x8 grey levels 0..16
    if config.data.binarization == "static":
        config.data.binarization = "dynamic"   # digits are grey levels; static needs 0/1 data
    for key, value in TINY_MODEL.items():
        if key in config.model:
            config.model[key] = value
    config.train.batch_size = 32
    config.train.eval_batch_size = 256
    config.train.num_steps = 40
    config.train.log_every = 10
    config.train.eval_every = 20
    config.train.checkpoint_every = 20
    config.train.num_samples = 4
    config.train.progress_bar = False
    config.optim.warmup_steps = 5
    config.optim.learning_rate = 3e-3
    return config


def variant(config: ml_collections.ConfigDict, name: str,
            extra: Mapping[str, Callable[[ml_collections.ConfigDict], object]] | None = None,
            tiny_fn: Callable[[ml_collections.ConfigDict], object] | None = None) -> ml_collections.ConfigDict:
    """Applies variant `name` of a config file: '' (as is), 'tiny' (:func:`tiny`, then tiny_fn) or
    one of `extra` (name -> function changing the config in place). Unknown names are errors."""
    extra = dict(extra or {})
    valid = ["", "tiny"] + sorted(extra)
    if name not in valid:
        raise ValueError(f"unknown variant {name!r}; valid: " + ", ".join(repr(v) for v in valid))
    if name == "tiny":
        config = tiny(config)
        if tiny_fn is not None:
            tiny_fn(config)
    elif name:
        extra[name](config)
    return config


def with_model(config: ml_collections.ConfigDict, name: str, likelihood: str | None = None,
               **fields) -> ml_collections.ConfigDict:
    """config with its model section switched to model `name` (config_schema.switch_model_section:
    shared fields kept, the new model's own at their defaults), then `fields` set."""
    section = config_schema.switch_model_section(config.model.to_dict(), name, likelihood)
    unknown = sorted(set(fields) - set(section))
    if unknown:
        raise config_schema.ConfigError(f"model {name!r} has no field(s) {', '.join(unknown)}; "
                                        f"valid: {', '.join(sorted(section))}")
    section.update(fields)
    with config.unlocked():
        config.model = ml_collections.ConfigDict(section)
    return config
