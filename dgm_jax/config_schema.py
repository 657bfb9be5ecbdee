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

DATASET_NAMES = ("mnist5k", "digits", "binarized_mnist", "mnist", "fashion_mnist", "cifar10", "photo_patches",
                 "npz", "synthetic")
BINARIZATIONS = ("static", "dynamic", "threshold", "none")
PARALLELISMS = ("pmap", "shard_map")
NONFINITE_POLICIES = ("skip", "stop")


class ConfigError(ValueError):
    """A config key or value that the library cannot accept."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "mnist5k"            # one of DATASET_NAMES
    binarization: str = "dynamic"    # static | dynamic | threshold (binary pixels) | none (keep the grey levels)
    threshold: float = 0.5           # intensity cut for binarization='threshold'
    manual_dir: str = ""             # tfds sets: prepare offline from this directory's files (binarized_mnist:
                                     # the .amat files; mnist: the four IDX files; see data/tfds_sets.py)
    data_dir: str = ""               # tfds data_dir ('' = tfds default)
    path: str = ""                   # npz: the user's file
    validation_fraction: float = 0.1 # carved from train when the set has no validation split
    train_subset: int = 0            # >0: train on the first n (fixed permutation) images only
    synthetic_teacher: str = "fvsbn" # synthetic: teacher family (see data/synthetic.py)
    synthetic_size: int = 4          # synthetic: image side (side*side pixels, enumerable)
    synthetic_num_train: int = 10000 # synthetic: sizes of the sampled splits
    synthetic_num_eval: int = 5000
    synthetic_seed: int = 0          # synthetic: seed of the teacher distribution
    patch_size: int = 32             # photo_patches: side of the square colour patches
    num_workers: int = 0             # grain worker processes (0 = in-process)
    prefetch: int = 2                # batches kept in flight on the devices


COMMON_MODEL_FIELDS = ("name", "conditional", "dtype", "likelihood")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The common model fields, plus the chosen model's own fields and the likelihood's.

    In a ConfigDict the section is flat (model.num_features, model.num_mixtures);
    here the model's own fields are ``options`` (an instance of its registry
    entry's Config, see dgm_jax/models) and the likelihood's are
    ``likelihood_options`` (see dgm_jax/observations). Both are also readable
    as attributes: cfg.model.num_features. A field of another model or
    likelihood is an error.
    """
    name: str = "pixelcnn"           # see dgm_jax.models.MODEL_NAMES
    conditional: bool = False        # model p(x | y); y from the data set's labels
    dtype: str = "float32"           # compute dtype: float32 | bfloat16 (params stay float32)
    likelihood: str = "auto"         # observation model: auto (bernoulli for binary data, else categorical)
                                     # | bernoulli | categorical | discretized_logistic_mixture
    options: Any = None              # the model's own fields (None = its defaults)
    likelihood_options: Any = None   # the likelihood's own fields (None = its defaults)

    def __post_init__(self):
        model_cls, obs_cls = _option_classes(self.name, self.likelihood)
        if self.options is None:
            object.__setattr__(self, "options", model_cls())
        if self.likelihood_options is None:
            object.__setattr__(self, "likelihood_options", obs_cls())

    def __getattr__(self, key: str):
        # Only called for names that are not fields: forward to the model's / likelihood's own fields.
        if key.startswith("__"):
            raise AttributeError(key)
        for part in ("options", "likelihood_options"):
            section = self.__dict__.get(part)
            if section is not None and key in {f.name for f in dataclasses.fields(section)}:
                return getattr(section, key)
        raise AttributeError(f"model {self.__dict__.get('name')!r} has no field {key!r}")


def _option_classes(model_name: str, likelihood: str):
    """(model's Config class, likelihood's Config class) from the registries; the likelihood 'auto'
    resolves to the model's default, which for 'auto' has no options."""
    from dgm_jax import models, observations  # noqa: WPS433 - the registries import flax

    spec = models.REGISTRY.get(model_name)
    model_cls = spec.config if spec is not None else _empty_options
    if likelihood == "auto" and spec is not None:
        likelihood = spec.default_likelihood
    obs = observations.REGISTRY.get(likelihood)
    return model_cls, (obs.config if obs is not None else _empty_options)


