"""Bad input gets a clear error, end to end through train_and_evaluate (or launch.py), before any training,
and on every other path that feeds a model (log_prob, sample, complete, evaluation, the data pipeline).

Each case checks that the message names the problem (and the key, file or
setting to fix, the index and the value); data-level details of the npz checks
are in test_data.py. Under jit, where no host check can run, bad values give a
NaN log-likelihood, never a clipped plausible one.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dgm_jax
from dgm_jax import config_schema, distributed


def _images(n, h=8, w=8, seed=0):
    return (np.random.default_rng(seed).random((n, h, w)) < 0.5).astype(np.uint8)


def _good():
    return {"train": _images(40), "test": _images(10, seed=1)}


def _nan_train():
    f = _good()
    x = f["train"].astype(np.float32)
    x[3, 2, 2] = np.nan
    return {**f, "train": x}


def _labels(**over):
    f = {**_good(), "train_labels": np.arange(40, dtype=np.int64) % 3, "test_labels": np.arange(10) % 3}
    return {**f, **over}


NPZ_CASES = {
    "nan": (_nan_train, r"key 'train': 1 NaN and 0 infinite values, the first at train\[3, 2, 2\]"),
    "negative": (lambda: {**_good(), "test": -_images(10).astype(np.int16)},
                 r"key 'test': negative values \(min -1\), the first at test\[0, 0, 1\]"),
    "dtype": (lambda: {**_good(), "train": _images(40).astype(np.complex64)}, r"key 'train': wrong dtype complex64"),
    "rank": (lambda: {**_good(), "train": np.zeros((40, 64), np.uint8)},
             r"key 'train': images must be \[N, H, W\] or \[N, H, W, C\], got shape \(40, 64\)"),
    "labels_range": (lambda: _labels(test_labels=np.array([0, 1, 2, 0, 9, 1, 7, 0, 1, 2])),
                     r"key 'test_labels': labels out of range: label 9 is not among the train classes 0..2 "
                     r"\(test_labels\[4\]\)"),
    "labels_negative": (lambda: _labels(train_labels=np.where(np.arange(40) == 5, -2, np.arange(40) % 3)),
                        r"key 'train_labels': labels out of range: negative label -2 at train_labels\[5\]"),
    "labels_length": (lambda: _labels(train_labels=np.zeros(39, np.int64)),
                      r"key 'train_labels': wrong length: shape \(39,\) for 40 images"),
    "empty": (lambda: {**_good(), "test": np.zeros((0, 8, 8), np.uint8)}, r"key 'test': empty split \(0 images\)"),
    "size_mismatch": (lambda: {**_good(), "test": _images(10, h=7)},
                      r"image sizes differ between splits: train \[8, 8, 1\], test \[7, 8, 1\]"),
}


def _npz_config(tiny_config, path):
    tiny_config.data.name = "npz"
    tiny_config.data.path = str(path)
    tiny_config.data.binarization = "dynamic"
    return tiny_config


@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_malformed_npz_is_named_end_to_end(case, tmp_path, tiny_config):
    make, message = NPZ_CASES[case]
    path = tmp_path / "data.npz"
    np.savez(path, **make())
    with pytest.raises(ValueError, match=message) as err:
        dgm_jax.train_and_evaluate(_npz_config(tiny_config, path), tmp_path / "run")
    assert str(path) in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()     # nothing trained or saved


def test_conditional_model_on_unlabelled_data(tmp_path, tiny_config):
    path = tmp_path / "data.npz"
    np.savez(path, **_good())
    tiny_config.model.conditional = True
    with pytest.raises(ValueError, match=r"model.conditional=True but the data set 'npz' has no labels"):
        dgm_jax.train_and_evaluate(_npz_config(tiny_config, path), tmp_path / "run")


@pytest.mark.parametrize("section,key,value,message", [
    ("train", "num_step", 10, r"Unknown config key config.train.num_step. Did you mean 'num_steps'\?"),
    ("optim", "lerning_rate", 0.1, r"Unknown config key config.optim.lerning_rate. Did you mean 'learning_rate'\?"),
    (None, "optimizer", {}, r"Unknown config key config.optimizer. Did you mean 'optim'\?"),
    ("train", "parallelism", "shardmap", r"config.train.parallelism='shardmap' is not valid. Did you mean 'shard_map'\?"),
    ("train", "batch_size", "32", r"config.train.batch_size must be an int, got '32'"),
])
def test_misspelled_or_mistyped_config_keys(section, key, value, message, tmp_path, tiny_config):
    raw = tiny_config.to_dict()
    (raw[section] if section else raw)[key] = value
    with pytest.raises(config_schema.ConfigError, match=message):
        dgm_jax.train_and_evaluate(raw, tmp_path / "run")
    assert not (tmp_path / "run").exists()          # rejected before the workdir is even made


def test_incomplete_multiprocess_flags():
    with pytest.raises(ValueError, match=r"--coordinator_address was given without --num_processes, --process_id"):
        distributed.initialize("auto", coordinator_address="10.0.0.1:1234")
    with pytest.raises(ValueError, match="distributed mode 'maybe'"):
        distributed.initialize("maybe")
    assert distributed.initialize("auto") is False       # one process, no cluster: nothing to join


BATCH_SCRIPT = r"""
import json, sys
import dgm_jax
from experiments.configs import pixelcnn
out = {}
for par in ("pmap", "shard_map"):
    for key, value in (("batch_size", 33), ("eval_batch_size", 255)):
        cfg = pixelcnn.get_config("tiny")
        cfg.train.parallelism = par
        setattr(cfg.train, key, value)
        try:
            dgm_jax.train_and_evaluate(cfg, sys.argv[1] + f"/{par}-{key}")
            out[f"{par}/{key}"] = "no error"
        except ValueError as e:
            out[f"{par}/{key}"] = str(e)
