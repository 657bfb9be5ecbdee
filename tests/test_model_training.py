"""Every model trains through the library entry point of launch.py and learns (conditioning is used:
tests/test_evaluate_checkpoint.py).
(256-level learning: the cifar10_tiny tests of tests/test_pixelcnn_pp.py and test_pixelsnail.py.)"""
import pytest

import dgm_jax
from dgm_jax import models
from dgm_jax.metric_writers import read_metrics
from experiments.configs import base


def _tiny(tiny_config, name, steps):
    c = base.with_model(tiny_config, name, **({"num_masks": 2, "num_eval_masks": 2} if name == "made" else {}))
    base.tiny(c)                                   # the tiny sizes of the new model's own fields
    c.train.num_steps = steps
    c.train.eval_every = steps // 2                # two validations: halfway and at the end
    c.train.checkpoint_every = steps               # one checkpoint (resume is tested elsewhere)
    c.train.log_every = steps // 2
    c.train.num_samples = 0
    return c


# Trained through the same entry point, and shown to learn, elsewhere: gated_pixelcnn (it prefers
# the true label) by tests/test_evaluate_checkpoint.py's quickstart run; pixelcnn by
# tests/test_train.py's resumed tiny run; pixelcnn_pp and pixelsnail (256 levels, RGB) by their
# cifar10_tiny tests in tests/test_pixelcnn_pp.py and tests/test_pixelsnail.py.
ELSEWHERE = ("gated_pixelcnn", "pixelcnn", "pixelcnn_pp", "pixelsnail")


@pytest.mark.parametrize("name", [n for n in models.MODEL_NAMES if n not in ELSEWHERE])
def test_each_model_lowers_validation_nll_on_digits(tmp_path, tiny_config, name):
    dgm_jax.train_and_evaluate(_tiny(tiny_config, name, 30), tmp_path / name)
    val = [r["nll"] for r in read_metrics(tmp_path / name / "metrics.jsonl") if r["split"] == "validation"]
    assert len(val) == 2
    assert val[-1] < val[0], val
