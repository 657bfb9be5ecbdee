"""Sweeps: members from overrides, a 2-member sweep end to end (parallel), its report, and a rerun that does nothing."""
import csv
import json

import pytest

from dgm_jax import config_schema, sweeps
from dgm_jax.metric_writers import read_metrics
from conftest import REPO

SWEEP = '''
from experiments.configs import pixelcnn

def get_sweep(smoke):
    config = pixelcnn.get_config("tiny")
    config.optim.ema_decay = 0.0
    config.train.num_steps = 20 if smoke else 1000
    config.train.eval_every = config.train.log_every = config.train.checkpoint_every = 10
    config.train.num_samples = 0
    return config, [("plain", {"model.num_features": 4}),
                    {"model.num_features": 8, "penalties": (("l2", 0.01, "kernels"),)}]
'''


def test_members_grid_names_and_override_errors():
    assert sweeps.grid({"a.x": [1, 2], "b.y": ["u", "v"]}) == [
        {"a.x": 1, "b.y": "u"}, {"a.x": 1, "b.y": "v"}, {"a.x": 2, "b.y": "u"}, {"a.x": 2, "b.y": "v"}]
    assert sweeps.member_name({"model.num_features": 8, "optim.learning_rate": 0.001}) == \
        "num_features=8,learning_rate=0.001"
    assert sweeps.member_name({"penalties": (("l2", 0.01, "kernels"),)}) == "penalties=l2-0.01-kernels"
    assert sweeps.member_name({"penalties": ()}) == "penalties=none"
    with pytest.raises(ValueError, match="unique"):
        sweeps.make_members([{"model.num_layers": 1}, {"model.num_layers": 1}])
    with pytest.raises(ValueError, match="path-safe"):
        sweeps.make_members([("a/b", {})])
    from experiments.configs import pixelcnn
    base = pixelcnn.get_config("tiny")
    with pytest.raises(config_schema.ConfigError, match="model.num_layer="):
        sweeps.apply_overrides(base, {"model.num_layer": 3})
    with pytest.raises(config_schema.ConfigError, match="modle"):
        sweeps.apply_overrides(base, {"modle.num_layers": 3})
    cfg = sweeps.resolve(base, sweeps.Member("m", {"model.num_layers": 3, "penalties": (("l1", 0.1),)}))
    assert cfg["model"]["num_layers"] == 3 and cfg["penalties"][0]["name"] == "l1"
    assert base.model.num_layers == 2                               # the base is not modified
    with pytest.raises(config_schema.ConfigError):                  # penalties are validated by the schema
        sweeps.resolve(base, sweeps.Member("m", {"penalties": (("l2",),)}))


def test_shipped_sweeps_resolve_in_both_variants():
    for name in ("capacity", "penalty", "architecture"):
        for smoke in (True, False):
            base, members = sweeps.load_sweep(REPO / "experiments" / "sweeps" / f"{name}.py", smoke)
            assert len(members) >= 2
            for m in members:
                sweeps.resolve(base, m)                             # every override applies and validates


def _snapshot(wd, names):
    out = {}
    for n in names:
        for f in ("results.json", "sweep_member.json", "metrics.jsonl"):
            p = wd / n / f
            out[(n, f)] = (p.stat().st_mtime_ns, p.read_bytes())
    return out