@dataclasses.dataclass(frozen=True)
class _empty_options:  # noqa: N801 - used like a Config class
    """No fields."""


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
    cpu_devices: int = 0             # on a CPU, data-parallel devices: 0 = every device JAX has (one unless
                                     # XLA_FLAGS asks for more); N = N; -1 = one per core (dgm_jax/xla_cpu.py)
    steps_per_dispatch: int = 1      # optimizer steps fused per device call (lax.scan)
    nonfinite_policy: str = "skip"   # skip: drop a non-finite update and count it | stop: raise
    num_samples: int = 64            # samples drawn for the final grid
    sampler: str = "auto"            # auto | naive | fast (see dgm_jax.sampling)
    progress_bar: bool = True
    score_test: bool = True          # score the best-validation parameters on the test split at the end;
                                     # False: validation only (a candidate of a selection: the chosen run's
                                     # test NLL is scored later, once, by dgm_jax.evaluation.evaluate_checkpoint)


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


def _build_model(raw: Mapping[str, Any], where: str) -> ModelConfig:
    """The flat model section -> ModelConfig with the model's and the likelihood's own fields split off."""
    from dgm_jax import models, observations  # noqa: WPS433

    name = raw.get("name", ModelConfig.name)
    likelihood = raw.get("likelihood", ModelConfig.likelihood)
    _choice(_coerce(name, str, f"{where}.name"), models.MODEL_NAMES, f"{where}.name")
    _choice(_coerce(likelihood, str, f"{where}.likelihood"), observations.NAMES, f"{where}.likelihood")
    model_cls, obs_cls = _option_classes(name, likelihood)
    own = {f.name for f in dataclasses.fields(model_cls)}
    lik = {f.name for f in dataclasses.fields(obs_cls)}
    common = {k: v for k, v in raw.items() if k in COMMON_MODEL_FIELDS}
    rest = {k: v for k, v in raw.items() if k not in COMMON_MODEL_FIELDS}
    foreign = [k for k in rest if k not in own and k not in lik]
    if foreign:
        raise _not_applicable(f"config.{where}.{foreign[0]}", foreign[0], name, likelihood,
                              sorted(set(COMMON_MODEL_FIELDS) | own | lik),
                              "start from that model's config file (experiments/configs/<model>.py), switch "
                              "to it with --config.model.name, or remove the field.")
    options = _build(model_cls, {k: v for k, v in rest.items() if k in own}, f"{where}")
    lik_options = _build(obs_cls, {k: v for k, v in rest.items() if k in lik}, f"{where}")
    return _build(ModelConfig, {**common, "options": options, "likelihood_options": lik_options}, where)


def _not_applicable(what: str, key: str, name: str, likelihood: str, valid, advice: str) -> ConfigError:
    """The error for a model-section key that model `name` with `likelihood` does not have."""
    from dgm_jax import models, observations  # noqa: WPS433

    owners = [n for n, s in models.REGISTRY.items() if key in {f.name for f in dataclasses.fields(s.config)}]
    owners += [f"likelihood {n}" for n, s in observations.REGISTRY.items()
               if key in {f.name for f in dataclasses.fields(s.config)}]
    why = f" It belongs to {', '.join(owners)}; {advice}" if owners else _suggest(key, valid)
    return ConfigError(f"{what} does not apply to model {name!r} with likelihood {likelihood!r}.{why} "
                       f"Valid keys: {', '.join(valid)}.")


def _build(cls, raw: Mapping[str, Any], where: str):
    if cls is ModelConfig and "options" not in raw:
        return _build_model(raw, where)
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
        if name in ("options", "likelihood_options") and cls is ModelConfig:
            kwargs[name] = value
        elif dataclasses.is_dataclass(hint):
            value = value.to_dict() if hasattr(value, "to_dict") else value
            if not isinstance(value, Mapping):
                raise ConfigError(f"config.{sub} must be a section, got {value!r}")
            kwargs[name] = _build(hint, value, sub)
        elif name == "penalties" and cls is Config:
            value = () if value is None else value
            kwargs[name] = tuple(_penalty(v, f"penalties[{i}]") for i, v in enumerate(value))
        else:
            kwargs[name] = _coerce(value, hint, sub)
    try:
        return cls(**kwargs)         # a section's own checks (e.g. a model's sizes) run in __post_init__
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"config.{where}: {e}" if where else f"config: {e}") from None


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
    if cfg.data.patch_size < 2:
        raise ConfigError(f"config.data.patch_size must be >= 2, got {cfg.data.patch_size}")
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
    if cfg.train.cpu_devices < -1:
        raise ConfigError(f"config.train.cpu_devices must be -1 (one per core), 0 (JAX's default) or a "
                          f"positive count, got {cfg.train.cpu_devices}")
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


