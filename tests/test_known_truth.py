"""Synthetic data with a known p_data, and the exact KL reported next to the NLL."""
import math

import jax
import numpy as np
import pytest
import scipy.stats

import dgm_jax
from dgm_jax import config_schema, divergences, known_truth, models, parallel
from dgm_jax.config_schema import DataConfig
from dgm_jax.data import load_dataset, synthetic
from dgm_jax.metric_writers import read_metrics

TEACHERS = synthetic.TEACHERS


@pytest.mark.parametrize("teacher", TEACHERS)
def test_truth_is_a_normalized_nontrivial_enumeration(teacher):
    truth = synthetic.known_distribution(teacher, 4, 0)
    assert truth.images.shape == (2 ** 16, 4, 4, 1) and truth.log_probs.shape == (2 ** 16,)
    np.testing.assert_array_equal(synthetic.state_index(truth.images), np.arange(2 ** 16))  # each image once
    assert divergences.log_normalizer(truth.log_probs) == pytest.approx(0.0, abs=1e-12)   # sums to 1
    assert truth.entropy == pytest.approx(divergences.entropy(truth.log_probs))
    # Well below uniform noise (D ln 2 = 11.09), so there is something to learn.
    assert 0.25 < truth.entropy / synthetic.max_entropy(truth) < 0.75
    # Pinned values at seed 0: a change of numpy's random streams cannot pass silently.
    assert truth.entropy == pytest.approx({"fvsbn": 4.4680, "mixture": 7.5157}[teacher], abs=1e-4)
    # Small images enumerate too; the log-probabilities are the teacher's.
    small = synthetic.known_distribution(teacher, 2, 1)
    assert divergences.log_normalizer(small.log_probs) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(small.log_prob(small.images[::-1]), small.log_probs[::-1])


@pytest.mark.parametrize("teacher", TEACHERS)
def test_samples_follow_p_data(teacher):
    cfg = DataConfig(name="synthetic", binarization="static", synthetic_teacher=teacher)
    ds = load_dataset(cfg)
    truth = ds.truth
    x = ds.images["train"]
    assert x.shape == (10_000, 4, 4, 1) and set(np.unique(x)) == {0.0, 1.0}
    # Mean log p_data of the samples against -H, with the exact standard deviation of log p_data.
    lp = truth.log_prob(x)
    _, var = divergences.mean_and_variance(truth.log_probs, truth.log_probs)
    z = (lp.mean() + truth.entropy) / math.sqrt(var / len(lp))
    assert abs(z) < 4, z
    # Chi-square over 20 bins of (nearly) equal p_data mass, states sorted by probability.
    order = np.argsort(truth.log_probs)
    cum = np.cumsum(np.exp(truth.log_probs[order]))
    bin_of_state = np.empty(2 ** 16, np.int64)
    bin_of_state[order] = np.minimum((cum * 20).astype(np.int64), 19)
    expected = np.bincount(bin_of_state, weights=np.exp(truth.log_probs), minlength=20) * len(x)
    observed = np.bincount(bin_of_state[synthetic.state_index(x)], minlength=20)
    mask = expected > 0
    _, pvalue = scipy.stats.chisquare(observed[mask], expected[mask] * observed.sum() / expected[mask].sum())
    assert pvalue > 1e-3, (observed, expected)


def test_splits_depend_on_synthetic_fields_only():
    base = DataConfig(name="synthetic", binarization="static", synthetic_num_train=300, synthetic_num_eval=200)
    ds = load_dataset(base, seed=0)
    assert ds.truth is not None and ds.image_shape == (4, 4, 1) and ds.labels["train"] is None
    assert {k: len(v) for k, v in ds.images.items()} == {"train": 300, "validation": 200, "test": 200}
    again = load_dataset(base, seed=123)                     # config.seed does not change the data
    for s in ds.images:
        np.testing.assert_array_equal(ds.images[s], again.images[s])
    more = load_dataset(DataConfig(**{**base.__dict__, "synthetic_num_train": 600}))
    np.testing.assert_array_equal(more.images["validation"], ds.images["validation"])
    np.testing.assert_array_equal(more.images["train"][:300], ds.images["train"])
    assert not np.array_equal(ds.images["validation"], ds.images["test"])
    other = load_dataset(DataConfig(**{**base.__dict__, "synthetic_seed": 1}))
    assert other.truth.entropy != ds.truth.entropy
    sub = load_dataset(DataConfig(**{**base.__dict__, "train_subset": 50}))
    assert len(sub.images["train"]) == 50 and sub.truth is ds.truth
    with pytest.raises(ValueError, match="synthetic_teacher='gauss'"):
        load_dataset(DataConfig(**{**base.__dict__, "synthetic_teacher": "gauss"}))
    with pytest.raises(ValueError, match="synthetic_size=5"):
        load_dataset(DataConfig(**{**base.__dict__, "synthetic_size": 5}))


