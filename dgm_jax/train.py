"""train_and_evaluate(config, workdir): maximum-likelihood training of one run.

The run: load data -> build model and optimizer -> restore the latest good
checkpoint of the workdir (or start fresh) -> train with periodic logging,
validation on the full validation split, checkpoints and early stopping ->
score the best-validation parameters on the test split (unless
train.score_test=False: then validation only), draw samples, and
write the learning curve and results.json. Running it again on the same
workdir resumes; a larger train.num_steps continues training.

Faults:
  * killed at any moment (SIGKILL, power cut of the host): the next launch
    resumes from the last complete checkpoint, with the data iterator where
    that checkpoint left it; training is a deterministic function of the seed,
    so on CPU the parameters end bitwise equal to an uninterrupted run.
  * SIGTERM (pre-emption): the run checkpoints the current step and raises
    Preempted (launch.py exits with distributed.PREEMPTED_EXIT_CODE = 75);
    all processes of a multi-process job stop at the same step.
  * non-finite loss or gradient: the update is never applied (steps.py); the
    count is logged as num_skipped, and nonfinite_policy='stop' raises
    NonFiniteError naming the step, leaving the last checkpoint intact.
  * damaged checkpoints are skipped with a warning; a failed save raises
    CheckpointError naming the directory (dgm_jax/checkpointing.py).
Multi-process (dgm_jax/distributed.py): each process reads its own shard of
the training data; process 0 alone writes metrics, plots and results.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax import (assembly, checkpointing, config_schema, data, distributed, evaluation, metric_writers, plots,
                     rundir, sampling, train_state, xla_cpu)
from dgm_jax.config_schema import Config

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """Training met a non-finite loss or gradient under nonfinite_policy='stop'."""


class Preempted(Exception):
    """SIGTERM: the run saved a checkpoint at .step and stopped; the same command resumes it."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def _fresh_record() -> dict:
    return {"best_val_nll": math.inf, "best_step": -1, "evals_since_best": 0, "stopped_early": False}


class _Session:
    """One launch of a run: the assembled Run (dgm_jax/assembly.py) plus its workdir's writers."""

    def __init__(self, cfg: Config, workdir: Path):
        self.cfg, self.workdir = cfg, workdir
        self.is_main = jax.process_index() == 0
        self.run = assembly.build_run(cfg)
        self.ds, self.model, self.runner = self.run.ds, self.run.model, self.run.runner
        self.num_dims, self.use_ema = self.run.num_dims, self.run.use_ema
        self.info = self.run.info
        rundir.check_run_identity(workdir, self.info)
        self.ckpt = checkpointing.Checkpointer(workdir, keep=cfg.train.keep_checkpoints)
        self.writer = metric_writers.MetricWriter(workdir, enabled=self.is_main)

    def evaluate(self, params_dev, split: str) -> dict:
        return evaluation.evaluate_split(self.runner, params_dev, self.ds, split, self.cfg.train.eval_batch_size)


def train_and_evaluate(config: Any, workdir: str | os.PathLike) -> dict:
    """Trains (or resumes) the run in `workdir` and returns the results written to results.json."""
    cfg = config_schema.from_config_dict(config)
    xla_cpu.request_cpu_devices(cfg.train.cpu_devices)      # before JAX starts (jax.process_index does)
    workdir = rundir.prepare_workdir(workdir, jax.process_index())
    run = _Session(cfg, workdir)
    t_start = time.time()

    host_state = run.run.init_state()
    iterator = data.train_iterator(run.ds, batch_size=cfg.train.batch_size, seed=cfg.seed,
                                   process_index=jax.process_index(), process_count=jax.process_count(),
                                   num_workers=cfg.data.num_workers)
    restored = run.ckpt.restore_latest_good(host_state)
    if restored is not None:
        step, host_state, meta = restored
        iterator.set_state(meta["data_iterator"])
        record = meta["record"]
        log.info("Resumed %s at step %d.", workdir, step)
    else:
        record = _fresh_record()
        if run.is_main:
            rundir.write_json_atomic(workdir / rundir.RUN_INFO, run.info)
    if run.is_main:
        rundir.write_json_atomic(workdir / rundir.CONFIG, config_schema.to_dict(cfg))

    step = int(host_state.step)
    state = run.runner.put_state(host_state)
    del host_state
    try:
        with distributed.PreemptionWatcher() as watcher:
            state, record = _train_loop(run, state, iterator, step, record, watcher)
        run.ckpt.wait()
        results = _final_report(run, state, record, time.time() - t_start)
    finally:
        # Also on errors (NonFiniteError, Preempted, a failed save): let pending
        # checkpoint writes finish, so that the last good step is complete on disk.
        _close_quietly(run, iterator)
    return results