def test_two_member_sweep_report_and_rerun_does_no_work(tmp_path, fresh_python):
    sweep_file = tmp_path / "two.py"
    sweep_file.write_text(SWEEP)
    wd = tmp_path / "sweep"
    events = []
    rows = sweeps.run_sweep(sweep_file, wd, smoke=True, parallel=2, on_event=events.append)
    names = ["plain", "num_features=8,penalties=l2-0.01-kernels"]
    assert [r["member"] for r in rows] == names and all(r["status"] == "done" for r in rows), events

    with open(wd / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["member"] for r in table] == names
    for r in table:
        for k in ("num_params", "best_val_nll", "test_nll", "final_train_nll", "wall_time_s"):
            assert float(r[k]) > 0, (k, r)
    assert int(table[0]["num_params"]) < int(table[1]["num_params"])
    assert table[1]["penalties"] == "l2-0.01-kernels" and table[0]["model.num_features"] == "4"
    md = (wd / "results.md").read_text().splitlines()
    assert sum(line.startswith(("| plain", "| num_features=8")) for line in md) == 2
    assert (wd / "capacity.png").stat().st_size > 1000 and (wd / "penalty.png").stat().st_size > 1000

    # The best validation NLL and test NLL are the members' own results; the penalty was logged
    # and added to the NLL (loss = nll + lambda R).
    for row in rows:
        res = json.loads((wd / row["member"] / "results.json").read_text())
        assert row["best_val_nll"] == res["best_val_nll"] and row["test_nll"] == res["test_nll_nats"]
    train = [r for r in read_metrics(wd / names[1] / "metrics.jsonl") if r["split"] == "train"]
    assert train and all(r["loss"] == pytest.approx(r["nll"] + 0.01 * r["penalty/l2_kernels"], rel=1e-5)
                         for r in train)

    # Rerunning (through the CLI) does no work: members skipped, their files untouched.
    before = _snapshot(wd, names)
    proc = fresh_python.script("experiments/run_sweep.py", f"--sweep={sweep_file}", f"--workdir={wd}", "--smoke")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("[skip]") == 2 and "[run ]" not in proc.stdout
    assert _snapshot(wd, names) == before
    with open(wd / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_finished_means_done_for_this_config(tmp_path):
    cfg = {"train": {"num_steps": 20}}
    d = tmp_path / "m"
    d.mkdir()
    assert not sweeps.is_finished(d, cfg)
    (d / "results.json").write_text(json.dumps({"final_step": 20, "stopped_early": False}))
    (d / sweeps.MEMBER_FILE).write_text(json.dumps({"status": "running", "config": cfg}))
    assert not sweeps.is_finished(d, cfg)                           # interrupted: resume it
    (d / sweeps.MEMBER_FILE).write_text(json.dumps({"status": "done", "config": cfg}))
    assert sweeps.is_finished(d, cfg)
    assert not sweeps.is_finished(d, {"train": {"num_steps": 40}})  # a changed config continues the run


def test_model_fields_added_later_count_at_their_defaults(tmp_path):
    """A run recorded before its model gained a field (here PixelSNAIL's key_value_unit) is the
    same run as the config that holds that field at its default, for a sweep's or a table's record
    and for a workdir's identity; any other value of the field is another run."""
    from dgm_jax import rundir
    cfg = {"model": config_schema.model_section("pixelsnail", "discretized_logistic_mixture"),
           "train": {"num_steps": 20}}
    old = {**cfg, "model": {k: v for k, v in cfg["model"].items() if k != "key_value_unit"}}
    on = {**cfg, "model": {**cfg["model"], "key_value_unit": True}}
    assert cfg["model"]["key_value_unit"] is False
    d = tmp_path / "m"
    d.mkdir()
    (d / "results.json").write_text(json.dumps({"final_step": 20, "stopped_early": False}))
    (d / sweeps.MEMBER_FILE).write_text(json.dumps({"status": "done", "config": old}))
    assert sweeps.is_finished(d, cfg) and not sweeps.is_finished(d, on)

    info = {"likelihood": "discretized_logistic_mixture", "output_layout": "", "num_levels": 256}
    (d / rundir.RUN_INFO).write_text(json.dumps({**info, "model": old["model"]}))
    rundir.check_run_identity(d, {**info, "model": cfg["model"]})
    with pytest.raises(rundir.CheckpointError, match=r"model.key_value_unit: False -> True"):
        rundir.check_run_identity(d, {**info, "model": on["model"]})


def test_a_preempted_member_is_not_failed_and_stops_the_sweep(tmp_path, monkeypatch):
    """SIGTERM inside a member (train raises Preempted after saving): the record says 'preempted',
    not 'failed', and the exception reaches the caller, so the sweep (or the table) stops there
    instead of going on to the next member."""
    import dgm_jax
    from dgm_jax import sweeps
    from dgm_jax.train import Preempted
    from experiments.configs import pixelcnn

    def preempted(cfg, workdir):
        raise Preempted("Pre-empted (SIGTERM): saved a checkpoint at step 7", 7)

    monkeypatch.setattr(dgm_jax, "train_and_evaluate", preempted)
    cfg = sweeps.resolved(pixelcnn.get_config("tiny"))
    with pytest.raises(Preempted):
        sweeps.run_member("m", {}, cfg, str(tmp_path / "m"), log_to_file=False)
    rec = sweeps.read_member(tmp_path / "m")
    assert rec["status"] == "preempted" and "error" not in rec and rec["launches"] == 1
    assert not sweeps.is_finished(tmp_path / "m", cfg)


def test_a_killed_launch_still_counts_in_the_wall_time(tmp_path, monkeypatch):
    """A launch killed before it could record its time (its record still says 'running') is counted
    by the next launch: from when it wrote its record (launch_started, or the record file's time for
    older records) to its last write in the member's directory; a launch that ended properly adds
    nothing more."""
    import os
    import time
    import dgm_jax
    from dgm_jax import rundir, sweeps
    from dgm_jax.train import Preempted
    from experiments.configs import pixelcnn

    def preempted(cfg, workdir):
        raise Preempted("Pre-empted (SIGTERM): saved a checkpoint at step 7", 7)

    monkeypatch.setattr(dgm_jax, "train_and_evaluate", preempted)
    cfg = sweeps.resolved(pixelcnn.get_config("tiny"))
    now = time.time()
    for old_record in (False, True):
        d = tmp_path / f"m{int(old_record)}"
        d.mkdir()
        killed = {"name": "m", "status": "running", "wall_time_s": 500.0, "launches": 2}
        if not old_record:
            killed["launch_started"] = now - 1000
        rundir.write_json_atomic(d / sweeps.MEMBER_FILE, killed)
        os.utime(d / sweeps.MEMBER_FILE, (now - 1000, now - 1000))
        (d / "train.log").write_text("the killed launch's last line\n")
        os.utime(d / "train.log", (now - 300, now - 300))
        with pytest.raises(Preempted):
            sweeps.run_member("m", {}, cfg, str(d), log_to_file=False)
        rec = sweeps.read_member(d)
        assert rec["launches"] == 3 and rec["killed_launches"] == 1
        assert 500 + 700 <= rec["wall_time_s"] < 500 + 700 + 60, rec["wall_time_s"]
        # The pre-empted launch recorded its own time: the next launch adds none for it.
        os.utime(d / "train.log", (now + 5000, now + 5000))
        before = rec["wall_time_s"]
        with pytest.raises(Preempted):
            sweeps.run_member("m", {}, cfg, str(d), log_to_file=False)
        rec = sweeps.read_member(d)
        assert rec["killed_launches"] == 1 and before <= rec["wall_time_s"] < before + 60