print("JSON" + json.dumps(out))
"""


def test_batch_that_does_not_divide_over_two_devices(tmp_path, fresh_python):
    out = json.loads(fresh_python.code(BATCH_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path))), devices=2)
                     .split("JSON", 1)[1])
    for par in ("pmap", "shard_map"):
        assert out[f"{par}/batch_size"] == ("config.train.batch_size=33 does not divide over the 2 devices; "
                                            "use a multiple of 2."), out
        assert out[f"{par}/eval_batch_size"].startswith("config.train.eval_batch_size=255 does not divide over "
                                                        "the 2 devices"), out


# ----------------------------------------------------------------------------- every path that feeds a model
# Unit-level: nothing here trains; each refusal happens before anything is compiled.

def _model(name="bernoulli", *, levels=2, conditional=False, num_classes=3, shape=(2, 3, 1), likelihood="auto"):
    from dgm_jax import config_schema, models
    cfg = config_schema.model_config(name, likelihood, conditional=conditional)
    return models.build_model(cfg, shape, num_classes, num_levels=levels)


def _params(model, cond_width=3):
    x = jnp.zeros((1,) + tuple(model.image_shape), jnp.float32)
    y = jnp.zeros((1, cond_width), jnp.float32) if model.conditional else None
    return jax.jit(lambda k: model.init(k, x, y)["params"])(jax.random.key(0))


@pytest.mark.parametrize("name,levels", [("bernoulli", 2), ("categorical", 4),
                                         ("discretized_logistic_mixture", 256)])
def test_off_grid_pixels_make_log_prob_nan_under_jit(name, levels):
    """Inside jit no host check runs: a value off the K-level grid (above 1, below 0, NaN, between two
    levels; for binary data 0.5, once a 'soft target') gives NaN, never the clipped level's log p."""
    from dgm_jax import observations
    obs = observations.build(name, num_levels=levels, num_channels=1)
    k = levels - 1
    good = [0.0, 1.0, 1.0 / k]
    bad = [1.0 + 1.0 / k, -1.0 / k, np.nan, 0.5 / k, 0.5]
    x = jnp.asarray(good + bad, jnp.float32).reshape(1, 1, -1, 1)
    out = jax.random.normal(jax.random.key(1), (1, 1, x.shape[2], 1, obs.params_per_subpixel))
    lp = np.asarray(jax.jit(obs.log_prob_per_pixel)(out, x))[0, 0]
    assert np.isfinite(lp[:len(good)]).all(), lp
    assert np.isnan(lp[len(good):]).all(), lp                # today: 256/255 -> 255, -1/255 and NaN -> 0
    with pytest.raises(ValueError, match=r"x: .* found .*the first at x\[0, 0, 3, 0\] = "):
        obs.check_data(np.asarray(x), "x")                    # the host check refuses the same values


def test_jitted_log_likelihood_is_nan_for_bad_pixels_and_labels():
    """The traced counterpart of the host checks: the coin's closed-form log p (which bypasses the
    observation model) and a class-conditional model given a label outside [0, num_classes)."""
    from dgm_jax import likelihood
    coin = _model()
    x = np.zeros((3,) + coin.image_shape, np.float32)
    x[1, 0, 0, 0], x[2, 1, 2, 0] = 0.5, 2.0
    lp = np.asarray(jax.jit(likelihood.model_log_prob, static_argnums=0)(coin, _params(coin), x))
    assert np.isfinite(lp[0]) and np.isnan(lp[1:]).all(), lp

    cond = _model(conditional=True)
    y = np.array([2, 3, -1], np.int32)          # one-hot of 3 or -1 is all zeros: a plausible-looking p(x | ?)
    lp = np.asarray(jax.jit(likelihood.model_log_prob, static_argnums=0)(cond, _params(cond), np.zeros_like(x), y))
    assert np.isfinite(lp[0]) and np.isnan(lp[1:]).all(), lp


