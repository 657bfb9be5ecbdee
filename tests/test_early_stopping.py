"""Validation-driven training: the early-stopping record, and a tiny run that overfits and stops."""
import json
import math

import numpy as np
import pytest

import dgm_jax
from dgm_jax import train
from dgm_jax.metric_writers import read_metrics


def _replay(curve, patience, eval_every=10):
    """Feeds a scripted validation curve to train._update_record as the loop would; returns (record, steps seen)."""
    record = train._fresh_record()
    seen = []
    for i, val in enumerate(curve):
        step = (i + 1) * eval_every
        train._update_record(record, val, step, patience)
        seen.append(step)
        if record["stopped_early"]:
            break
    return record, seen


def test_update_record_stops_after_patience_evaluations_without_improvement():
    curve = [5.0, 4.0, 4.5, 3.0, 3.2, 3.1, 2.0, 1.0]
    record, seen = _replay(curve, patience=2)
    assert record["stopped_early"] and seen[-1] == 60           # 3.2, 3.1: two evaluations without a new best
    assert record["best_step"] == 40 and record["best_val_nll"] == 3.0
    record, seen = _replay(curve, patience=3)                    # 2.0 at step 70 arrives in time
    assert not record["stopped_early"] and record["best_step"] == 80 and seen[-1] == 80
    record, _ = _replay(curve, patience=0)                       # 0 = off
    assert not record["stopped_early"] and record["best_val_nll"] == 1.0
    # A tie is not an improvement; nor is NaN (a diverged evaluation).
    record, seen = _replay([3.0, 3.0, 3.0, 1.0], patience=2)
    assert record["stopped_early"] and seen[-1] == 30 and record["best_step"] == 10
    record, seen = _replay([3.0, math.nan, math.nan, 1.0], patience=2)
    assert record["stopped_early"] and seen[-1] == 30 and record["best_val_nll"] == 3.0


@pytest.fixture
def overfitting_config(tiny_config):
    """A PixelCNN on 64 fixed (thresholded) digits with a high constant learning rate: it overfits fast."""
    c = tiny_config
    c.data.binarization = "threshold"
    c.data.train_subset = 64
    c.model.num_features = 16
    c.optim.schedule = "constant"
    c.optim.learning_rate = 1e-2
    c.optim.ema_decay = 0.0
    c.train.num_steps = 600
    c.train.eval_every = c.train.log_every = c.train.checkpoint_every = 20
    c.train.keep_checkpoints = 1          # the best survives only through the best-checkpoint policy
    c.train.early_stopping_patience = 2
    c.train.num_samples = 0
    return c


def test_tiny_run_stops_early_and_reports_the_best_validation_checkpoint(tmp_path, overfitting_config):
    cfg = overfitting_config
    wd = tmp_path / "run"
    res = dgm_jax.train_and_evaluate(cfg, wd)
    results = json.loads((wd / "results.json").read_text())
    assert results["stopped_early"] and results["final_step"] < cfg.train.num_steps

    val = [r for r in read_metrics(wd / "metrics.jsonl") if r["split"] == "validation"]
    steps = [r["step"] for r in val]
    nlls = np.array([r["nll"] for r in val])
    assert steps == list(range(20, results["final_step"] + 1, 20))
    # best_step is the argmin of the logged validation NLL, and the run stopped `patience` evaluations later.
    assert results["best_step"] == steps[int(np.argmin(nlls))]
    assert results["best_val_nll"] == pytest.approx(nlls.min())
    assert results["final_step"] == results["best_step"] + 2 * 20
    # Replaying the logged curve through the record gives the same decision.
    record, seen = _replay(list(nlls), patience=2, eval_every=20)
    assert record["stopped_early"] and seen[-1] == results["final_step"]

    # The test NLL is that of the best checkpoint, which load('best') returns ...
    best = dgm_jax.load(wd, "best")
    assert best.step == results["best_step"]
    ds = dgm_jax.data.load_dataset(best.config.data)
    x = ds.eval_images("test")
    lp_best = np.asarray(dgm_jax.log_prob(best.model, best.params, x), np.float64)
    assert len(lp_best) == results["num_test_examples"]
    assert -lp_best.mean() == pytest.approx(results["test_nll_nats"], rel=1e-5) == res["test_nll_nats"]
    # ... and not that of the final (overfitted) parameters.
    last = dgm_jax.load(wd, "latest")
    assert last.step == results["final_step"] != best.step
    lp_last = np.asarray(dgm_jax.log_prob(last.model, last.params, x), np.float64)
    assert abs(-lp_last.mean() - results["test_nll_nats"]) > 1e-3


def test_a_validation_tie_keeps_the_recorded_best_checkpoint(tmp_path, tiny_config):
    # Learning rate 0: the parameters never change, so every evaluation ties.
    c = tiny_config
    c.optim.learning_rate = 0.0
    c.optim.ema_decay = 0.0
    c.train.num_steps = 20
    c.train.eval_every = c.train.log_every = c.train.checkpoint_every = 10
    c.train.keep_checkpoints = 1
    c.train.num_samples = 0
    res = dgm_jax.train_and_evaluate(c, tmp_path / "run")
    assert res["best_step"] == 10
    assert dgm_jax.load(tmp_path / "run", "best").step == 10
