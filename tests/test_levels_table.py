"""experiments/levels_table.py: the smoke table (embedded 8x8 digits and photo patches) trains the asked
rows, records every candidate in tried.csv, reads the test split only to score the chosen candidate, once,
writes both sections with the anchors and a class-conditional grid per row; a rerun does no work; a
published row's record stands for it in a fresh workdir; a row whose model is not registered is reported as such; missing MNIST is refused by name."""
import csv
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from dgm_jax import evaluation, models
from dgm_jax.data import datasets
from experiments import levels_table
from experiments.configs import levels_table as row_configs

# One row (the suite's time; the other rows' smoke configs are built, and run by the --smoke command):
# colour_gated has two candidates, so validation has a choice to make.
SMOKE_ROWS = ["colour_gated"]
DIMS = {"colour_gated": 8 * 8 * 3}


def _spy_test_reads(monkeypatch):
    """Records every evaluate_checkpoint call (row, candidate, split) and every read of a split's
    evaluation images, with whether it happened inside an evaluate_checkpoint call."""
    scored, reads, inside = [], [], []
    real_score, real_images = evaluation.evaluate_checkpoint, datasets.ImageDataset.eval_images

    def score(workdir, split, *args, **kwargs):
        scored.append((Path(workdir).parent.name, Path(workdir).name, split))
        inside.append(True)
        try:
            return real_score(workdir, split, *args, **kwargs)
        finally:
            inside.pop()

    def images(self, split):
        reads.append((split, bool(inside)))
        return real_images(self, split)
    monkeypatch.setattr(evaluation, "evaluate_checkpoint", score)
    monkeypatch.setattr(datasets.ImageDataset, "eval_images", images)
    return scored, reads


