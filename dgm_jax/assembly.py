"""Assembling a run from its config: the one place where data, model, likelihood, optimizer and
parallelism are put together.

    run = dgm_jax.build_run(config)          # config: ml_collections.ConfigDict, dict or Config
    state = run.runner.put_state(run.init_state())
    state, metrics = run.runner.train(state, run.runner.put_batch(batch, batch_axis=1))
    print(run.runner.host_metrics(metrics)["nll"])      # metrics stay on the devices until read

Training (dgm_jax/train.py), benchmarks (experiments/benchmark.py) and tests
use :func:`build_run`; loading a saved run (dgm_jax/api.py) uses
:func:`build_model_for`, which needs no data, only the layout that
run_info.json records.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax import config_schema, models, observations, optim, parallel, rundir, train_state, xla_cpu
from dgm_jax.config_schema import Config


def likelihood_name(cfg: Config, num_levels: int) -> str:
    """The observation model a run uses: config.model.likelihood, 'auto' resolved for the data."""
    spec = models.get_spec(cfg.model.name)
    name = spec.default_likelihood if cfg.model.likelihood == "auto" else cfg.model.likelihood
    return observations.resolve_name(name, num_levels)


def build_model_for(cfg: Config, *, image_shape, num_levels: int, num_classes: int):
    """The flax module of cfg.model for images (H, W, C) of num_levels levels per sub-pixel.

    Raises ValueError when the likelihood cannot model such data (bernoulli on grey levels).
    """
    return models.build_model(cfg.model, image_shape=tuple(image_shape), num_levels=num_levels,
                              num_classes=num_classes)


def check_data_for_model(cfg: Config, ds) -> None:
    """Refuses a conditional model on a data set without labels, naming both."""
    if cfg.model.conditional and ds.cond_dim == 0:
        raise ValueError(f"config.model.conditional=True but the data set {ds.name!r} has no labels "
                         "to condition on; use a labelled set (mnist5k, digits, mnist, photo_patches, npz with "
                         "*_labels) or set model.conditional=False.")


@dataclasses.dataclass
class Run:
    """Everything a training run computes with, built from its config (no files are touched)."""
    cfg: Config
    ds: Any                       # dgm_jax.data.ImageDataset
    model: Any                    # an AutoregressiveImageModel
    tx: Any                       # optax.GradientTransformation
    schedule: Any                 # learning rate as a function of the step
    runner: Any                   # parallel.PmapRunner | ShardMapRunner
    likelihood: str               # the resolved observation model's name

    @property
    def num_dims(self) -> int:
        """Sub-pixels per image (H * W * C): the denominator of bits/dim."""
        return int(np.prod(self.ds.image_shape))

    @property
    def use_ema(self) -> bool:
        return self.cfg.optim.ema_decay > 0

    @property
    def info(self) -> dict:
        """run_info.json: what identifies this run (dgm_jax/rundir.py)."""
        return rundir.run_info(self.cfg, self.ds, self.likelihood)

    def example_inputs(self, batch: int = 1):
        """Zero (x [batch, H, W, C], y [batch, D] or None) shaped like the model's inputs."""
        x = jnp.zeros((batch,) + tuple(self.ds.image_shape), jnp.float32)
        y = jnp.zeros((batch, self.ds.cond_dim), jnp.float32) if self.cfg.model.conditional else None
        return x, y

    def init_inputs(self, n: int):
        """(x [n, H, W, C], y [n, D] or None): the first n training images as the model reads them (a
        dynamic binarization's fixed draw), for a data-dependent initialization."""
        from dgm_jax.models.conditioning import model_condition  # noqa: WPS433

        first = dataclasses.replace(self.ds, images={"train": self.ds.images["train"][:n]})
        labels = self.ds.labels["train"]
        return (jnp.asarray(first.eval_images("train")),
                model_condition(self.model, None if labels is None else labels[:n]))

    def init_params(self):
        """Fresh parameters from fold_in(root key, 0) (host arrays). A model with init_examples = n > 0
        (pixelcnn_pp's weight norm) is initialized on the first n training images, else on zeros."""
        n = int(getattr(self.model, "init_examples", 0))
        x, y = self.init_inputs(n) if n > 0 else self.example_inputs()
        root = jax.random.key(self.cfg.seed)
        return jax.device_get(jax.jit(lambda k: self.model.init(k, x, y)["params"])(jax.random.fold_in(root, 0)))

    def init_state(self) -> train_state.TrainState:
        """Fresh TrainState on the host; its RNG is fold_in(root key, 1)."""
        root = jax.random.key(self.cfg.seed)
        return jax.device_get(train_state.create(self.init_params(), self.tx, jax.random.fold_in(root, 1)))


def build_run(config: Any, *, ds=None, penalty_fn=None, with_penalties: bool = True) -> Run:
    """Loads the data (or takes `ds`), builds model, optimizer and runner for `config`.

    with_penalties=False leaves config.penalties out of the loss (benchmarks of the bare step);
    penalty_fn overrides the penalties built from the config.
    """
    from dgm_jax import data  # noqa: WPS433 - grain and the loaders only when a run is built

    cfg = config if isinstance(config, Config) else config_schema.from_config_dict(config)
    devices = xla_cpu.run_devices(cfg.train.cpu_devices)    # before anything runs on a device
    if ds is None:
        ds = data.load_dataset(cfg.data, seed=cfg.seed)
    else:                   # a set built by the caller: the checks load_dataset would have made
        for split in ds.images:
            data.check_split(ds, split)
    check_data_for_model(cfg, ds)
    lik = likelihood_name(cfg, ds.num_levels)
    model = build_model_for(cfg, image_shape=ds.image_shape, num_levels=ds.num_levels, num_classes=ds.num_classes)
    # pmap: the devices of this process; shard_map: every device of every process (or cpu_devices of them).
    n_dev = len(devices) if devices else \
        (jax.local_device_count() if cfg.train.parallelism == "pmap" else jax.device_count())
    parallel.check_batch_divides(cfg.train.batch_size, n_dev, "train.batch_size")
    parallel.check_batch_divides(cfg.train.eval_batch_size, n_dev, "train.eval_batch_size")
    tx = optim.make_optimizer(cfg.optim, cfg.train.num_steps)
    schedule = optim.make_schedule(cfg.optim, cfg.train.num_steps)
    if penalty_fn is None and with_penalties and cfg.penalties:
        from dgm_jax import penalties  # noqa: WPS433 - only runs that use penalties need them
        penalty_fn = penalties.from_config(cfg.penalties, num_steps=cfg.train.num_steps)
    runner = parallel.make_runner(cfg.train.parallelism, model=model, tx=tx, schedule=schedule,
                                  ema_decay=cfg.optim.ema_decay, penalty_fn=penalty_fn,
                                  num_dims=int(np.prod(ds.image_shape)), devices=devices)
    return Run(cfg=cfg, ds=ds, model=model, tx=tx, schedule=schedule, runner=runner, likelihood=lik)
