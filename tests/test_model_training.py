"""Every model trains through the library entry point of launch.py and learns; conditioning is used.
(256-level learning: the cifar10_tiny tests of tests/test_pixelcnn_pp.py and test_pixelsnail.py.)"""
import numpy as np
import pytest

import dgm_jax
from dgm_jax import models
from dgm_jax.metric_writers import read_metrics
from experiments.configs import base


def _tiny(tiny_config, name, steps):
    c = base.with_model(tiny_config, name, **({"num_masks": 2, "num_eval_masks": 2} if name == "made" else {}))
    base.tiny(c)                                   # the tiny sizes of the new model's own fields
    if name == "pixelcnn_pp":
        # The down pass's gated ResNet blocks only (half the compile time): the up pass's blocks
        # are checked for causality and reach in tests/test_pixelcnn_pp.py.
        c.model.num_resnet = 0
    c.train.num_steps = steps
    c.train.eval_every = steps // 2                # two validations: halfway and at the end
    c.train.checkpoint_every = steps               # one checkpoint (resume is tested elsewhere)
    c.train.log_every = steps // 2
    c.train.num_samples = 0
    return c


# gated_pixelcnn: trained through the same entry point, and shown to learn, by the class-conditional
# test below (the quickstart's model); pixelcnn by tests/test_train.py's resumed tiny run.
@pytest.mark.parametrize("name", [n for n in models.MODEL_NAMES if n not in ("gated_pixelcnn", "pixelcnn")])
def test_each_model_lowers_validation_nll_on_digits(tmp_path, tiny_config, name):
    dgm_jax.train_and_evaluate(_tiny(tiny_config, name, 30), tmp_path / name)
    val = [r["nll"] for r in read_metrics(tmp_path / name / "metrics.jsonl") if r["split"] == "validation"]
    assert len(val) == 2
    assert val[-1] < val[0], val


def test_class_conditional_model_prefers_the_true_label(tmp_path):
    """The quickstart's model (class-conditional gated PixelCNN), shrunk: trained through the
    library entry point, it scores test digits higher under their true label. (The end-of-run
    grids of a class-conditional run: tests/test_levels_table.py.)"""
    from experiments.configs import quickstart
    c = quickstart.get_config("tiny")
    c.train.num_steps = 60
    c.train.eval_every = c.train.checkpoint_every = c.train.log_every = 30
    c.model.num_features = 16
    c.train.num_samples = 0
    dgm_jax.train_and_evaluate(c, tmp_path / "cond")
    run = dgm_jax.load(tmp_path / "cond")
    ds = dgm_jax.data.load_dataset(run.config.data)
    x, y = ds.eval_images("test"), ds.labels["test"]
    true = np.asarray(dgm_jax.log_prob(run.model, run.params, x, y))
    wrong = np.asarray(dgm_jax.log_prob(run.model, run.params, x, (y + 1 + y % 3) % ds.num_classes))
    print("true label preferred on", np.mean(true > wrong))
    assert np.mean(true > wrong) > 0.7, np.mean(true > wrong)