def model_to_dict(model: ModelConfig) -> dict:
    """The flat model section: common fields, then the model's own, then the likelihood's."""
    out = {k: getattr(model, k) for k in COMMON_MODEL_FIELDS}
    out.update(dataclasses.asdict(model.options))
    out.update(dataclasses.asdict(model.likelihood_options))
    return out


def to_dict(cfg: Config) -> dict:
    """Plain nested dict of a Config (JSON-serializable, flat model section), e.g. for config.json."""
    out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for key, value in out.items():
        if key == "model":
            out[key] = model_to_dict(value)
        elif key == "penalties":
            out[key] = [dataclasses.asdict(p) for p in value]
        elif dataclasses.is_dataclass(value):
            out[key] = dataclasses.asdict(value)
    return out


def model_section(name: str, likelihood: str = "auto", **fields) -> dict:
    """The flat model section of `name` with its defaults (and the likelihood's), `fields` applied."""
    raw = model_to_dict(ModelConfig(name=name, likelihood=likelihood))
    return to_dict(from_config_dict({"model": {**raw, **fields}}))["model"]


def complete_model_section(section: Mapping[str, Any]) -> dict:
    """A saved flat model section with the fields added to its model (or likelihood) since it was
    written filled in at their defaults: a field added later with its default builds the network
    the section was written for, so the run it names is the same run (records, resumes,
    evaluations of older runs). A section that names no known model is returned as it is."""
    section = dict(section)
    try:
        fresh = model_section(section["name"], section.get("likelihood", ModelConfig.likelihood))
    except (KeyError, ConfigError):
        return section
    return {**fresh, **section}


def switch_model_section(section: Mapping[str, Any], name: str, likelihood: str | None = None) -> dict:
    """The flat model section for model `name` (and `likelihood`, default: the section's), starting
    from `section`: the common fields and every field that the new model (or likelihood) also has
    keep their values, the rest are dropped, the new model's other fields take their defaults."""
    section = dict(section)
    likelihood = section.get("likelihood", ModelConfig.likelihood) if likelihood is None else likelihood
    fresh = model_section(name, likelihood)
    kept = {k: v for k, v in section.items() if k in fresh and k not in ("name", "likelihood")}
    return {**fresh, **kept}


def switch_model_overrides(section: Mapping[str, Any], name: str | None = None, likelihood: str | None = None,
                           explicit: typing.Iterable[str] = (), where: str = "config.model") -> dict:
    """The flat model section of a config whose section is `section` after the overrides
    model.name=`name` and model.likelihood=`likelihood` (None: not overridden), for a user who
    also sets the model fields `explicit` (their values are applied afterwards, by the caller).

    The section is switched by :func:`switch_model_section`: the fields that the new model (or
    likelihood) does not have were set by the config file, not by the user, so they are dropped
    and the new model's own fields take their defaults. A field in `explicit` that the new model
    and likelihood do not have is a ConfigError naming them (`where`: how the caller names keys).
    """
    section = dict(section)
    name = section.get("name", ModelConfig.name) if name is None else name
    _choice(_coerce(name, str, "model.name"), _model_names(), "model.name")
    if likelihood is not None:
        _choice(_coerce(likelihood, str, "model.likelihood"), _likelihood_names(), "model.likelihood")
    new = switch_model_section(section, name, likelihood)
    for key in explicit:
        if key not in new:
            raise _not_applicable(f"{where}.{key}", key, name, new["likelihood"], sorted(new),
                                  f"it was set explicitly, and the model was switched to {name!r}: remove "
                                  f"it or set one of {name!r}'s fields.")
    return new


def _model_names() -> tuple[str, ...]:
    from dgm_jax import models  # noqa: WPS433
    return models.MODEL_NAMES


def _likelihood_names() -> tuple[str, ...]:
    from dgm_jax import observations  # noqa: WPS433
    return observations.NAMES


def model_config(name: str, likelihood: str = "auto", **fields) -> ModelConfig:
    """A validated ModelConfig from flat fields: model_config("made", num_hidden=12, conditional=True)."""
    return from_config_dict({"model": {"name": name, "likelihood": likelihood, **fields}}).model


def model_keys(name: str, likelihood: str = "auto") -> frozenset[str]:
    """The keys a flat model section of model `name` with `likelihood` may hold."""
    return frozenset(model_section(name, likelihood))
