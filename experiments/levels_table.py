"""The 256-level table: python experiments/levels_table.py --workdir=runs/levels_table

    [--rows=gated_logistic,pixelcnn_pp]   only these rows (the table still lists every row)
    [--smoke]             seconds-long budgets on embedded data (the test suite runs this)
    [--report_only]       train nothing; rewrite levels_table.md / .csv from the workdir
    [--write_readme]      also rewrite README.md's block between <!-- levels_table:begin --> and
                          <!-- levels_table:end --> with this table, and copy each finished row's
                          class-conditional sample grid to docs/levels_table/<row>.png (linked from
                          it) and its record (tried.csv, test.json, the candidates' results, no
                          checkpoints) to docs/levels_table/records/<row>/; refused for a smoke table
    [--manual_dir=DIR]    where the four MNIST IDX files are (default: ../shared/data/mnist beside
                          the repository)
    [--data_dir=DIR]      tfds data_dir for the prepared mnist (default: <workdir>/tfds)

Two sections, every model class-conditional (experiments/configs/levels_table.py):
  MNIST    the full MNIST at 256 grey levels (tfds's mnist builder, 50,000 / 10,000 / 10,000):
           the Gated PixelCNN with a 256-way softmax and with a discretized logistic mixture,
           PixelCNN++ and PixelSNAIL;
  colour   photo_patches, 32x32 RGB, 256 levels per sub-pixel: the Gated PixelCNN and PixelCNN++.
Each row is a small grid of candidates (experiments/table_kit.py): each trains in
<workdir>/<row>/<candidate> and is scored on the validation split only; <workdir>/<row>/tried.csv
lists every candidate (settings, validation NLL, steps, epochs, wall time; <workdir>/tried.csv: those of
every row, with validation bits/dim); the candidate of
lowest validation NLL is chosen and its best-validation checkpoint alone is scored on the test
split, once (<workdir>/<row>/test.json). The same command again skips what is finished and
resumes an interrupted candidate from its latest checkpoint; wall time adds up over launches.
A row the workdir lacks is first restored from its record in docs/levels_table/records/ (a fresh
clone's --report_only --write_readme rewrites the README block without training anything).
A row whose model is not in dgm_jax.models.REGISTRY is reported as such and not trained.

The report, levels_table.md / .csv, gives per row: the model and likelihood, parameters, the
candidate chosen (of how many), epochs, validation bits/dim, test bits/dim given the true class
and marginal over the class (-log2 sum_y p(y) p(x | y) / D, p(y) the training class frequencies)
± standard error, wall time, device and the class-conditional sample grid; then the published
8-bit MNIST anchors with their sources and why they are only upper-bounded comparisons.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # the row configs import experiments.configs
    sys.path.insert(0, str(REPO))

from experiments import table_kit  # noqa: E402
from experiments.configs import levels_table as row_configs  # noqa: E402
from experiments.table_kit import TableError  # noqa: E402,F401 - re-exported: callers catch levels_table.TableError

FLAGS = flags.FLAGS
DEFAULT_MANUAL_DIR = str(REPO.parent / "shared" / "data" / "mnist")
README = REPO / "README.md"
GRIDS_DIR = REPO / "docs" / "levels_table"
RECORDS_DIR = GRIDS_DIR / "records"    # finished rows' records (table_kit.archive_row): no checkpoints
BLOCK = "levels_table"
COMMAND = "python experiments/levels_table.py --workdir=runs/levels_table --write_readme"
TRAIN_IMAGES = {"mnist": 50_000, "colour": 421}   # training images of a section's full data (epochs)
GRID = "samples_by_class.png"


def _define_flags() -> None:
    """Only when run as a script, so that tests can import run_table beside other absl programs."""
    flags.DEFINE_string("workdir", None, "Directory of the table; row <name> trains in <workdir>/<name>.",
                        required=True)
    flags.DEFINE_list("rows", [], f"Rows to train (default: all of {', '.join(row_configs.ALL_ROWS)}).")
    flags.DEFINE_bool("smoke", False, "Tiny budgets on embedded data (8x8 digits and photo patches): the "
                      "pipeline in seconds, not the table.")
    flags.DEFINE_bool("report_only", False, "Train nothing; rewrite the report from what the workdir holds.")
    flags.DEFINE_bool("write_readme", False, f"Rewrite the {BLOCK} block of README.md with the table and copy "
                      f"the sample grids to {GRIDS_DIR.relative_to(REPO)}/.")
    flags.DEFINE_string("manual_dir", DEFAULT_MANUAL_DIR, "Directory holding the four MNIST IDX files.")
    flags.DEFINE_string("data_dir", "", "tfds data_dir for the prepared mnist (default: <workdir>/tfds).")


@dataclasses.dataclass(frozen=True)
class Row:
    label: str          # the model as the table shows it
    likelihood: str     # the observation model, in words


ROWS = {
    "gated_categorical": Row("Gated PixelCNN", "categorical (a softmax over the levels)"),
    "gated_logistic": Row("Gated PixelCNN", "discretized logistic mixture"),
    "pixelcnn_pp": Row("PixelCNN++", "discretized logistic mixture"),
    "pixelsnail": Row("PixelSNAIL", "discretized logistic mixture"),
    "colour_gated": Row("Gated PixelCNN", "discretized logistic mixture (R, G, B in turn)"),
    "colour_pixelcnn_pp": Row("PixelCNN++", "discretized logistic mixture, channel-coupled"),
}
assert set(ROWS) == set(row_configs.ALL_ROWS)


@dataclasses.dataclass(frozen=True)
class Anchor:
    model: str
    bits_per_dim: float
    source: str


# Published test bits/dim on 8-bit MNIST. All are continuous flows trained on dequantized data.
ANCHORS = (
    Anchor("Residual Flow", 0.97, "Chen, Behrmann, Duvenaud & Jacobsen (2019), Residual Flows for Invertible "
                                  "Generative Modeling, NeurIPS, MNIST bits/dim table"),
    Anchor("Glow", 1.05, "as reported by Grathwohl et al. (2019), FFJORD, ICLR, Table 2 (the Glow paper gives "
                         "no MNIST figure); also listed by Chen et al. (2019)"),
    Anchor("RealNVP", 1.06, "as reported by Grathwohl et al. (2019), FFJORD, ICLR, Table 2 (the RealNVP paper "
                            "gives no MNIST figure); also listed by Chen et al. (2019)"),
)
ANCHOR_NOTE = (
    "These are not directly comparable with the exact bits/dim above. A flow is a density on "
    "continuous values, trained and scored on dequantized images x + u, u ~ U[0, 1)^D; its figure "
    "E_u[-log2 p(x + u)] / D is, by Jensen's inequality, an upper bound on the exact discrete "
    "-log2 P(x) / D of the discrete model it defines (P(x) = the integral of p over the unit cube "
    "at x). So a flow's exact discrete bits/dim is at most its figure: a discrete model whose exact "
    "bits/dim is above a figure is worse than that flow; one below it is not shown to be better. "
    "Compare the marginal column, the figure of the model of x alone: since sum_y p(y) p(x | y) >= "
    "p(y*) p(x | y*) for the true class y*, it exceeds the given-class figure by at most "
    "log2(1 / p(y*)) / 784, about log2(10) / 784 = 0.004 bits/dim on MNIST, and it falls below it "
    "where the model uses the class little (other classes explain x as well or better).")


# ---------------------------------------------------------------------------
# Configs and the report.

def row_candidates(name: str, *, smoke: bool, manual_dir: str, data_dir: str) -> tuple[dict, dict]:
    """({candidate: validated config dict}, {candidate: overrides}) of row `name`."""
    base = row_configs.get_config(name + (",smoke" if smoke else ""))
    if base.data.name == "mnist":
        base.data.manual_dir = manual_dir
        base.data.data_dir = data_dir
    grid = row_configs.candidates(name, smoke)
    return ({c: table_kit.candidate_config(base, o) for c, o in grid}, {c: o for c, o in grid})


def check_data(manual_dir: str, data_dir: str) -> None:
    """Refuses, before anything trains, when mnist is neither prepared in data_dir nor in manual_dir."""
    from dgm_jax.config_schema import DataConfig
    from dgm_jax.data import tfds_sets
    try:
        tfds_sets.check_available("mnist", DataConfig(name="mnist", manual_dir=manual_dir, data_dir=data_dir))
    except FileNotFoundError as e:
        raise TableError(f"the 256-level MNIST is missing: {e}") from None


def _bits(nats: float | None, dims: int | None) -> float | None:
    from dgm_jax import likelihood
    return None if nats is None or not dims else float(likelihood.bits_per_dim(nats, dims))


def _dims(cand_dir: Path) -> int | None:
    """D = H * W * C of a run, from its run_info.json (None before it started)."""
    try:
        shape = json.loads((cand_dir / "run_info.json").read_text())["image_shape"]
    except (OSError, json.JSONDecodeError, KeyError):
        return None
    return math.prod(shape)


def collect(workdir: Path, configs: dict, overrides: dict) -> list[dict]:
    """One entry per table row (every row of ALL_ROWS), finished, unfinished or unavailable."""
    from dgm_jax import sweeps
    out = []
    for name in row_configs.ALL_ROWS:
        row, section = ROWS[name], row_configs.SECTION[name]
        entry = {"row": name, "section": section, "model": row.label, "likelihood": row.likelihood,
                 "status": "not run", "chosen": None, "candidates": 0, "num_params": None, "epochs": None,
                 "best_epoch": None, "stopped_early": None, "val_bpd": None, "test_bpd": None,
                 "test_bpd_stderr": None, "marginal_bpd": None, "marginal_bpd_stderr": None,
                 "test_examples": None, "wall_time_s": None, "device": "", "samples": "", "error": None}
        if name not in configs:
            entry["status"] = f"model {row_configs.MODEL[name]!r} is not in dgm_jax.models.REGISTRY"
            out.append(entry)
            continue
        outcome = table_kit.read_row(workdir / name, configs[name], overrides[name],
                                     full_train_images=TRAIN_IMAGES[section])
        chosen = outcome.chosen or next(iter(configs[name]))
        cand_dir = workdir / name / chosen
        tried = {t["candidate"]: t for t in outcome.tried}[chosen]
        res = (sweeps.read_member(cand_dir) or {}).get("results") or {}
        test, dims = outcome.test or {}, _dims(cand_dir)
        entry.update(
            status=outcome.status, chosen=outcome.chosen, candidates=len(configs[name]),
            num_params=res.get("num_params"), epochs=tried["epochs"], best_epoch=tried["best_epoch"],
            stopped_early=tried["stopped_early"], val_bpd=_bits(tried["best_val_nll"], dims),
            test_bpd=test.get("bits_per_dim"), test_bpd_stderr=_bits(test.get("nll_stderr"), dims),
            marginal_bpd=test.get("marginal_bits_per_dim"),
            marginal_bpd_stderr=_bits(test.get("marginal_nll_stderr"), dims),
            test_examples=test.get("num_examples"), wall_time_s=outcome.wall_time_s, device=outcome.device,
            samples=f"{name}/{chosen}/{GRID}" if outcome.chosen and (cand_dir / GRID).is_file() else "",
            error=next((t["error"] for t in outcome.tried if t["error"]), None))
        out.append(entry)
    return out


def _pm(value: float | None, stderr: float | None) -> str:
    return "" if value is None else f"{value:.4f} ± {stderr:.4f}" if stderr is not None else f"{value:.4f}"


def _epochs(e: float | None) -> str:
    return "" if e is None else f"{e:.1f}".removesuffix(".0")


SECTION_TITLES = {
    "mnist": "MNIST, 256 grey levels (tfds mnist; 50,000 train / 10,000 validation carved from the 60,000 training "
             "images / the official 10,000 test), class-conditional",
    "colour": "Colour: photo_patches, 32x32 RGB, 256 levels per sub-pixel (421 train / 47 validation / 52 test "
              "patches of scikit-learn's two photographs, labelled by photograph), conditional on the photograph",
}
SMOKE_TITLES = {"mnist": "sklearn digits, 8x8, 17 grey levels (the MNIST rows' smoke stand-in)",
                "colour": "photo_patches, 8x8 RGB (the colour rows' smoke stand-in)"}


def markdown(rows: list[dict], *, smoke: bool, grids: dict[str, str] | None = None) -> str:
    """The table as markdown: a section per data set, then the anchors. grids: row -> the link of its
    sample grid (default: the grid in the workdir)."""
    head = ["model", "likelihood", "params", "chosen (of)", "epochs (best)", "validation bits/dim",
            "test bits/dim given the class", "test bits/dim, marginal", "wall time", "device", "samples by class"]
    lines = ([("SMOKE RUN (tiny budgets on 8x8 embedded data): not the table.")] if smoke else []) + [
        "Bits per dimension (sub-pixel) of the exact discrete likelihood, ± standard error over the test images; "
        "each row's candidates are chosen on validation and the chosen one's best-validation checkpoint alone is "
        "scored on the test split, once."]
    for section in ("mnist", "colour"):
        lines += ["", f"**{(SMOKE_TITLES if smoke else SECTION_TITLES)[section]}**", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in (r for r in rows if r["section"] == section):
            done = r["status"] == "done"
            link = r["samples"] if grids is None else grids.get(r["row"], "")
            early = ", early stop" if r["stopped_early"] else ""
            test = _pm(r["test_bpd"], r["test_bpd_stderr"]) if done else (
                r["status"] + (f": {r['error'][:80]}" if r.get("error") else ""))
            cells = [r["model"], r["likelihood"], "" if r["num_params"] is None else f"{r['num_params']:,}",
                     f"{r['chosen']} ({r['candidates']})" if r["chosen"] else (f"({r['candidates']})" if r["candidates"]
                                                                              else ""),
                     f"{_epochs(r['epochs'])} ({_epochs(r['best_epoch'])}){early}" if r["epochs"] is not None else "",
                     _pm(r["val_bpd"], None), test, _pm(r["marginal_bpd"], r["marginal_bpd_stderr"]) if done else "",
                     table_kit.format_duration(r["wall_time_s"]) if r["wall_time_s"] else "", r["device"] or "",
                     f"[grid]({link})" if link else ""]
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    lines += ["", "Published 8-bit MNIST figures (test bits/dim), for orientation:", "",
              "| model | bits/dim | source |", "|---|---|---|"]
    lines += [f"| {a.model} | {a.bits_per_dim:.2f} | {a.source} |" for a in ANCHORS]
    lines += ["", ANCHOR_NOTE]
    return "\n".join(lines) + "\n"


def tried_everywhere(workdir: Path, configs: dict, overrides: dict) -> list[dict]:
    """Every candidate of every trained row: table_kit's tried.csv rows plus the row and the
    validation bits/dim (D from the candidate's run_info.json)."""
    out = []
    for name in configs:
        outcome = table_kit.read_row(workdir / name, configs[name], overrides[name],
                                     full_train_images=TRAIN_IMAGES[row_configs.SECTION[name]])
        for t in outcome.tried:
            dims = _dims(workdir / name / t["candidate"])
            out.append({"row": name, **t, "val_bits_per_dim": _bits(t["best_val_nll"], dims)})
    return out


def write_report(rows: list[dict], workdir: Path, smoke: bool, tried: list[dict] = ()) -> None:
    """levels_table.md / .csv, and tried.csv: every candidate of every row."""
    with open(workdir / "levels_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if tried:
        with open(workdir / table_kit.TRIED_CSV, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(tried[0]))
            w.writeheader()
            w.writerows(tried)
    (workdir / "levels_table.md").write_text(markdown(rows, smoke=smoke))


def publish(rows: list[dict], workdir: Path, readme: Path, grids_dir: Path, records_dir: Path | None = None) -> None:
    """Copies each finished row's sample grid to grids_dir/<row>.png and its record to records_dir/<row>/
    (if given), and rewrites README's block (links relative to the README's folder)."""
    grids = {}
    for r in rows:
        if r["status"] == "done" and records_dir is not None:
            table_kit.archive_row(workdir / r["row"], records_dir)
        if r["status"] == "done" and r["samples"]:
            grids_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(workdir / r["samples"], grids_dir / f"{r['row']}.png")
            grids[r["row"]] = str((grids_dir / f"{r['row']}.png").relative_to(readme.parent))
    block = f"Written by `{COMMAND}` (do not edit by hand; rerun it).\n\n" + markdown(rows, smoke=False, grids=grids)
    table_kit.write_block(readme, BLOCK, block)


def run_table(workdir, *, rows=(), smoke: bool = False, report_only: bool = False,
              manual_dir: str = DEFAULT_MANUAL_DIR, data_dir: str = "", readme: str | Path | None = None,
              grids_dir: str | Path = GRIDS_DIR, records_dir: str | Path | None = None, in_process: bool = False,
              on_event=print) -> list[dict]:
    """Trains what is unfinished of the rows (all, or `rows`), then writes levels_table.md / .csv (and,
    given `readme`, that file's levels_table block and the grids in grids_dir); returns the table's
    rows (every row of ALL_ROWS). records_dir: rows the workdir lacks are restored from their records
    there, and given `readme` the finished rows are recorded there (table_kit.archive_row).
    in_process: candidates train in this process, not in children (tests)."""
    unknown = sorted(set(rows) - set(row_configs.ALL_ROWS))
    if unknown:
        raise TableError(f"unknown rows {unknown}; valid: {', '.join(row_configs.ALL_ROWS)}")
    if readme is not None and smoke:
        raise TableError("a smoke table is not the table: it is never written into the README")
    workdir = Path(workdir).absolute()
    data_dir = data_dir or str(workdir / "tfds")
    available = [r for r in row_configs.ALL_ROWS if row_configs.registered(r)]
    grids = {r: row_candidates(r, smoke=smoke, manual_dir=manual_dir, data_dir=data_dir) for r in available}
    configs, overrides = {r: g[0] for r, g in grids.items()}, {r: g[1] for r, g in grids.items()}
    asked = [r for r in row_configs.ALL_ROWS if not rows or r in rows]
    for r in asked:
        if r not in configs:
            on_event(f"{r}: model {row_configs.MODEL[r]!r} is not in dgm_jax.models.REGISTRY; this row is not "
                     "trained (the table lists it as missing)")
    todo = [r for r in asked if r in configs]
    if not smoke and not report_only and any(row_configs.SECTION[r] == "mnist" for r in todo):
        check_data(manual_dir, data_dir)
    info_path, info = table_kit.open_table(workdir, "levels_table.json", smoke, row_configs.ALL_ROWS)
    if records_dir is not None:
        table_kit.restore_rows(workdir, records_dir, configs, on_event)

    if not report_only:
        for name in todo:                      # every row checked before any trains
            table_kit.check_row(workdir / name, configs[name])
        for i, name in enumerate(todo, 1):
            section, tag = row_configs.SECTION[name], f"[{i}/{len(todo)}] {name}"
            outcome = table_kit.run_row(workdir / name, configs[name], overrides[name],
                                        full_train_images=TRAIN_IMAGES[section], in_process=in_process, tag=tag,
                                        on_event=on_event)
            if outcome.status == "done":
                t = outcome.test
                marginal = (f", marginal {t['marginal_bits_per_dim']:.4f}" if "marginal_bits_per_dim" in t else "")
                on_event(f"{tag}: {outcome.chosen} chosen of {len(configs[name])}; test {t['bits_per_dim']:.4f} "
                         f"bits/dim given the class{marginal} ({table_kit.format_duration(outcome.wall_time_s)} "
                         "in all)")
            else:
                on_event(f"{tag}: {outcome.status} (see {workdir / name}/*/train.log)")

    table = collect(workdir, configs, overrides)
    write_report(table, workdir, smoke, tried_everywhere(workdir, configs, overrides))
    if readme is not None:
        publish(table, workdir, Path(readme), Path(grids_dir), None if records_dir is None else Path(records_dir))
    return table


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    table_kit.table_main("levels_table", run_table, FLAGS, README, RECORDS_DIR)


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    _define_flags()
    app.run(main)
