"""End to end: a tiny run writes everything, resumes, continues, and refuses foreign workdirs."""
import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import dgm_jax
from dgm_jax import assembly, checkpointing, config_schema, rundir
from dgm_jax.metric_writers import read_metrics


def _state(workdir, step):
    """The whole saved TrainState of `step` as a nested dict (params, opt_state, ema_params, rng, ...)."""
    ckpt = checkpointing.Checkpointer(workdir, async_save=False)
    state = ckpt.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore()))["state"]
    ckpt.close()
    return state


def test_tiny_run_outputs_resume_and_continue(tmp_path, tiny_config):
    tiny_config.train.num_steps = 20
    wd = tmp_path / "run"
    res = dgm_jax.train_and_evaluate(tiny_config, wd)
    for name in ("config.json", "run_info.json", "metrics.jsonl", "learning_curve.png", "samples.png",
                 "results.json"):
        assert (wd / name).is_file(), name
    assert list((wd / "tensorboard").glob("events.out.tfevents.*"))
    results = json.loads((wd / "results.json").read_text())
    assert results["final_step"] == res["final_step"] == 20
    ds = dgm_jax.data.load_dataset(dgm_jax.config_schema.from_config_dict(tiny_config).data)
    assert results["num_test_examples"] == len(ds.images["test"])      # every test image scored
    assert np.isfinite(results["test_nll_nats"]) and results["test_nll_nats"] > 0
    recs = read_metrics(wd / "metrics.jsonl")
    assert {r["split"] for r in recs} >= {"train", "validation", "test"}
    assert all(r["num_examples"] == len(ds.images["validation"]) for r in recs if r["split"] == "validation")
    assert 20 in checkpointing.Checkpointer(wd).all_steps()
    # The logged parameter norm is that of the parameters after the logged step (read at log time).
    last = [r for r in recs if r["split"] == "train"][-1]
    state20 = _state(wd, 20)
    leaves = jax.tree.leaves(state20["params"])
    # The EMA (0.99) is a real average, not a copy of the parameters. (That a resume restores it,
    # with the optimizer moments, RNG and counters, bit for bit: tests/test_faults.py.)
    assert any(not np.array_equal(np.asarray(p), np.asarray(e))
               for p, e in zip(leaves, jax.tree.leaves(state20["ema_params"])))
    assert last["step"] == 20
    assert last["param_norm"] == pytest.approx(
        np.sqrt(sum(np.sum(np.square(np.asarray(p, np.float64))) for p in leaves)), rel=1e-5)

    # Same command again: resumes at step 20 and trains nothing more.
    before = (wd / "metrics.jsonl").read_text().count('"split": "train"')
    res2 = dgm_jax.train_and_evaluate(tiny_config, wd)
    assert res2["final_step"] == 20
    assert (wd / "metrics.jsonl").read_text().count('"split": "train"') == before

    # A larger num_steps continues from 20, not from scratch.
    tiny_config.train.num_steps = 40
    res3 = dgm_jax.train_and_evaluate(tiny_config, wd)
    assert res3["final_step"] == 40
    train_steps = [r["step"] for r in read_metrics(wd / "metrics.jsonl") if r["split"] == "train"]
    assert train_steps == sorted(set(train_steps)) and max(train_steps) == 40
    assert 40 in checkpointing.Checkpointer(wd).all_steps()
    # It learns across the resume: the PixelCNN's learning check (the other models': tests/test_model_training.py).
    val = [r["nll"] for r in read_metrics(wd / "metrics.jsonl") if r["split"] == "validation"]
    assert len(val) == 2 and val[1] < val[0], val


