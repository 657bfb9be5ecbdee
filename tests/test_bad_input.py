"""Bad input gets a clear error, end to end through train_and_evaluate (or launch.py), before any training.

Each case checks that the message names the problem (and the key, file or
setting to fix); data-level details of the npz checks are in test_data.py.
"""
import json

import numpy as np
import pytest

import dgm_jax
from dgm_jax import config_schema, distributed
from conftest import run_python


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
    "nan": (_nan_train, r"key 'train': 1 NaN and 0 infinite values"),
    "negative": (lambda: {**_good(), "test": -_images(10).astype(np.int16)},
                 r"key 'test': negative values \(min -1\)"),
    "dtype": (lambda: {**_good(), "train": _images(40).astype(np.complex64)}, r"key 'train': wrong dtype complex64"),
    "rank": (lambda: {**_good(), "train": np.zeros((40, 64), np.uint8)},
             r"key 'train': images must be \[N, H, W\] or \[N, H, W, C\], got shape \(40, 64\)"),
    "labels_range": (lambda: _labels(test_labels=np.full(10, 7)),
                     r"key 'test_labels': labels out of range: label 7 is not among the train classes 0..2"),
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


def test_batch_that_does_not_divide_over_two_devices(tmp_path):
    out = json.loads(run_python(BATCH_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path))), devices=2)
                     .split("JSON", 1)[1])
    for par in ("pmap", "shard_map"):
        assert out[f"{par}/batch_size"] == ("config.train.batch_size=33 does not divide over the 2 devices; "
                                            "use a multiple of 2."), out
        assert out[f"{par}/eval_batch_size"].startswith("config.train.eval_batch_size=255 does not divide over "
                                                        "the 2 devices"), out
