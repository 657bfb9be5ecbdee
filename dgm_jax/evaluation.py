"""Scoring a whole split: every image counted once, none dropped to fill a batch.

The NLL of a split is the sample mean of -log p(x) over its n images; its
Monte-Carlo standard error is the sample standard deviation / sqrt(n).
"""
from __future__ import annotations

import math

import jax
import numpy as np

from dgm_jax import input_checks, likelihood
from dgm_jax.data import eval_batches


def split_log_probs(runner, params, images: np.ndarray, labels, batch_size: int,
                    progress: bool = False, where: str = "evaluation input") -> np.ndarray:
    """log p(x | y) in nats for every image of a split, in order, float64 [N].

    `params` are on the devices in the runner's layout. The images must be on the
    model's grid and the labels among its classes (a ValueError naming `where`, the
    index and the value otherwise; dgm_jax/input_checks.py).
    """
    if getattr(runner, "model", None) is not None:
        input_checks.check_split_inputs(runner.model, images, labels, where)
    out = []
    batches = eval_batches(images, labels, batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, total=-(-len(images) // batch_size), desc="eval", leave=False)
    for batch in batches:
        mask = np.asarray(batch.pop("mask")) > 0
        log_p = np.asarray(jax.device_get(runner.eval(params, runner.put_batch(batch))), np.float64)
        out.append(log_p[mask])
    result = np.concatenate(out) if out else np.zeros((0,), np.float64)
    if result.shape[0] != len(images):
        raise AssertionError(f"scored {result.shape[0]} of {len(images)} images")
    return result


def summarize(log_probs: np.ndarray, num_dims: int) -> dict:
    """nll (nats/image), its standard error, bits/dim and n."""
    n = int(log_probs.shape[0])
    nll = float(-np.mean(log_probs))
    stderr = float(np.std(log_probs, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"nll": nll, "nll_stderr": stderr, "bits_per_dim": float(likelihood.bits_per_dim(nll, num_dims)),
            "num_examples": n}


def evaluate_split(runner, params_dev, ds, split: str, batch_size: int) -> dict:
    """summarize() of split `split` of data set `ds` (every image, given its true label if conditional).

    A synthetic set knows p_data exactly: KL(p_data || p_theta) by enumeration
    is reported next to the NLL (dgm_jax/known_truth.py).
    """
    images = ds.eval_images(split)
    lp = split_log_probs(runner, params_dev, images, ds.labels.get(split), batch_size,
                         where=f"data set {ds.name!r} split {split!r}")
    out = summarize(lp, int(np.prod(ds.image_shape)))
    truth = getattr(ds, "truth", None)
    if truth is not None:
        from dgm_jax import known_truth  # noqa: WPS433
        out.update(known_truth.exact_metrics(runner, params_dev, truth, batch_size, nll=out["nll"],
                                             nll_stderr=out["nll_stderr"], split_images=images,
                                             split_log_probs=lp))
    return out


def label_prior(train_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """p(y): the training label frequencies, float64 [num_classes] (a class never seen gets 0)."""
    counts = np.bincount(np.asarray(train_labels, np.int64), minlength=num_classes).astype(np.float64)
    return counts / counts.sum()


def marginal_log_probs(runner, params, images: np.ndarray, prior: np.ndarray, batch_size: int,
                       progress: bool = False) -> np.ndarray:
    """log p(x) = log sum_y p(y) p(x | y) for a class-conditional model, float64 [N].

    One exact pass over the split per class y with p(y) > 0; the log-sum-exp is taken in float64.
    """
    classes = [k for k in range(len(prior)) if prior[k] > 0]
    per_class = np.stack([
        np.log(prior[k]) + split_log_probs(runner, params, images, np.full(len(images), k, np.int32), batch_size,
                                           progress=progress)
        for k in classes])                                                       # [K, N]
    top = per_class.max(axis=0)
    return top + np.log(np.exp(per_class - top).sum(axis=0))


def evaluate_checkpoint(workdir, split: str = "test", checkpoint: str | int = "best", *,
                        batch_size: int | None = None, parallelism: str | None = None,
                        progress: bool = False) -> dict:
    """Exact NLL of a saved run's checkpoint over every image of `split`.

    Loads the run's own config and checkpoint (dgm_jax.load), its data with the
    fixed evaluation binarization (ds.eval_images), checks that config.json,
    run_info.json, the data and the parameters agree, and scores the split on all
    local devices. For a conditional model each image is scored given its true
    label: nll_nats = mean -log p(x | y_true).

    Returns nll_nats, nll_stderr (sample std / sqrt(n)), bits_per_dim,
    num_examples, split, step, checkpoint and a description of the run.
    Raises checkpointing.CheckpointError (no checkpoint, or one that does not
    match the model) or ValueError (unknown split) with a readable message.
    """
    from dgm_jax import api, data, parallel, rundir  # noqa: WPS433 - api imports orbax

    run = api.load(workdir, checkpoint)
    cfg = run.config
    ds = data.load_dataset(cfg.data, seed=cfg.seed)
    if split not in ds.images:
        raise ValueError(f"split {split!r} does not exist in data set {ds.name!r}; "
                         f"available: {', '.join(ds.images)}")
    try:
        rundir.check_run_identity(run.workdir, rundir.run_info(cfg, ds, run.likelihood))
    except rundir.CheckpointError as e:
        raise rundir.CheckpointError(
            f"config.json, run_info.json and the data of {run.workdir} disagree, so the checkpoint cannot be "
            f"matched to a model: {e}") from None
    runner = parallel.make_runner(parallelism or cfg.train.parallelism, model=run.model)
    bs = batch_size or cfg.train.eval_batch_size
    bs = -(-bs // runner.n) * runner.n                          # a multiple of the device count
    labels = ds.labels.get(split)
    log_p = split_log_probs(runner, runner.put_state(run.params), ds.eval_images(split), labels, bs,
                            progress=progress, where=f"data set {ds.name!r} split {split!r}")
    s = summarize(log_p, int(np.prod(run.image_shape)))
    out = {"nll_nats": s["nll"], "nll_stderr": s["nll_stderr"], "bits_per_dim": s["bits_per_dim"],
           "num_examples": s["num_examples"], "split": split, "step": int(run.step), "checkpoint": str(checkpoint),
           "workdir": str(run.workdir), "model": cfg.model.name, "data": cfg.data.name,
           "binarization": cfg.data.binarization, "conditional": bool(cfg.model.conditional),
           "likelihood": "p(x)", "observation_model": run.likelihood, "params": "ema" if cfg.optim.ema_decay > 0 else "params",
           "num_devices": runner.n, "parallelism": parallelism or cfg.train.parallelism}
    if cfg.model.conditional:
        kind = "true label" if labels is not None and labels.ndim == 1 else "true condition vector"
        out["likelihood"] = f"p(x | y = {kind})"
        out["nll_given_true_label_nats"] = s["nll"]
        out["nll_given_true_label_stderr"] = s["nll_stderr"]
        if labels is not None and labels.ndim == 1:
            # -log sum_y p(y) p(x | y), p(y) the training label frequencies: comparable with an
            # unconditional model's NLL on the same images.
            prior = label_prior(ds.labels["train"], ds.num_classes)
            marg = summarize(marginal_log_probs(runner, runner.put_state(run.params), ds.eval_images(split), prior,
                                                bs, progress=progress), int(np.prod(run.image_shape)))
            out.update(marginal_nll_nats=marg["nll"], marginal_nll_stderr=marg["nll_stderr"],
                       marginal_bits_per_dim=marg["bits_per_dim"])
    return out
