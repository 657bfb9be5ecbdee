"""experiments/paper_table.py: the smoke table trains every row, writes the report and grids, a rerun
trains nothing, a cut row is resumed and its wall time adds up, and missing data is refused by name."""
import csv
import json

import numpy as np
import pytest

from experiments import paper_table
from experiments.configs import paper_table as row_configs


def test_smoke_table_rows_report_rerun_and_resume(tmp_path):
    events = []
    table = paper_table.run_table(tmp_path, smoke=True, on_event=events.append)
    assert [r["row"] for r in table] == list(row_configs.ROWS)
    assert all(r["status"] == "done" for r in table), table
    for r in table:
        assert np.isfinite(r["test_nll"]) and r["test_stderr"] > 0
        assert (tmp_path / r["row"] / "samples.png").is_file() and r["samples"] == f"{r['row']}/samples.png"
        if r["published"] is not None:
            assert r["difference"] == pytest.approx(r["test_nll"] - r["published"])
            assert r["bar_met"] == (r["test_nll"] <= r["published"])
    md = (tmp_path / "paper_table.md").read_text()
    assert md.startswith("SMOKE RUN") and md.count("[grid](") == len(row_configs.ROWS)
    for name, pub in paper_table.PUBLISHED.items():
        assert pub.label in md and (pub.nll is None or f"{pub.nll:.2f}" in md)
    with open(tmp_path / "paper_table.csv") as f:
        assert [r["row"] for r in csv.DictReader(f)] == list(row_configs.ROWS)

    # A rerun trains nothing: every row is skipped and its record is unchanged.
    before = {r["row"]: json.loads((tmp_path / r["row"] / "sweep_member.json").read_text()) for r in table}
    events.clear()
    paper_table.run_table(tmp_path, smoke=True, on_event=events.append)
    assert all("finished, skipped" in e for e in events) and len(events) == len(row_configs.ROWS), events
    assert {r: json.loads((tmp_path / r / "sweep_member.json").read_text()) for r in before} == before

    # A row cut before its results: the next run resumes it (from its last checkpoint), once more
    # only that row, and the wall time of its launches adds up.
    cut = tmp_path / "nade"
    rec = before["nade"]
    (cut / "results.json").unlink()
    (cut / "sweep_member.json").write_text(json.dumps({**rec, "status": "running"}))
    events.clear()
    table = paper_table.run_table(tmp_path, smoke=True, rows=["nade", "fvsbn"], on_event=events.append)
    assert any(e.startswith("[1/2] fvsbn: finished, skipped") for e in events), events
    assert any(e.startswith("[2/2] nade: resuming") for e in events), events
    after = json.loads((cut / "sweep_member.json").read_text())
    assert after["status"] == "done" and after["launches"] == rec["launches"] + 1
    assert after["wall_time_s"] > rec["wall_time_s"]
    assert after["results"]["final_step"] == rec["results"]["final_step"]     # resumed, not retrained
    assert after["results"]["test_nll_nats"] == pytest.approx(rec["results"]["test_nll_nats"], abs=1e-9)

    # A row whose settings changed since it trained is refused, not resumed under the new ones.
    member = tmp_path / "fvsbn" / "sweep_member.json"
    edited = json.loads(member.read_text())
    edited["config"]["optim"]["learning_rate"] *= 2
    member.write_text(json.dumps(edited))
    with pytest.raises(paper_table.TableError, match=r"config of row\(s\) fvsbn changed"):
        paper_table.run_table(tmp_path, smoke=True)

    with pytest.raises(paper_table.TableError, match="holds a smoke table"):
        paper_table.run_table(tmp_path, smoke=False, report_only=True)
    with pytest.raises(paper_table.TableError, match=r"unknown rows \['nad'\]"):
        paper_table.run_table(tmp_path, smoke=True, rows=["nad"])


def test_missing_binarized_mnist_is_refused_by_name(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(paper_table.TableError, match=f"binarized MNIST is missing.*{missing}.*binarized_mnist_train.amat"):
        paper_table.run_table(tmp_path / "table", manual_dir=str(missing), data_dir=str(tmp_path / "tfds"))
    assert not (tmp_path / "table").exists()          # refused before anything was written