def test_public_entry_points_refuse_bad_labels_vectors_and_pixels():
    """log_prob, sample and complete check x and y on the host, naming the argument, index and value."""
    from dgm_jax import sampling
    labelled = _model(conditional=True)
    params = _params(labelled)
    x = np.zeros((4,) + labelled.image_shape, np.float32)
    with pytest.raises(ValueError, match=r"log_prob input y: label 3 at index 2 is outside the classes 0\.\.2"):
        dgm_jax.log_prob(labelled, params, x, np.array([0, 1, 3, 2]))
    with pytest.raises(ValueError, match=r"sampling: y: label -1 at index 0 is outside the classes 0\.\.2"):
        sampling.sample(labelled, params, jax.random.key(0), 2, y=np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"sampling: y: y has 3 rows for 2 images"):
        sampling.sample(labelled, params, jax.random.key(0), 2, y=np.array([0, 1, 2]))
    bad_x = x.copy()
    bad_x[3, 1, 2, 0] = 1.5
    with pytest.raises(ValueError, match=r"complete: x: .*the first at x\[3, 1, 2, 0\] = 1\.5"):
        sampling.complete(labelled, params, jax.random.key(0), bad_x, 1, y=np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"log_prob input x: .*found nan .*x\[0, 0, 0, 0\] = nan"):
        dgm_jax.log_prob(labelled, params, np.full_like(x, np.nan), np.zeros(4, np.int32))

    vectors = _model(conditional=True, num_classes=0)      # conditioned on vectors of width 3
    params = _params(vectors, cond_width=3)
    with pytest.raises(ValueError, match=r"log_prob input y: condition vectors have width 5, the model reads "
                                         r"vectors of width 3"):
        dgm_jax.log_prob(vectors, params, x, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"sampling: y: condition vectors must be finite; y\[1, 2\] = inf"):
        sampling.sample(vectors, params, jax.random.key(0), 2, y=np.array([[0, 0, 0], [0, 0, np.inf]]))


def _dataset(**images_or_labels):
    from dgm_jax.data import ImageDataset
    rng = np.random.default_rng(0)
    images = {s: (rng.random((6, 2, 3, 1)) < 0.5).astype(np.float32) for s in ("train", "validation", "test")}
    labels = {s: np.arange(6, dtype=np.int32) % 3 for s in images}
    for key, value in images_or_labels.items():
        split, kind = key.rsplit("_", 1)
        (images if kind == "images" else labels)[split] = value
    return ImageDataset(name="mine", images=images, labels=labels, num_classes=3, binarization="static",
                        threshold=0.5)


def test_training_pipeline_and_build_run_refuse_bad_values_and_labels(tiny_config):
    """A data set built in code (not by load_dataset) is checked where it enters training: the grain
    stream and build_run. Today a NaN pixel binarizes to 0 and label 3 of 3 classes one-hots to zeros."""
    from dgm_jax import data
    grey = np.zeros((6, 2, 3, 1), np.float32)
    grey[4, 1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"data set 'mine': split 'train' has intensities outside \[0, 1\] or "
                                         r"not finite: image 4 x\[4, 1, 0, 0\] = nan"):
        data.train_iterator(_dataset(train_images=grey), batch_size=2, seed=0)
    with pytest.raises(ValueError, match=r"data set 'mine': split 'train' labels: label 3 at index 1 is outside "
                                         r"the classes 0\.\.2"):
        data.train_iterator(_dataset(train_labels=np.array([0, 3, 1, 2, 0, 1], np.int32)), batch_size=2, seed=0)
    soft = np.zeros((6, 2, 3, 1), np.float32)
    soft[2, 0, 1, 0] = 0.5
    with pytest.raises(ValueError, match=r"split 'test': intensities must be 0/1 \(binarization='static'\); "
                                         r"image 2 x\[2, 0, 1, 0\] = 0\.5"):
        dgm_jax.build_run(tiny_config, ds=_dataset(test_images=soft))


def test_evaluation_refuses_images_off_the_model_grid():
    """split_log_probs (validation, test, evaluate_checkpoint.py) checks the split against the model
    before the first batch is compiled; the message names the split."""
    from dgm_jax import evaluation, parallel
    model = _model("bernoulli", levels=4, likelihood="categorical")
    runner = parallel.make_runner("pmap", model=model)
    images = np.full((5,) + model.image_shape, 1 / 3, np.float32)
    images[3, 0, 2, 0] = 0.5
    with pytest.raises(ValueError, match=r"data set 'mine' split 'test' images: a categorical likelihood with 4 "
                                         r"levels .* found 0\.5 .*x\[3, 0, 2, 0\] = 0\.5"):
        evaluation.split_log_probs(runner, runner.put_state(_params(model)), images, None, 4,
                                   where="data set 'mine' split 'test'")
