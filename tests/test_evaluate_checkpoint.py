"""Scoring and sampling saved runs: experiments/evaluate_checkpoint.py and sample_checkpoint.py.

Two tiny runs are trained once per module on the 8x8 digits: a PixelCNN (pixelcnn.py:tiny, 20
steps) and the quickstart's class-conditional gated PixelCNN (quickstart.py:tiny with 16 maps,
60 steps), which also shows that conditioning is learned: it prefers the true label.
"""
import json
import math
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

import dgm_jax
from dgm_jax import checkpointing, evaluation


STEPS = {"pixelcnn": 20, "gated_cond": 60}      # each run's last step (and checkpoint)


def _tiny(name: str):
    import importlib
    module = {"pixelcnn": "pixelcnn", "gated_cond": "quickstart"}[name]
    config = importlib.import_module(f"experiments.configs.{module}").get_config("tiny")
    config.train.num_steps = STEPS[name]
    config.train.eval_every = config.train.checkpoint_every = config.train.log_every = STEPS[name] // 2
    config.train.num_samples = 0
    if name == "gated_cond":
        config.model.num_features = 16
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name in STEPS:
        dgm_jax.train_and_evaluate(_tiny(name), root / name)
        out[name] = root / name
    return out


def test_class_conditional_model_prefers_the_true_label(runs):
    """The quickstart's model, shrunk and trained through the library entry point, scores test
    digits higher under their true label than under another."""
    run = dgm_jax.load(runs["gated_cond"])
    ds = dgm_jax.data.load_dataset(run.config.data)
    x, y = ds.eval_images("test"), ds.labels["test"]
    true = np.asarray(dgm_jax.log_prob(run.model, run.params, x, y))
    wrong = np.asarray(dgm_jax.log_prob(run.model, run.params, x, (y + 1 + y % 3) % ds.num_classes))
    assert np.mean(true > wrong) > 0.7, np.mean(true > wrong)


def _script(fresh_python, name, *args, devices=1):
    return fresh_python.script(f"experiments/{name}.py", *args, devices=devices)


def _direct_log_probs(run, split):
    ds = dgm_jax.data.load_dataset(run.config.data, seed=run.config.seed)
    y = ds.labels[split] if run.config.model.conditional else None
    return np.asarray(dgm_jax.log_prob(run.model, run.params, ds.eval_images(split), y), np.float64), ds


@pytest.mark.parametrize("name", ["pixelcnn", "gated_cond"])
def test_nll_is_the_exact_mean_over_the_whole_split(runs, name):
    res = evaluation.evaluate_checkpoint(runs[name], "test")
    lp, ds = _direct_log_probs(dgm_jax.load(runs[name]), "test")
    assert res["num_examples"] == len(ds.images["test"]) == len(lp)
    np.testing.assert_allclose(res["nll_nats"], -lp.mean(), rtol=1e-5)
    np.testing.assert_allclose(res["nll_stderr"], np.std(lp, ddof=1) / math.sqrt(len(lp)), rtol=1e-4)
    np.testing.assert_allclose(res["bits_per_dim"], res["nll_nats"] / (64 * math.log(2)), rtol=1e-6)
    results = json.loads((runs[name] / "results.json").read_text())      # what training reported
    assert res["step"] == results["best_step"]
    np.testing.assert_allclose(res["nll_nats"], results["test_nll_nats"], rtol=1e-5)
    if name == "gated_cond":       # scored given the true labels, and the labels matter
        assert res["conditional"] and res["likelihood"] == "p(x | y = true label)"
        assert res["nll_given_true_label_nats"] == res["nll_nats"]
        run = dgm_jax.load(runs[name])
        wrong = dgm_jax.log_prob(run.model, run.params, ds.eval_images("test"), (ds.labels["test"] + 1) % 10)
        assert not np.allclose(np.asarray(wrong), lp)
        # The marginal -log sum_y p(y) p(x | y), p(y) the training label frequencies, by hand.
        x = ds.eval_images("test")
        prior = np.bincount(ds.labels["train"], minlength=10) / len(ds.labels["train"])
        per_y = np.stack([np.asarray(dgm_jax.log_prob(run.model, run.params, x, np.full(len(x), k, np.int32)),
                                     np.float64) + np.log(prior[k]) for k in range(10)])
        marginal = np.logaddexp.reduce(per_y, axis=0)
        np.testing.assert_allclose(res["marginal_nll_nats"], -marginal.mean(), rtol=1e-5)
        # p(x) >= p(y_true) p(x | y_true): at most E[log 1/p(y_true)] nats above the conditional NLL.
        assert res["marginal_nll_nats"] <= res["nll_nats"] + np.mean(-np.log(prior[ds.labels["test"]])) + 1e-6
    latest = evaluation.evaluate_checkpoint(runs[name], "validation", "latest")
    assert latest["step"] == STEPS[name] and latest["split"] == "validation"