def _runner_and_params(model_name, image_shape, params):
    model = models.build_model(config_schema.model_config(model_name), image_shape)
    runner = parallel.make_runner("pmap", model=model)
    return runner, runner.put_state(params)


def test_exact_kl_is_zero_for_the_teacher_and_the_total_correlation_for_marginals():
    """An FVSBN given the teacher's own parameters is p_data (KL = 0 up to float32), which also
    checks that the enumeration and the models use the same raster order; independent pixels with
    the true marginals are exactly the total correlation away."""
    truth = synthetic.known_distribution("fvsbn", 4, 0)
    t = truth.teacher
    runner, params = _runner_and_params("fvsbn", (4, 4, 1), {"weights": t.weights[:, None, :].astype(np.float32),   # [D, P=1, D]
                                                             "bias": t.bias[:, None].astype(np.float32)})
    m = known_truth.exact_metrics(runner, params, truth, 4096, nll=truth.entropy + 0.01, nll_stderr=0.02)
    assert m["exact_kl"] == pytest.approx(0.0, abs=1e-4)
    assert m["model_log_mass"] == pytest.approx(0.0, abs=1e-4)
    assert m["data_entropy"] == truth.entropy and m["nll_minus_entropy"] == pytest.approx(0.01)
    assert m["nll_minus_entropy_stderr"] == 0.02
    assert m["exact_cross_entropy"] == pytest.approx(truth.entropy + m["exact_kl"])

    marg = np.exp(truth.log_probs) @ truth.images.reshape(-1, 16)
    runner, params = _runner_and_params("bernoulli", (4, 4, 1),
                                        {"logits": np.log(marg / (1 - marg)).reshape(4, 4, 1, 1).astype(np.float32)})
    m = known_truth.exact_metrics(runner, params, truth, 4096, nll=0.0, nll_stderr=0.0)
    total_correlation = -np.sum(marg * np.log(marg) + (1 - marg) * np.log(1 - marg)) - truth.entropy
    assert m["exact_kl"] == pytest.approx(total_correlation, abs=1e-4)
    assert total_correlation > 1.0                         # the pixels are far from independent


def test_training_reduces_exact_kl_and_nll_minus_entropy_estimates_it(tmp_path):
    from experiments.configs import synthetic as synthetic_config
    config = synthetic_config.get_config("tiny")        # MADE 32 units, 2,000 train / 1,000 eval images
    config.train.num_steps = 300
    config.train.eval_every = config.train.checkpoint_every = 50
    wd = tmp_path / "run"
    dgm_jax.train_and_evaluate(config, wd)
    recs = [r for r in read_metrics(wd / "metrics.jsonl") if r["split"] in ("validation", "test")]
    val = [r for r in recs if r["split"] == "validation"]
    assert len(val) == 6
    first, last = val[0]["exact_kl"], val[-1]["exact_kl"]
    assert last < 0.6 * first, (first, last)

    # Initial parameters (step 0) are much further from p_data.
    run = dgm_jax.load(wd)
    cfg = config_schema.from_config_dict(config)
    model = models.build_model(cfg.model, (4, 4, 1))
    init = jax.jit(model.init)(jax.random.key(0), np.zeros((1, 4, 4, 1), np.float32))["params"]
    runner = parallel.make_runner("pmap", model=model)
    ds = load_dataset(cfg.data)
    m0 = known_truth.exact_metrics(runner, runner.put_state(init), ds.truth, 4096, nll=0.0, nll_stderr=0.0)
    assert m0["exact_kl"] > first and last < 0.4 * m0["exact_kl"], (m0["exact_kl"], first, last)

    for r in recs:
        assert r["exact_cross_entropy"] == pytest.approx(r["data_entropy"] + r["exact_kl"])
        assert abs(r["model_log_mass"]) < 1e-4
        # NLL - H is an unbiased estimate of the KL (the split was never trained on) whose error
        # bar is the NLL's: within 3.5 standard errors (each record fails with probability 5e-4).
        assert abs(r["nll_minus_entropy"] - r["exact_kl"]) < 3.5 * r["nll_minus_entropy_stderr"], r

    # The paired estimate mean[log p_data - log p_theta] on the test split: same target, smaller error bar.
    params = runner.put_state(run.params)
    from dgm_jax import evaluation
    x = ds.eval_images("test")
    lq = evaluation.split_log_probs(runner, params, x, None, 500)
    summary = evaluation.summarize(lq, 16)
    m = known_truth.exact_metrics(runner, params, ds.truth, 4096, nll=summary["nll"],
                                  nll_stderr=summary["nll_stderr"], split_images=x, split_log_probs=lq)
    assert abs(m["kl_paired"] - m["exact_kl"]) < 3.5 * m["kl_paired_stderr"]
    assert m["kl_paired_stderr"] < 0.8 * m["nll_minus_entropy_stderr"]   # pairing cancels noise of log p_data
    assert "nats from the truth" in known_truth.describe(m)