def test_run_identity_refuses_another_model_likelihood_or_data(tmp_path, tiny_config):
    """rundir.check_run_identity, the unit: the same run passes, a changed model field,
    likelihood or data layout is refused naming the difference; the dtype may change."""
    cfg = config_schema.from_config_dict(tiny_config)
    run = assembly.build_run(cfg)
    rundir.write_json_atomic(tmp_path / rundir.RUN_INFO, run.info)
    rundir.check_run_identity(tmp_path, run.info)
    bf16 = assembly.build_run(config_schema.from_config_dict({**tiny_config.to_dict(), "model": {
        **tiny_config.model.to_dict(), "dtype": "bfloat16"}}))
    rundir.check_run_identity(tmp_path, bf16.info)
    for change, message in ((("model", "num_features", 16), r"num_features: 8 -> 16"),
                            (("data", "binarization", "none"), r"likelihood: 'bernoulli' -> 'categorical'"),
                            (("data", "name", "mnist5k"), r"image_shape")):
        raw = tiny_config.to_dict()
        raw[change[0]] = {**raw[change[0]], change[1]: change[2]}
        other = assembly.build_run(config_schema.from_config_dict(raw))
        with pytest.raises(rundir.CheckpointError, match=r"different model or data.*" + message):
            rundir.check_run_identity(tmp_path, other.info)


def test_training_refuses_a_workdir_of_another_model(tmp_path, tiny_config):
    tiny_config.train.num_steps = 10
    tiny_config.train.eval_every = 10
    tiny_config.train.checkpoint_every = 10
    tiny_config.train.log_every = 10
    dgm_jax.train_and_evaluate(tiny_config, tmp_path / "run")
    tiny_config.model.num_features = 16
    with pytest.raises(checkpointing.CheckpointError, match=r"different model.*num_features: 8 -> 16"):
        dgm_jax.train_and_evaluate(tiny_config, tmp_path / "run")
    assert checkpointing.Checkpointer(tmp_path / "run").all_steps() == [10]       # nothing lost


def test_load_log_prob_and_sample_from_workdir(tmp_path, tiny_config):
    tiny_config.train.num_steps = 20
    res = dgm_jax.train_and_evaluate(tiny_config, tmp_path / "run")
    run = dgm_jax.load(tmp_path / "run")
    assert run.step == res["best_step"]
    ds = dgm_jax.data.load_dataset(run.config.data)
    x = ds.eval_images("test")
    lp = np.asarray(dgm_jax.log_prob(run.model, run.params, x))
    assert lp.shape == (len(x),)
    np.testing.assert_allclose(-lp.mean(), res["test_nll_nats"], rtol=1e-5)
    xs = np.asarray(dgm_jax.sample(run.model, run.params, jax.random.key(0), 3))
    assert xs.shape == (3,) + run.image_shape and set(np.unique(xs)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="pixel values 0/1"):
        dgm_jax.log_prob(run.model, run.params, x * 0.5)


def test_unwritable_workdir_fails_before_training(tmp_path, tiny_config):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match="not writable"):
        dgm_jax.train_and_evaluate(tiny_config, blocker / "run")


def test_launch_cli_overrides_and_rejects_typos(tmp_path, fresh_python):
    base = ["launch.py", "--config=experiments/configs/pixelcnn.py:tiny", f"--workdir={tmp_path / 'cli'}"]
    # The model switched over the pixelcnn file (its own fields dropped), made's own field set too.
    ok = fresh_python.script(*base, "--config.model.name=made", "--config.model.num_hidden=16",
                             "--config.train.num_steps=10", "--config.train.eval_every=10",
                             "--config.train.checkpoint_every=10", "--config.train.log_every=10",
                             "--config.penalties=(('l2', 1e-3, 'kernels'),)")      # as the README shows
    assert ok.returncode == 0, ok.stderr[-3000:]
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert saved["train"]["num_steps"] == 10
    assert saved["model"]["name"] == "made" and saved["model"]["num_hidden"] == 16
    assert "first_kernel_size" not in saved["model"]
    assert [(p["name"], p["weight"], p["mask"]) for p in saved["penalties"]] == [("l2", 1e-3, "kernels")]
    assert (tmp_path / "cli" / "samples.png").is_file()
    bad = fresh_python.script(*base, "--config.model.num_layer=3", timeout=120)
    assert bad.returncode != 0 and "num_layer" in bad.stderr