def _close_quietly(run: _Session, iterator) -> None:
    for close in (run.ckpt.close, run.writer.close, getattr(iterator, "close", None)):
        if close is None:
            continue
        try:
            close()
        except Exception as e:  # noqa: BLE001 - never mask the error that got us here
            log.warning("While closing the run: %s: %s", type(e).__name__, e)


def _train_loop(run: _Session, state, iterator, step: int, record: dict, watcher: distributed.PreemptionWatcher):
    """Trains from `step` to train.num_steps (or early stopping, or pre-emption: raises Preempted)."""
    from dgm_jax.device_prefetch import DevicePrefetcher  # noqa: WPS433

    cfg = run.cfg.train
    # Each process puts its own slice of the global batch (see parallel.py).
    prefetch = DevicePrefetcher(iterator, lambda b: run.runner.put_batch(b, batch_axis=1, process_local=True),
                                size=run.cfg.data.prefetch)
    bar = None
    if cfg.progress_bar and run.is_main:
        from tqdm import tqdm
        bar = tqdm(total=cfg.num_steps, initial=step, desc="train", dynamic_ncols=True)
    t_last, step_last = time.time(), step
    pending = None
    saved_step = -1
    skipped = run.runner.get_scalars(state, ("num_skipped",))["num_skipped"]
    dispatch = 0   # the same count on every process: the pre-emption sync point is agreed on it
    while step < cfg.num_steps and not record["stopped_early"]:
        k = min(cfg.steps_per_dispatch, cfg.num_steps - step)
        state, metrics = run.runner.train(state, prefetch.next(k))
        step += k
        pending = metrics
        last = step >= cfg.num_steps
        if step % cfg.log_every == 0 or last:
            m = run.runner.host_metrics(pending)
            m["param_norm"] = run.runner.param_norm(state)      # after this dispatch's updates
            skipped = _check_nonfinite(run, state, step, skipped)
            m["num_skipped"] = skipped
            now = time.time()
            m["images_per_sec"] = (step - step_last) * cfg.batch_size / max(now - t_last, 1e-9)
            t_last, step_last = now, step
            run.writer.write(step, "train", m)
            if bar is not None:
                bar.update(step - bar.n)
                bar.set_postfix(loss=f"{m['loss']:.2f}", nll=f"{m['nll']:.2f}", img_s=f"{m['images_per_sec']:.0f}")
        val_nll = None
        if step % cfg.eval_every == 0 or last:
            _check_nonfinite(run, state, step)
            val = run.evaluate(run.runner.params_for_eval(state, run.use_ema), "validation")
            val_nll = val["nll"]
            run.writer.write(step, "validation", val)
            _update_record(record, val_nll, step, cfg.early_stopping_patience)
            if bar is not None:
                bar.write(f"step {step}: validation NLL {val_nll:.3f} ± {val['nll_stderr']:.3f} nats "
                          f"({val['bits_per_dim']:.4f} bits/dim)")
        if step % cfg.checkpoint_every == 0 or val_nll is not None or last or record["stopped_early"]:
            # Only a new best carries the metric that orbax's BestN ranks by: on a
            # tie BestN would keep the later step, _update_record the earlier one.
            _save(run, state, prefetch, step, record, val_nll if record["best_step"] == step else None)
            saved_step = step
        if watcher.should_stop(dispatch):
            if saved_step != step:
                _save(run, state, prefetch, step, record, None)
            run.ckpt.wait()
            raise Preempted(f"Pre-empted (SIGTERM): saved a checkpoint at step {step} in {run.workdir}; "
                            "run the same command again to continue.", step)
        dispatch += 1
    if bar is not None:
        bar.close()
    return state, record


def _save(run: _Session, state, prefetch, step: int, record: dict, val_nll) -> None:
    """Checkpoints the state after `step` with the data position and record (after the non-finite check)."""
    _check_nonfinite(run, state, step)
    meta = {"data_iterator": prefetch.state, "record": record, "step": step}
    run.ckpt.save(step, run.runner.get_state(state), meta, val_nll=val_nll)


def _update_record(record: dict, val_nll: float, step: int, patience: int) -> None:
    """Early-stopping bookkeeping on validation NLL (never on test)."""
    if val_nll < record["best_val_nll"]:
        record.update(best_val_nll=val_nll, best_step=step, evals_since_best=0)
    else:
        record["evals_since_best"] += 1
        if patience > 0 and record["evals_since_best"] >= patience:
            record["stopped_early"] = True
            log.info("Early stopping at step %d: no validation improvement in %d evaluations (best %.4f at %d).",
                     step, patience, record["best_val_nll"], record["best_step"])


