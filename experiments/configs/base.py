"""Shared base of every experiment config.

The defaults (and the comment on every field) live in the typed dataclasses
of ``dgm_jax/config_schema.py``; this turns them into an ml_collections
ConfigDict so that each field can be overridden from the command line
(``--config.model.num_layers=5``). Experiment files call ``base.get_config()``
and change what they need; the launcher locks the result, so assigning a
misspelled key is an error.
"""
import ml_collections

from dgm_jax import config_schema


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(config_schema.to_dict(config_schema.Config()))
    # Penalties: a tuple of (name, weight, mask[, schedule, warmup_steps]);
    # see dgm_jax/penalties.py. Empty = pure maximum likelihood.
    config.penalties = ()
    return config


def tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks any config to seconds on a laptop CPU (tests, smoke runs)."""
    config.data.name = "digits"          # 8x8 grey levels 0..16
    config.data.binarization = "dynamic"
    config.model.num_features = 8
    config.model.num_layers = 2
    config.model.first_kernel_size = 3
    config.model.num_hidden = 32
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