def test_smoke_table_selection_test_once_report_and_rerun(tmp_path, monkeypatch):
    scored, reads = _spy_test_reads(monkeypatch)
    events = []
    table = levels_table.run_table(tmp_path, rows=SMOKE_ROWS, smoke=True, in_process=True, on_event=events.append)
    assert [r["row"] for r in table] == list(row_configs.ALL_ROWS)
    by_row = {r["row"]: r for r in table}
    for name in SMOKE_ROWS:
        r = by_row[name]
        assert r["status"] == "done", r
        grid = row_configs.candidates(name, smoke_run=True)
        with open(tmp_path / name / "tried.csv") as f:
            tried = list(csv.DictReader(f))
        assert [t["candidate"] for t in tried] == [c for c, _ in grid]
        assert all(t["status"] == "done" and float(t["wall_time_s"]) > 0 and int(t["final_step"]) > 0 for t in tried)
        best = min(tried, key=lambda t: float(t["best_val_nll"]))
        assert [t["candidate"] for t in tried if t["chosen"] == "True"] == [best["candidate"]] == [r["chosen"]]
        # The test split: scored once, for the chosen candidate's best checkpoint, and never read in training.
        assert [s for s in scored if s[0] == name] == [(name, r["chosen"], "test")]
        test = json.loads((tmp_path / name / "test.json").read_text())
        assert test["candidate"] == r["chosen"] and test["candidates"] == [c for c, _ in grid]
        for t in tried:
            results = json.loads((tmp_path / name / t["candidate"] / "results.json").read_text())
            assert results["test_nll_nats"] is None
        # Bits/dim in the table are the test record's, with the standard error converted with D = H * W * C.
        d = DIMS[name]
        assert r["test_bpd"] == test["bits_per_dim"] and r["marginal_bpd"] == test["marginal_bits_per_dim"]
        assert r["test_bpd_stderr"] == pytest.approx(test["nll_stderr"] / (d * math.log(2)))
        assert r["val_bpd"] == pytest.approx(float(best["best_val_nll"]) / (d * math.log(2)))
        assert r["samples"] == f"{name}/{r['chosen']}/samples_by_class.png" and (tmp_path / r["samples"]).is_file()
        # The end-of-run grids: one row of 8 per class (the 2 photographs) and one row of the marginal's
        # draws; 8x8 images, each cell (8 + 1) x 3 pixels (image_grid's border and upscaling).
        with Image.open(tmp_path / r["samples"]) as by_class:
            assert by_class.size == ((8 * 9 + 1) * 3, (2 * 9 + 1) * 3), by_class.size
        with Image.open(tmp_path / name / r["chosen"] / "samples.png") as marginal:
            assert marginal.size[0] > marginal.size[1], marginal.size
    assert ("test", False) not in reads and ("test", True) in reads
    assert {r["status"] for n, r in by_row.items() if n not in SMOKE_ROWS} == {"not run"}
    md = (tmp_path / "levels_table.md").read_text()
    assert md.startswith("SMOKE RUN") and md.count("[grid](") == len(SMOKE_ROWS)
    assert all(title in md for title in levels_table.SMOKE_TITLES.values())
    assert all(f"| {a.model} | {a.bits_per_dim:.2f} |" in md for a in levels_table.ANCHORS)
    assert "not directly comparable" in md and "upper bound" in md
    with open(tmp_path / "levels_table.csv") as f:
        assert [r["row"] for r in csv.DictReader(f)] == list(row_configs.ALL_ROWS)
    with open(tmp_path / "tried.csv") as f:       # every candidate of every row, with validation bits/dim
        every = [t for t in csv.DictReader(f) if t["row"] in SMOKE_ROWS]
    assert [t["candidate"] for t in every] == [c for n in SMOKE_ROWS for c, _ in row_configs.candidates(n, True)]
    for t in every:
        assert float(t["val_bits_per_dim"]) == pytest.approx(float(t["best_val_nll"]) / (DIMS[t["row"]] * math.log(2)))

    # A rerun does no work: nothing trains, nothing is scored, every record is unchanged.
    records = {p: p.read_text() for p in tmp_path.glob("*/*/sweep_member.json")}
    records.update({p: p.read_text() for p in tmp_path.glob("*/test.json")})
    n_scored, events = len(scored), []
    levels_table.run_table(tmp_path, rows=SMOKE_ROWS, smoke=True, in_process=True, on_event=events.append)
    assert len(scored) == n_scored and not any("training" in e or "resuming" in e or "scoring" in e for e in events)
    assert {p: p.read_text() for p in records} == records

    # The README block: the grids copied beside it, linked relative to it; a smoke table is refused.
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- levels_table:begin -->\nplaceholder\n<!-- levels_table:end -->\nrest\n")
    records = tmp_path / "docs" / "records"
    levels_table.publish(table, tmp_path, readme, tmp_path / "docs" / "grids", records)
    text = readme.read_text()
    assert "placeholder" not in text and text.endswith("<!-- levels_table:end -->\nrest\n")
    for name in SMOKE_ROWS:
        assert f"[grid](docs/grids/{name}.png)" in text and (tmp_path / "docs" / "grids" / f"{name}.png").is_file()

    # The record (no checkpoints) stands for the row in a workdir that lacks it: a fresh workdir trains
    # and scores nothing and reports the same table; a record of other configs is not restored.
    assert not list(records.rglob("checkpoints")) and (records / SMOKE_ROWS[0] / "test.json").is_file()
    n_scored, events = len(scored), []
    again = levels_table.run_table(tmp_path / "fresh", rows=SMOKE_ROWS, smoke=True, in_process=True,
                                   records_dir=records, on_event=events.append)
    assert len(scored) == n_scored and not any("training" in e or "scoring" in e for e in events)
    assert again == table and any("restored from its record" in e for e in events)
    # A record made in another clone (its data prepared and read at other paths) is the same run.
    member = next((records / SMOKE_ROWS[0]).glob("*/sweep_member.json"))
    edited = json.loads(member.read_text())
    edited["config"]["data"].update(data_dir="/elsewhere/tfds", manual_dir="/elsewhere/data")
    member.write_text(json.dumps(edited))
    events = []
    moved = levels_table.run_table(tmp_path / "fresh3", rows=SMOKE_ROWS, smoke=True, report_only=True,
                                   records_dir=records, on_event=events.append)
    assert moved == table and any("restored from its record" in e for e in events)
    edited["config"]["optim"]["learning_rate"] *= 2
    member.write_text(json.dumps(edited))
    events = []
    levels_table.run_table(tmp_path / "fresh2", rows=SMOKE_ROWS, smoke=True, report_only=True, records_dir=records,
                           on_event=events.append)
    assert any("for other candidates or configs" in e for e in events) and not (tmp_path / "fresh2" / SMOKE_ROWS[0]).exists()
    with pytest.raises(levels_table.TableError, match="smoke table is not the table"):
        levels_table.run_table(tmp_path, smoke=True, readme=readme)


def test_unregistered_model_rows_are_named(tmp_path, monkeypatch):
    monkeypatch.delitem(models.REGISTRY, "pixelsnail")
    events = []
    table = levels_table.run_table(tmp_path, rows=["pixelsnail"], smoke=True, on_event=events.append)
    assert events[0].startswith("pixelsnail: model 'pixelsnail' is not in dgm_jax.models.REGISTRY")
    row = {r["row"]: r for r in table}["pixelsnail"]
    assert row["status"] == "model 'pixelsnail' is not in dgm_jax.models.REGISTRY"
    assert "not in dgm_jax.models.REGISTRY" in (tmp_path / "levels_table.md").read_text()
    with pytest.raises(ValueError, match="row 'pixelsnail' needs model 'pixelsnail', which is not in"):
        row_configs.get_config("pixelsnail")


def test_missing_mnist_is_refused_by_name(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(levels_table.TableError, match=f"256-level MNIST is missing.*{missing}.*train-images-idx3"):
        levels_table.run_table(tmp_path / "table", rows=["gated_logistic"], manual_dir=str(missing),
                               data_dir=str(tmp_path / "tfds"))
    assert not (tmp_path / "table").exists()          # refused before anything was written