def test_script_writes_the_json_on_two_devices(runs, tmp_path, fresh_python):
    out = tmp_path / "eval.json"
    proc = _script(fresh_python, "evaluate_checkpoint", f"--workdir={runs['pixelcnn']}", "--split=test",
                   "--checkpoint=latest", f"--output={out}", devices=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    for key in ("nll_nats", "nll_stderr", "bits_per_dim", "num_examples", "split", "step", "checkpoint"):
        assert key in res, key
    assert res["split"] == "test" and res["checkpoint"] == "latest" and res["step"] == 20
    assert res["num_devices"] == 2 and not res["conditional"]
    direct = evaluation.evaluate_checkpoint(runs["pixelcnn"], "test", "latest")
    np.testing.assert_allclose(res["nll_nats"], direct["nll_nats"], rtol=1e-5)
    assert res["num_examples"] == direct["num_examples"]
    assert "nats" in proc.stdout and str(out) in proc.stdout


def _refused(proc, *words):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for w in words:
        assert w in proc.stderr, (w, proc.stderr[-2000:])


def test_bad_inputs_are_refused_clearly(runs, tmp_path, fresh_python):
    # A run directory without any checkpoint.
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)     # as left by a run killed before its first save
    for name in ("config.json", "run_info.json"):
        shutil.copy(runs["pixelcnn"] / name, empty / name)
    _refused(_script(fresh_python, "evaluate_checkpoint", f"--workdir={empty}"), "No checkpoint found")   # exit 1, stderr
    # A split the data set does not have (the scripts print the same messages as the library).
    with pytest.raises(ValueError, match="split 'tset' does not exist"):
        evaluation.evaluate_checkpoint(runs["pixelcnn"], "tset")
    # config.json edited: the model built from it has parameters of other shapes.
    edited = tmp_path / "edited"
    shutil.copytree(runs["pixelcnn"], edited)
    cfg = json.loads((edited / "config.json").read_text())
    cfg["model"]["num_features"] = 16
    (edited / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(checkpointing.CheckpointError, match="does not match the model"):
        evaluation.evaluate_checkpoint(edited, "test")
    _refused(_script(fresh_python, "sample_checkpoint", f"--workdir={edited}"), "does not match the model")
    # run_info.json edited (same parameter shapes, other image size): caught in-process.
    info_edited = tmp_path / "info_edited"
    shutil.copytree(runs["pixelcnn"], info_edited)
    info = json.loads((info_edited / "run_info.json").read_text())
    info["image_shape"] = [9, 9, 1]
    (info_edited / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(checkpointing.CheckpointError, match=r"disagree.*image_shape"):
        evaluation.evaluate_checkpoint(info_edited, "test")
    with pytest.raises(checkpointing.CheckpointError, match="No checkpoint at step 7"):
        evaluation.evaluate_checkpoint(runs["pixelcnn"], "test", "7")


def test_conditional_samples_differ_by_class(runs):
    run = dgm_jax.load(runs["gated_cond"])
    key = jax.random.key(0)
    per_class = [np.asarray(dgm_jax.sample(run.model, run.params, key, 4, y=np.full(4, c, np.int32)))
                 for c in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(per_class[a], per_class[b]), (a, b)


def test_sample_script_writes_grids(runs, tmp_path, fresh_python):
    h = 8                                       # digits; image_grid: (rows * (h + 1) + 1) * 3 pixels high
    out = tmp_path / "cond"
    proc = _script(fresh_python, "sample_checkpoint", f"--workdir={runs['gated_cond']}", f"--output_dir={out}",
                   "--num_samples=20", "--num_images=2", "--num_completions=3", "--seed=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_class = Image.open(out / "samples_by_class.png")
    assert by_class.size == ((2 * (h + 1) + 1) * 3, (10 * (h + 1) + 1) * 3)     # 10 classes x 2
    done = np.asarray(Image.open(out / "completions.png"))
    assert done.shape[:2] == ((2 * (h + 1) + 1) * 3, (5 * (h + 1) + 1) * 3)    # original, given, 3
    # In each row the top half of every completion equals the original's.
    cell = lambda r, c: done[3 * (1 + r * (h + 1)): 3 * (1 + r * (h + 1) + h), 3 * (1 + c * (h + 1)): 3 * (1 + c * (h + 1) + h)]
    for r in range(2):
        for c in (1, 2, 3, 4):
            np.testing.assert_array_equal(cell(r, c)[: 3 * h // 2], cell(r, 0)[: 3 * h // 2])
    out2 = tmp_path / "uncond"
    proc = _script(fresh_python, "sample_checkpoint", f"--workdir={runs['pixelcnn']}", f"--output_dir={out2}",
                   "--num_samples=16", "--outputs=samples", "--method=naive", "--temperature=0.8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(out2 / "samples.png").size == ((8 * (h + 1) + 1) * 3, (2 * (h + 1) + 1) * 3)
    assert not (out2 / "completions.png").exists()
