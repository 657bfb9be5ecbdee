"""experiments/paper_table.py and experiments/table_kit.py: a row's candidates are selected on validation
(tried.csv holds every one), the test split is scored once and only for the chosen one, a rerun does no
work, the differences from the paper and the verdict follow the rule, and README's block round-trips."""
import csv
import json

import pytest

from experiments import paper_table, table_kit
from experiments.configs import paper_table as row_configs


def test_smoke_row_selects_on_validation_and_scores_test_once(tmp_path, monkeypatch):
    scored = []
    real_score = table_kit.score_test
    monkeypatch.setattr(table_kit, "score_test", lambda *a: scored.append(a[0]) or real_score(*a))
    events = []
    table = paper_table.run_table(tmp_path, rows=["fvsbn"], smoke=True, in_process=True, on_event=events.append)
    row = tmp_path / "fvsbn"
    names = [n for n, _ in row_configs.candidates("fvsbn", True)]
    assert len(names) == 2

    with open(row / "tried.csv") as f:
        tried = list(csv.DictReader(f))
    assert [t["candidate"] for t in tried] == names and all(t["status"] == "done" for t in tried)
    best = min(tried, key=lambda t: float(t["best_val_nll"]))["candidate"]
    assert [t["candidate"] for t in tried if t["chosen"] == "True"] == [best]

    # The test split: read once, by the chosen candidate's best checkpoint; never by a training run.
    test = json.loads((row / "test.json").read_text())
    assert len(scored) == 1 and scored[0].name == best
    assert test["candidate"] == best and test["candidates"] == names and test["split"] == "test"
    for name in names:
        results = json.loads((row / name / "results.json").read_text())
        assert results["test_nll_nats"] is None
        assert all(json.loads(line)["split"] != "test" for line in open(row / name / "metrics.jsonl"))
        if name == best:
            assert test["step"] == results["best_step"]
    entry = next(r for r in table if r["row"] == "fvsbn")
    assert entry["status"] == "done" and entry["chosen"] == best and entry["test_nll"] == test["nll_nats"]
    assert [r["row"] for r in table] == list(row_configs.ROWS)
    assert (row / best / "samples.png").is_file() and f"[grid](fvsbn/{best}/samples.png)" in (
        tmp_path / "paper_table.md").read_text()

    # A rerun trains and scores nothing, and changes no record.
    before = {p: p.read_bytes() for p in row.glob("*/sweep_member.json")} | {row / "test.json": (row / "test.json").read_bytes()}
    events.clear()
    paper_table.run_table(tmp_path, rows=["fvsbn"], smoke=True, in_process=True, on_event=events.append)
    assert len(scored) == 1 and not [e for e in events if "training" in e or "resuming" in e or "scoring" in e]
    assert {p: p.read_bytes() for p in before} == before

    # Its record (no checkpoints) stands for the row in a fresh workdir: same entry, nothing trained.
    records = tmp_path / "records"
    table_kit.archive_row(row, records)
    fresh = paper_table.run_table(tmp_path / "fresh", rows=["fvsbn"], smoke=True, in_process=True,
                                  records_dir=records, on_event=events.append)
    assert len(scored) == 1 and next(r for r in fresh if r["row"] == "fvsbn") == entry
    assert not list(records.rglob("checkpoints"))

    # Once the test split is scored, the grid is closed; a changed candidate is refused too.
    configs, _ = paper_table.row_candidates("fvsbn", smoke=True, manual_dir="", data_dir="")
    with pytest.raises(table_kit.TableError, match=r"grid is closed"):
        table_kit.check_row(row, {**configs, "extra": configs[best]})
    member = row / names[0] / "sweep_member.json"
    edited = json.loads(member.read_text())
    edited["config"]["optim"]["learning_rate"] *= 2
    member.write_text(json.dumps(edited))
    with pytest.raises(table_kit.TableError, match=rf"config of candidate\(s\) {names[0]} .* changed"):
        paper_table.run_table(tmp_path, rows=["fvsbn"], smoke=True, in_process=True)

    with pytest.raises(table_kit.TableError, match="never written into the README"):
        paper_table.run_table(tmp_path, smoke=True, report_only=True, readme=tmp_path / "README.md")
    with pytest.raises(table_kit.TableError, match="holds a smoke table"):
        paper_table.run_table(tmp_path, smoke=False, report_only=True)
    with pytest.raises(table_kit.TableError, match=r"unknown rows \['nad'\]"):
        paper_table.run_table(tmp_path, smoke=True, rows=["nad"])


def test_readme_block_round_trips_and_refuses_bad_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\nbefore\n<!-- t:begin -->\nold\n<!-- t:end -->\nafter\n")
    block = "| a | b |\n|---|---|\n| 1 | 2 |"
    assert table_kit.write_block(readme, "t", block)
    assert table_kit.read_block(readme, "t") == block
    assert readme.read_text() == f"# title\n\nbefore\n<!-- t:begin -->\n{block}\n<!-- t:end -->\nafter\n"
    assert not table_kit.write_block(readme, "t", block + "\n")        # unchanged: nothing written
    for text, found in [("<!-- t:begin -->\n", "1 and 0"), ("<!-- t:end -->\n<!-- t:begin -->\n", "1 and 1"),
                        ("<!-- t:begin --><!-- t:begin --><!-- t:end -->", "2 and 1")]:
        readme.write_text(text)
        with pytest.raises(table_kit.TableError, match=f"exactly one.*found {found}"):
            table_kit.write_block(readme, "t", block)
    # The real README has the table's block, and it is what the script writes (a header naming the command).
    assert table_kit.read_block(paper_table.README, paper_table.BLOCK).startswith(
        f"Written by `{paper_table.COMMAND}`")


