"""Typed, frozen views of an experiment config.

Experiment files under ``experiments/configs/`` build an ``ml_collections``
ConfigDict (so every field can be overridden from the command line). At the
library boundary that dict is converted into these frozen dataclasses by
:func:`from_config_dict`; an unknown key or a value of the wrong type is an
error that names the key, so a typo never passes silently.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Mapping

DATASET_NAMES = ("mnist5k", "digits", "binarized_mnist", "mnist", "fashion_mnist", "npz", "synthetic")
BINARIZATIONS = ("static", "dynamic", "threshold")
PARALLELISMS = ("pmap", "shard_map")
NONFINITE_POLICIES = ("skip", "stop")


class ConfigError(ValueError):
    """A config key or value that the library cannot accept."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "mnist5k"            # one of DATASET_NAMES
    binarization: str = "dynamic"    # static | dynamic | threshold
    threshold: float = 0.5           # intensity cut for binarization='threshold'
    manual_dir: str = ""             # binarized_mnist: directory with the .amat files
    data_dir: str = ""               # tfds data_dir ('' = tfds default)
    path: str = ""                   # npz: the user's file
    validation_fraction: float = 0.1 # carved from train when the set has no validation split
    train_subset: int = 0            # >0: train on the first n (fixed permutation) images only
    synthetic_teacher: str = "fvsbn" # synthetic: teacher family (see data/synthetic.py)
    synthetic_size: int = 4          # synthetic: image side (side*side pixels, enumerable)
    synthetic_num_train: int = 10000 # synthetic: sizes of the sampled splits
    synthetic_num_eval: int = 5000
    synthetic_seed: int = 0          # synthetic: seed of the teacher distribution
    num_workers: int = 0             # grain worker processes (0 = in-process)
    prefetch: int = 2                # batches kept in flight on the devices


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str = "pixelcnn"           # see dgm_jax.models.MODEL_NAMES
    conditional: bool = False        # model p(x | y); y from the data set's labels
    num_features: int = 64           # conv models: channels of every hidden layer
    num_layers: int = 5              # conv models: residual / gated layers after the first
    kernel_size: int = 3             # conv models: kernel of the hidden layers
    first_kernel_size: int = 7       # conv models: kernel of the first (mask-A) layer
    head_features: int = 0           # conv models: width of the 1x1 ReLU layer before the logits (0 = num_features)
    num_hidden: int = 500            # nade / made: hidden units per layer
    num_hidden_layers: int = 1       # made: number of hidden layers
    num_masks: int = 1               # made: distinct masks cycled in training (1 = fixed mask)
    num_eval_masks: int = 1          # made: masks averaged (in probability) at evaluation
    direct_connection: bool = False  # made: add a masked direct input->output linear path
    dtype: str = "float32"           # compute dtype: float32 | bfloat16 (params stay float32)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"               # adam | adamw | sgd | rmsprop
    learning_rate: float = 1e-3      # peak learning rate
    schedule: str = "cosine"         # constant | cosine (after the warm-up)
    warmup_steps: int = 100          # linear warm-up from 0
    final_lr_fraction: float = 0.0   # cosine: final lr = fraction * peak
    b1: float = 0.9                  # adam/adamw first-moment decay
    b2: float = 0.999                # adam/adamw second-moment decay
    eps: float = 1e-8
    momentum: float = 0.9            # sgd / rmsprop momentum (0 = none)
    nesterov: bool = False           # sgd: Nesterov momentum
    weight_decay: float = 0.0        # decoupled weight decay (an optimizer transform, not a penalty)
    grad_clip_norm: float = 0.0      # clip the global gradient norm (0 = off)
    ema_decay: float = 0.0           # Polyak/EMA of parameters used for eval and sampling (0 = off)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64             # global batch, split over all devices
    eval_batch_size: int = 256       # global batch for scoring validation / test
    num_steps: int = 1000            # total optimizer steps (a resumed run continues to this)
    log_every: int = 50              # steps between fetching metrics to the host
    eval_every: int = 250            # steps between full-validation-split evaluations
    checkpoint_every: int = 250      # steps between checkpoints (also saved at eval and at the end)
    keep_checkpoints: int = 3        # latest checkpoints kept (the best one is kept in addition)
    early_stopping_patience: int = 0 # evaluations without improvement before stopping (0 = off)
    parallelism: str = "pmap"        # pmap | shard_map (same per-device step, two mappings)
    steps_per_dispatch: int = 1      # optimizer steps fused per device call (lax.scan)
    nonfinite_policy: str = "skip"   # skip: drop a non-finite update and count it | stop: raise
    num_samples: int = 64            # samples drawn for the final grid
    sampler: str = "auto"            # auto | naive | fast (see dgm_jax.sampling)
    progress_bar: bool = True