def _check_nonfinite(run: _Session, state, step: int, skipped_before: int | None = None) -> int:
    """Fetches the skip counters; under nonfinite_policy='stop' raises before anything is saved from a bad step.

    The step itself never applies a non-finite update, so the state (and the
    last checkpoint) hold the last good parameters either way. Returns the
    number of skipped updates so far (logged as num_skipped).
    """
    c = run.runner.get_scalars(state, ("num_skipped", "first_bad_step"))
    if run.cfg.train.nonfinite_policy == "stop" and c["first_bad_step"] >= 0:
        raise NonFiniteError(
            f"Non-finite loss or gradient at step {c['first_bad_step']} (train.nonfinite_policy='stop'); "
            f"the update was not applied and no checkpoint after it was written: the last checkpoint in "
            f"{run.workdir} is intact.")
    if skipped_before is not None and c["num_skipped"] > skipped_before:
        log.warning("Step %d: %d non-finite update(s) skipped so far (the first at step %d); "
                    "train.nonfinite_policy='skip' goes on.", step, c["num_skipped"], c["first_bad_step"])
    return c["num_skipped"]


def _final_report(run: _Session, state, record: dict, wall_time: float) -> dict:
    """Test NLL of the best-validation parameters, samples, learning curve, results.json."""
    cfg = run.cfg
    host = run.runner.get_state(state)
    best_step = record["best_step"]
    final_step = int(host.step)
    if best_step >= 0 and best_step != final_step:
        best, _ = run.ckpt.restore(best_step, host)
    else:
        best, best_step = host, final_step
    params_host = train_state.eval_params(best, run.use_ema)
    params_dev = run.runner.put_state(params_host)
    # train.score_test=False: the test split is never read (a candidate selected on validation);
    # the test_* results are then None.
    test = run.evaluate(params_dev, "test") if cfg.train.score_test else None
    results = {
        "test_nll_nats": test and test["nll"], "test_nll_stderr": test and test["nll_stderr"],
        "test_bits_per_dim": test and test["bits_per_dim"], "num_test_examples": test and test["num_examples"],
        "best_step": best_step, "best_val_nll": record["best_val_nll"], "final_step": final_step,
        "stopped_early": record["stopped_early"], "num_skipped_updates": int(host.num_skipped),
        "num_params": int(sum(np.size(p) for p in jax.tree.leaves(host.params))),
        "model": cfg.model.name, "likelihood": run.run.likelihood, "data": cfg.data.name, "wall_time_s": wall_time,
        "num_devices": run.runner.n, "parallelism": cfg.train.parallelism,
    }
    records = metric_writers.read_metrics(run.workdir / "metrics.jsonl")
    train_nll = [r["nll"] for r in records if r["split"] == "train" and r.get("nll") is not None]
    results["final_train_nll"] = train_nll[-1] if train_nll else None
    if run.is_main:
        if test is not None:
            run.writer.write(best_step, "test", test)
        _write_samples(run, params_host)
        plots.learning_curve(records, run.workdir / "learning_curve.png",
                             title=f"{cfg.model.name} on {cfg.data.name}")
        rundir.write_json_atomic(run.workdir / rundir.RESULTS, results)
        log.info("Results: %s", json.dumps(results))
    return results


def _write_samples(run: _Session, params_host) -> None:
    """samples.png: train.num_samples draws from the model (for a class-conditional model, from the
    marginal: y ~ the training label frequencies, then x ~ p(x | y)); samples_by_class.png for a
    class-conditional model: one row of 8 per class, y = row index."""
    cfg = run.cfg
    n = cfg.train.num_samples
    if n <= 0:
        return
    rng = jax.random.fold_in(jax.random.key(cfg.seed), 2)
    labels = run.ds.labels["test"]
    y = None
    if cfg.model.conditional and labels.ndim == 1:
        prior = evaluation.label_prior(run.ds.labels["train"], run.ds.num_classes)
        y = np.random.default_rng(cfg.seed).choice(run.ds.num_classes, size=n, p=prior).astype(np.int32)
    elif cfg.model.conditional:            # condition vectors: the test set's own
        y = jnp.asarray(labels[:n])
    x = sampling.sample(run.model, params_host, rng, n, y=y, method=cfg.train.sampler)
    plots.image_grid(np.asarray(x), run.workdir / "samples.png", ncols=8)
    if cfg.model.conditional and labels.ndim == 1:
        per_class = 8
        by_class = np.repeat(np.arange(run.ds.num_classes, dtype=np.int32), per_class)
        xc = sampling.sample(run.model, params_host, jax.random.fold_in(rng, 1), len(by_class), y=by_class,
                             method=cfg.train.sampler)
        plots.image_grid(np.asarray(xc), run.workdir / "samples_by_class.png", ncols=per_class)