def _facts(row, **changes):
    config = row_configs.get_config(row)
    for key, value in changes.items():
        section, field = key.split(".")
        config[section][field] = value
    return paper_table.facts(table_kit.candidate_config(config, {}))


def test_differences_and_verdicts_follow_the_rule():
    made = paper_table.ROWS["made_1hl_1mask"]
    f = _facts("made_1hl_1mask")
    diffs = paper_table.differences(made.paper, f)
    # The paper's architecture and ordering scheme; only the recipe differs, and says how.
    assert {d.kind for d in diffs} == {"recipe"}
    assert any(d.text.startswith("optimizer adam") and "paper adagrad" in d.text for d in diffs)
    assert paper_table.verdict(made, f, diffs, 88.40, None) == "met"
    assert paper_table.verdict(made, f, diffs, 88.41, None) == "missed (+0.01)"
    assert paper_table.verdict(made, f, diffs, 88.41, None, still_improving_at=40) == \
        "missed (+0.01); still improving: best validation at its last epoch (40)"
    assert paper_table.verdict(made, f, diffs, 88.40, None, still_improving_at=40) == "met"
    assert paper_table._still_improving_at({"epochs": 40.0, "best_epoch": 40.0, "stopped_early": False}) == 40.0
    assert paper_table._still_improving_at({"epochs": 20.0, "best_epoch": 10.0, "stopped_early": True}) is None
    assert paper_table._still_improving_at({"epochs": 40.0, "best_epoch": 38.0, "stopped_early": False}) is None

    raster = _facts("made_1hl_1mask", **{"model.ordering": "raster"})
    diffs = paper_table.differences(made.paper, raster)
    assert [d.text for d in diffs if d.kind == "model"] == ["ordering fixed raster (paper fixed random)"]
    assert paper_table.verdict(made, raster, diffs, 80.0, None).startswith("not the paper's model: ordering")

    two = paper_table.ROWS["made_2hl_32masks"]
    f = _facts("made_2hl_32masks")
    diffs = paper_table.differences(two.paper, f)
    assert [d.text for d in diffs if d.kind == "smaller"] == ["units 2,000 (paper 8,000)"]
    assert paper_table.verdict(two, f, diffs, 80.0, None).startswith(
        "smaller than the paper: units 2,000 (paper 8,000); no paper figure for this size")
    assert paper_table.verdict(two, f, diffs, 80.0, None, still_improving_at=70).endswith(
        "; still improving: best validation at its last epoch (70)")
    sized = paper_table.Row(two.name, two.label, "paper", paper_table.dataclasses.replace(
        two.paper, sizes=(paper_table.SizeFigure(2, 2000, 32, 90.0, "Fig. X"),)))
    assert paper_table.verdict(sized, f, diffs, 89.9, None).endswith("met the paper's 90.00 for this size (Fig. X)")

    # EoNADE evaluated with fewer orderings than the paper's 128 is set against the authors' own
    # figure for that many orderings.
    eo = paper_table.ROWS["eonade"]
    f = _facts("eonade")
    diffs = paper_table.differences(eo.paper, f)
    k = f["eval_masks"]
    assert [d.text for d in diffs if d.kind != "recipe"] == [f"evaluation masks {k} (paper 128)"]
    figure = {s.eval_masks: s.nll for s in eo.paper.sizes if (s.hidden_layers, s.hidden_units) == (2, 500)}[k]
    assert paper_table.verdict(eo, f, diffs, figure + 0.5, None).endswith(
        f"missed the paper's {figure:.2f} for this size by +0.50 ({paper_table.EONADE_ORDERINGS})")

    # A beyond-the-papers row is set against its anchor, never called met or missed.
    snail = paper_table.ROWS["pixelsnail"]
    f = _facts("pixelsnail")
    assert (f["hidden_layers"], f["hidden_units"]) == (row_configs.SNAIL_BLOCKS, 32)
    assert paper_table.verdict(snail, f, paper_table.differences(snail.paper, f), 80.0, None) == \
        "beyond the papers (+1.39 vs the anchor)"

    nade = paper_table.ROWS["nade"]
    f = _facts("nade")
    assert paper_table.differences(nade.paper, f) == []
    assert paper_table.verdict(paper_table.ROWS["bernoulli"], _facts("bernoulli"), [], 205.79, 205.80) == \
        "met (MLE 205.8000)"


def test_missing_binarized_mnist_is_refused_by_name(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(table_kit.TableError, match=f"binarized MNIST is missing.*{missing}.*binarized_mnist_train.amat"):
        paper_table.run_table(tmp_path / "table", manual_dir=str(missing), data_dir=str(tmp_path / "tfds"))
    assert not (tmp_path / "table").exists()          # refused before anything was written


def test_durations_round_once_so_seconds_never_read_60():
    from experiments.table_kit import format_duration
    assert [format_duration(t) for t in (2399.6, 59.6, 713.2, 7.4)] == ["40 min 0 s", "1 min 0 s", "11 min 53 s", "7 s"]
    assert format_duration(None) == ""