@dataclasses.dataclass(frozen=True)
class PenaltyConfig:
    name: str                        # see dgm_jax.penalties.PENALTY_NAMES
    weight: float                    # lambda in loss = nll + sum_k lambda_k R_k
    mask: str = "all"                # which leaves: all | kernels | biases
    schedule: str = "constant"       # constant | linear_warmup (weight ramps up over warmup_steps)
    warmup_steps: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    seed: int = 0
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    penalties: tuple[PenaltyConfig, ...] = ()


def _suggest(key: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config.{where} must be a bool, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config.{where} must be an int, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config.{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"config.{where} must be a string, got {value!r}")
        return value
    return value


def _penalty(value: Any, where: str) -> PenaltyConfig:
    """Accepts ("l2", 1e-4, "kernels") tuples or mappings with PenaltyConfig's fields."""
    names = [f.name for f in dataclasses.fields(PenaltyConfig)]
    if isinstance(value, Mapping) or hasattr(value, "to_dict"):
        raw = dict(value.to_dict() if hasattr(value, "to_dict") else value)
    elif isinstance(value, (tuple, list)):
        if not 2 <= len(value) <= len(names):
            raise ConfigError(f"config.{where} must be (name, weight[, mask[, schedule[, warmup_steps]]]), got {value!r}")
        raw = dict(zip(names, value))
    else:
        raise ConfigError(f"config.{where} must be a tuple or dict, got {value!r}")
    return _build(PenaltyConfig, raw, where)


def _build(cls, raw: Mapping[str, Any], where: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        k = unknown[0]
        prefix = f"config.{where}." if where else "config."
        raise ConfigError(f"Unknown config key {prefix}{k}.{_suggest(k, fields)} "
                          f"Valid keys: {', '.join(sorted(fields))}.")
    kwargs = {}
    for name, value in raw.items():
        sub = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = value.to_dict() if hasattr(value, "to_dict") else value
            if not isinstance(value, Mapping):
                raise ConfigError(f"config.{sub} must be a section, got {value!r}")
            kwargs[name] = _build(hint, value, sub)
        elif name == "penalties" and cls is Config:
            value = () if value is None else value
            kwargs[name] = tuple(_penalty(v, f"penalties[{i}]") for i, v in enumerate(value))
        else:
            kwargs[name] = _coerce(value, hint, sub)
    return cls(**kwargs)


def from_config_dict(config: Any) -> Config:
    """Converts an ml_collections ConfigDict (or a plain dict) into a validated Config."""
    if isinstance(config, Config):
        validate(config)
        return config
    raw = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    cfg = _build(Config, raw, "")
    validate(cfg)
    return cfg


def _choice(value: str, valid: tuple[str, ...], where: str) -> None:
    if value not in valid:
        raise ConfigError(f"config.{where}={value!r} is not valid.{_suggest(value, valid)} "
                          f"Valid names: {', '.join(valid)}.")


def validate(cfg: Config) -> None:
    """Checks choices and ranges that do not need the data or the devices."""
    _choice(cfg.data.name, DATASET_NAMES, "data.name")
    _choice(cfg.data.binarization, BINARIZATIONS, "data.binarization")
    _choice(cfg.train.parallelism, PARALLELISMS, "train.parallelism")
    _choice(cfg.train.nonfinite_policy, NONFINITE_POLICIES, "train.nonfinite_policy")
    _choice(cfg.model.dtype, ("float32", "bfloat16"), "model.dtype")
    _choice(cfg.optim.schedule, ("constant", "cosine"), "optim.schedule")
    _choice(cfg.train.sampler, ("auto", "naive", "fast"), "train.sampler")
    positive = {"train.batch_size": cfg.train.batch_size, "train.eval_batch_size": cfg.train.eval_batch_size,
                "train.log_every": cfg.train.log_every, "train.eval_every": cfg.train.eval_every,
                "train.checkpoint_every": cfg.train.checkpoint_every,
                "train.keep_checkpoints": cfg.train.keep_checkpoints,
                "train.steps_per_dispatch": cfg.train.steps_per_dispatch}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config.{key} must be positive, got {value}")
    if cfg.train.num_steps < 0:
        raise ConfigError(f"config.train.num_steps must be >= 0, got {cfg.train.num_steps}")
    if not 0.0 <= cfg.optim.ema_decay < 1.0:
        raise ConfigError(f"config.optim.ema_decay must be in [0, 1), got {cfg.optim.ema_decay}")
    if not 0.0 < cfg.data.validation_fraction < 1.0:
        raise ConfigError(f"config.data.validation_fraction must be in (0, 1), got {cfg.data.validation_fraction}")
    for k in ("log_every", "eval_every", "checkpoint_every"):
        if getattr(cfg.train, k) % cfg.train.steps_per_dispatch:
            raise ConfigError(f"config.train.{k} must be a multiple of train.steps_per_dispatch "
                              f"({cfg.train.steps_per_dispatch})")


def to_dict(cfg: Config) -> dict:
    """Plain nested dict of a Config (JSON-serializable), e.g. for the saved resolved config."""
    return dataclasses.asdict(cfg)
