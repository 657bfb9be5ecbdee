"""The statically binarized MNIST table of the literature, reproduced: python experiments/paper_table.py --workdir=runs/paper_table

    [--rows=fvsbn,nade]   only these rows (the table still lists every row)
    [--smoke]             seconds-long budgets on embedded data (the test suite runs this)
    [--report_only]       train nothing; rewrite paper_table.md / .csv from the workdir
    [--write_readme]      also rewrite README.md's table block (between <!-- paper_table:begin -->
                          and <!-- paper_table:end -->) with this table and record each finished
                          row (tried.csv, test.json, the candidates' results, no checkpoints) in
                          docs/paper_table/records/<row>/; refused for a smoke table
    [--manual_dir=DIR]    where the Larochelle & Murray .amat files are
                          (default: ../shared/data/binarized_mnist beside the repository)

Each row is a small grid of candidate configs (experiments/configs/paper_table.py): every
candidate trains in <workdir>/<row>/<candidate> on the training split and is scored on the
validation split only (early stopping, the best-validation checkpoint); <workdir>/<row>/tried.csv
lists every candidate with its settings, validation NLL, steps and wall time; the candidate of
lowest validation NLL is chosen, and its best checkpoint alone is scored on the 10,000 test
images, once (<workdir>/<row>/test.json). The same command again skips what is finished and
resumes an interrupted candidate from its latest checkpoint; wall time adds up over launches.
A row the workdir lacks is first restored from its record in docs/paper_table/records/, so the
table can be finished over several sessions and a fresh clone's --report_only --write_readme
rewrites the README block without training.

The report, paper_table.md / .csv, states per row the model and recipe that produced its
figure (architecture, orderings, masks at training and evaluation, optimizer and prior,
epochs, wall time and device), the published value and where it is stated, the test NLL ±
standard error, and every way the row differs from the paper's model and recipe, computed
from the row's config against its paper spec (ROWS below). The verdict is "met" only for a
row with the paper's architecture and ordering scheme whose test NLL is <= the published
one; a row smaller than the paper's model says so and is set against the paper's own figure
for its size where the paper gives one.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # the row configs import experiments.configs
    sys.path.insert(0, str(REPO))

from experiments import table_kit  # noqa: E402
from experiments.configs import paper_table as row_configs  # noqa: E402
from experiments.table_kit import TableError  # noqa: E402,F401 - re-exported: callers catch paper_table.TableError

FLAGS = flags.FLAGS
DEFAULT_MANUAL_DIR = str(REPO.parent / "shared" / "data" / "binarized_mnist")
README = REPO / "README.md"
RECORDS_DIR = REPO / "docs" / "paper_table" / "records"   # finished rows' records (table_kit.archive_row)
BLOCK = "paper_table"
TRAIN_IMAGES = 50_000
COMMAND = "python experiments/paper_table.py --workdir=runs/paper_table --write_readme"


def _define_flags() -> None:
    """Only when run as a script, so that tests can import run_table beside other absl programs."""
    flags.DEFINE_string("workdir", None, "Directory of the table; row <name> trains in <workdir>/<name>.",
                        required=True)
    flags.DEFINE_list("rows", [], f"Rows to train (default: all of {', '.join(row_configs.ROWS)}).")
    flags.DEFINE_bool("smoke", False, "Tiny budgets on the embedded 8x8 digits: the pipeline in seconds, not the table.")
    flags.DEFINE_bool("report_only", False, "Train nothing; rewrite the report from what the workdir holds.")
    flags.DEFINE_bool("write_readme", False, f"Rewrite the {BLOCK} block of README.md with the table.")
    flags.DEFINE_string("manual_dir", DEFAULT_MANUAL_DIR, "Directory holding binarized_mnist_{train,valid,test}.amat.")
    flags.DEFINE_string("data_dir", "", "tfds data_dir for the prepared binarized_mnist (default: <workdir>/tfds).")


# ---------------------------------------------------------------------------
# The paper side of each row.

@dataclasses.dataclass(frozen=True)
class SizeFigure:
    """A figure the paper gives for a model of another size than its headline one."""
    hidden_layers: int
    hidden_units: int
    eval_masks: int
    nll: float
    where: str


@dataclasses.dataclass(frozen=True)
class Paper:
    """The model and recipe behind a published figure; None = not stated (not compared)."""
    nll: float | None
    source: str                               # who published the figure, and where it is stated
    hidden_layers: int | None = None
    hidden_units: int | None = None
    direct_connection: bool | None = None
    ordering: str | None = None               # fixed (any one order) | fixed raster | fixed random | resampled
    train_masks: int | str | None = None      # masks / orderings trained over ("per example": a new one each)
    eval_masks: int | None = None             # masks / orderings averaged (in probability) at test
    optimizer: str | None = None              # e.g. "adagrad" (compared by name) with its settings after a space
    prior: str | None = None                  # "none" or the penalty
    epochs: str | None = None                 # the paper's stopping rule
    recipe_source: str = ""                   # where the architecture and recipe are stated
    sizes: tuple[SizeFigure, ...] = ()


@dataclasses.dataclass(frozen=True)
class Row:
    name: str                 # the variant of experiments/configs/paper_table.py
    label: str                # the row as the table shows it
    kind: str                 # paper | baseline (bar: the closed-form MLE) | beyond (anchor only)
    paper: Paper


# The authors' test NLL of their 2hl model against the number of orderings averaged (1, 2, ..., 128).
EONADE_ORDERINGS = "the authors' test NLL against the number of orderings averaged"
MADE_SRC = ("Germain et al. (2015), MADE, Table 6 (binarized MNIST)")
MADE_RECIPE = ("the MADE authors' command for their MNIST result (github.com/mgermain/MADE, README): hidden "
               "sizes [8000,8000], ReLU, 32 masks with 'Full' shuffling (orderings and connectivity), direct "
               "input-to-output connection, adagrad at 0.01, batch 100, no dropout, stop after 30 epochs "
               "without validation improvement; its code shuffles the ordering once before training, so "
               "1 mask is one random order. The 1-hidden-layer width is taken as the same 8,000")
_MADE = dict(direct_connection=True, optimizer="adagrad 0.01", prior="none",
             epochs="until 30 epochs without validation improvement", recipe_source=MADE_RECIPE)

ROWS: dict[str, Row] = {r.name: r for r in (
    Row("bernoulli", "Independent pixels (Bernoulli)", "baseline",
        Paper(None, "baseline; bar: the closed-form MLE (training pixel means, kept in [1/(2N), 1 - 1/(2N)]: "
                    "unclipped, it is +inf on the test split)")),
    Row("fvsbn", "FVSBN", "paper",
        Paper(97.45, "Larochelle & Murray (2011), NADE paper, table of binarized-MNIST results",
              ordering="fixed")),
    Row("nade", "NADE, fixed order", "paper",
        Paper(88.33, "NADE (fixed order), H = 500: as listed in Germain et al. (2015) Table 6 and van den Oord "
                     "et al. (2016, PixelRNN) Table 4 (Larochelle & Murray 2011)",
              hidden_layers=1, hidden_units=500, ordering="fixed", train_masks=1, eval_masks=1,
              recipe_source="Larochelle & Murray (2011): 500 sigmoid hidden units, one fixed ordering")),
    Row("made_1hl_1mask", "MADE, 1 hidden layer, 1 mask", "paper",
        Paper(88.40, MADE_SRC, hidden_layers=1, hidden_units=8000, ordering="fixed random", train_masks=1,
              eval_masks=1, **_MADE)),
    Row("made_1hl_32masks", "MADE, 1 hidden layer, 32 masks", "paper",
        Paper(88.04, MADE_SRC, hidden_layers=1, hidden_units=8000, ordering="resampled", train_masks=32,
              eval_masks=32, **_MADE)),
    Row("made_2hl_32masks", "MADE, 2 hidden layers, 32 masks", "paper",
        Paper(86.64, MADE_SRC + "; also van den Oord et al. (2016) Table 4", hidden_layers=2, hidden_units=8000,
              ordering="resampled", train_masks=32, eval_masks=32, **_MADE)),
    Row("eonade", "EoNADE, 2 hidden layers (order-agnostic NADE)", "paper",
        Paper(85.10, "Uria, Murray & Larochelle (2014), EoNADE 2hl, ensemble of 128 orderings; as listed in "
                     "van den Oord et al. (2016) Table 4; the same model's NLL for 1, 2, 4, ..., 64 orderings "
                     "averaged (89.17, 87.96, 87.10, 86.41, 85.96, 85.60, 85.28) as the authors plot it "
                     "(github.com/MarcCote/NADE, deepnade/analyse_orderless_NADE.py, plot_MNIST_results)",
              hidden_layers=2, hidden_units=500, ordering="resampled", train_masks="per example", eval_masks=128,
              optimizer="sgd momentum 0.9, lr 1e-3 decayed linearly to 0", prior="none",
              epochs="200 'epochs' of 100 updates of 100 images: 40 passes over the 50,000 training images",
              recipe_source="the authors' script (github.com/MarcCote/NADE, deepnade/run_orderless_nade_binary.sh): "
                            "--hlayers 2 --units 500 (ReLU) --layerwise --pretraining_epochs 1 --lr 0.001 "
                            "--momentum 0.9 --epoch_size 100 --epochs 200 --batch_size 100, the best validation "
                            "kept; an 'epoch' there is epoch_size updates (deepnade/orderlessNADE.py)",
              sizes=tuple(SizeFigure(2, 500, k, nll, EONADE_ORDERINGS) for k, nll in (
                  (1, 89.17), (2, 87.96), (4, 87.10), (8, 86.41), (16, 85.96), (32, 85.60), (64, 85.28))))),
    Row("gated_pixelcnn", "Gated PixelCNN (beyond the papers above)", "beyond",
        Paper(81.30, "anchor: the original PixelCNN in van den Oord et al. (2016, PixelRNN), Table 4")),
    Row("pixelsnail", "PixelSNAIL (beyond the papers above)", "beyond",
        Paper(78.61, "anchor: pytorch-generative's PixelSNAIL (README results table), on dynamically binarized "
                     "MNIST (a fresh binarization each epoch, not this static set), a larger model trained longer; "
                     "the PixelSNAIL paper (Chen et al., 2018) reports no binarized-MNIST figure")),
)}
assert set(ROWS) == set(row_configs.ALL_ROWS)


# ---------------------------------------------------------------------------
# Our side: what a row's config is, in the paper's terms, and how it differs.

def _prior(cfg: dict) -> str:
    pens = cfg.get("penalties") or []
    return " + ".join(f"{p['name'].upper()} {p['weight']:g} ({p['mask']})" for p in pens) or "none"


def facts(cfg: dict) -> dict:
    """The row's model and recipe in the paper's terms (the keys of Paper that describe a model)."""
    m, o, t = cfg["model"], cfg["optim"], cfg["train"]
    name = m["name"]
    out: dict[str, Any] = {"hidden_layers": None, "hidden_units": None, "direct_connection": None,
                           "ordering": "fixed raster", "train_masks": 1, "eval_masks": 1}
    if name in ("made", "eonade"):
        out.update(hidden_layers=m["num_hidden_layers"], hidden_units=m["num_hidden"])
    if name == "nade":
        out.update(hidden_layers=1, hidden_units=m["num_hidden"])
    if name == "made":
        random = m.get("ordering", "raster") == "random"
        out.update(direct_connection=m["direct_connection"], train_masks=m["num_masks"],
                   eval_masks=m["num_eval_masks"],
                   ordering=("fixed random" if m["num_masks"] == 1 else "resampled") if random else "fixed raster")
    if name == "eonade":
        out.update(ordering="resampled", train_masks="per example", eval_masks=m["num_eval_orderings"])
    if name == "gated_pixelcnn":
        out.update(hidden_layers=m["num_layers"], hidden_units=m["num_features"])
    if name == "pixelsnail":
        out.update(hidden_layers=m["num_blocks"], hidden_units=m["num_features"])
    if name == "bernoulli":
        out.update(ordering=None)
    batch, n_train = t["batch_size"], (cfg["data"]["train_subset"] or TRAIN_IMAGES)
    stop = f", early stop after {t['early_stopping_patience']} validations without improvement" \
        if t["early_stopping_patience"] else ""
    out.update(optimizer=f"{o['name']} {o['learning_rate']:g}, {o['schedule']}"
                         + (f", EMA {o['ema_decay']:g}" if o["ema_decay"] else ""),
               prior=_prior(cfg), epochs=f"<= {t['num_steps'] * batch / n_train:g}{stop}")
    return out


@dataclasses.dataclass(frozen=True)
class Difference:
    kind: str     # smaller (a size below the paper's) | model (another architecture or ordering) | recipe
    text: str


def differences(paper: Paper, f: dict) -> list[Difference]:
    """Every way the row's facts `f` differ from `paper` (only what the paper states is compared)."""
    out = []

    def num(key, what, fmt="{:,}"):
        want, have = getattr(paper, key), f[key]
        if want is None or have == want:
            return
        kind = "smaller" if isinstance(want, int) and isinstance(have, int) and have < want else "model"
        out.append(Difference(kind, f"{what} {fmt.format(have) if isinstance(have, int) else have} "
                                    f"(paper {fmt.format(want) if isinstance(want, int) else want})"))
    num("hidden_layers", "hidden layers")
    num("hidden_units", "units")
    if paper.direct_connection is not None and f["direct_connection"] != paper.direct_connection:
        out.append(Difference("model", f"direct connection {'yes' if f['direct_connection'] else 'no'} "
                                       f"(paper {'yes' if paper.direct_connection else 'no'})"))
    if paper.ordering is not None and not (f["ordering"] == paper.ordering or (
            paper.ordering == "fixed" and str(f["ordering"]).startswith("fixed"))):
        out.append(Difference("model", f"ordering {f['ordering']} (paper {paper.ordering})"))
    num("train_masks", "training masks")
    num("eval_masks", "evaluation masks")
    if paper.optimizer is not None and f["optimizer"].split()[0] != paper.optimizer.split()[0]:
        out.append(Difference("recipe", f"optimizer {f['optimizer']} (paper {paper.optimizer})"))
    if paper.prior is not None and f["prior"] != paper.prior:
        out.append(Difference("recipe", f"prior {f['prior']} (paper {paper.prior})"))
    if paper.epochs is not None:
        out.append(Difference("recipe", f"epochs {f['epochs']} (paper {paper.epochs})"))
    return out


def verdict(row: Row, f: dict, diffs: list[Difference], nll: float | None, mle: float | None,
            still_improving_at: float | None = None) -> str:
    """met / missed against the published figure under the rule in the module docstring. A row
    short of "met" whose best validation came at its last epoch (`still_improving_at`, that epoch)
    says so: its budget, not its model, is the first suspect."""
    if nll is None:
        return ""
    text = _verdict(row, f, diffs, nll, mle)
    if still_improving_at is not None and row.kind != "baseline" and text != "met":
        text += f"; still improving: best validation at its last epoch ({_epochs(still_improving_at)})"
    return text


def _verdict(row: Row, f: dict, diffs: list[Difference], nll: float, mle: float | None) -> str:
    if row.kind == "baseline":
        return "" if mle is None else f"{'met' if nll <= mle else 'missed'} (MLE {mle:.4f})"
    pub = row.paper.nll
    if row.kind == "beyond":
        return f"beyond the papers ({nll - pub:+.2f} vs the anchor)"
    other = [d.text for d in diffs if d.kind == "model"]
    smaller = [d.text for d in diffs if d.kind == "smaller"]
    if other:
        return "not the paper's model: " + "; ".join(other + smaller) + f"; {nll - pub:+.2f} vs {pub:.2f}"
    if smaller:
        text = "smaller than the paper: " + "; ".join(smaller)
        same = [s for s in row.paper.sizes if (s.hidden_layers, s.hidden_units, s.eval_masks)
                == (f["hidden_layers"], f["hidden_units"], f["eval_masks"])]
        if same:
            s = same[0]
            if nll <= s.nll:
                return text + f"; met the paper's {s.nll:.2f} for this size ({s.where})"
            return text + f"; missed the paper's {s.nll:.2f} for this size by {nll - s.nll:+.2f} ({s.where})"
        return text + f"; no paper figure for this size; {nll - pub:+.2f} vs the paper's model"
    return "met" if nll <= pub else f"missed ({nll - pub:+.2f})"


# ---------------------------------------------------------------------------
# Configs, rows, the report.

def row_candidates(name: str, *, smoke: bool, manual_dir: str, data_dir: str) -> tuple[dict, dict]:
    """({candidate: validated config dict}, {candidate: overrides}) of row `name`."""
    base = row_configs.get_config(name + (",smoke" if smoke else ""))
    if base.data.name == "binarized_mnist":
        base.data.manual_dir = manual_dir
        base.data.data_dir = data_dir
    grid = row_configs.candidates(name, smoke)
    return ({c: table_kit.candidate_config(base, o) for c, o in grid}, {c: o for c, o in grid})


def check_data(manual_dir: str, data_dir: str) -> None:
    """Refuses, before anything trains, when binarized_mnist is neither prepared nor at hand."""
    import tensorflow_datasets as tfds
    if tfds.builder("binarized_mnist", data_dir=data_dir, file_format="array_record").is_prepared():
        return
    from dgm_jax.data import tfds_sets
    try:
        tfds_sets.check_manual_dir(manual_dir)
    except FileNotFoundError as e:
        raise TableError(f"the binarized MNIST is missing: {e}") from None


def bernoulli_mle_nll(manual_dir: str, data_dir: str) -> float:
    """Test NLL (nats/image) of the closed-form MLE of independent pixels, p_j = the training mean of
    pixel j, with p_j kept in [1/(2N), 1 - 1/(2N)] (N training images): the baseline row's bar. The
    unclipped MLE gives probability 0 to a pixel that is off in every training image, so a test image
    with that pixel on has NLL +inf (binarized MNIST has such pixels); the clip is the smallest change
    that makes the bar finite."""
    import numpy as np
    from dgm_jax.config_schema import DataConfig
    from dgm_jax.data import load_dataset
    ds = load_dataset(DataConfig(name="binarized_mnist", binarization="static", manual_dir=manual_dir,
                                 data_dir=data_dir))
    train = ds.images["train"].reshape(len(ds.images["train"]), -1).astype(np.float64)
    test = ds.images["test"].reshape(len(ds.images["test"]), -1).astype(np.float64)
    eps = 0.5 / len(train)
    p = np.clip(train.mean(axis=0), eps, 1 - eps)
    ll = np.where(test > 0, np.log(p), np.log1p(-p))
    return float(-ll.sum(axis=1).mean())


def collect(workdir: Path, configs: dict, overrides: dict, mle: float | None) -> list[dict]:
    """One entry per table row, finished or not."""
    from dgm_jax import sweeps
    out = []
    for name in row_configs.ROWS:
        row = ROWS[name]
        outcome = table_kit.read_row(workdir / name, configs[name], overrides[name], full_train_images=TRAIN_IMAGES)
        chosen = outcome.chosen or next(iter(configs[name]))
        cfg = configs[name][chosen]
        f = facts(cfg)
        diffs = differences(row.paper, f)
        test = outcome.test or {}
        rec = sweeps.read_member(workdir / name / chosen) or {}
        res = rec.get("results") or {}
        tried = {t["candidate"]: t for t in outcome.tried}[chosen]
        nll = test.get("nll_nats")
        out.append({
            "row": name, "model": row.label, "status": outcome.status,
            "chosen": outcome.chosen, "candidates": len(configs[name]), "num_params": res.get("num_params"),
            "architecture": _architecture(cfg, f), "orderings": f["ordering"] or "—",
            "masks": f"{f['train_masks']} / {f['eval_masks']}", "optimizer": f["optimizer"], "prior": f["prior"],
            "epochs": tried["epochs"], "best_epoch": tried["best_epoch"], "stopped_early": tried["stopped_early"],
            "best_val_nll": tried["best_val_nll"], "test_nll": nll, "test_stderr": test.get("nll_stderr"),
            "test_step": test.get("step"), "published": row.paper.nll, "source": row.paper.source,
            "recipe_source": row.paper.recipe_source,
            "differences": "; ".join(d.text for d in diffs),
            "verdict": verdict(row, f, diffs, nll, mle, still_improving_at=_still_improving_at(tried)),
            "wall_time_s": outcome.wall_time_s,
            "device": outcome.device,
            "samples": f"{name}/{chosen}/samples.png" if (workdir / name / chosen / "samples.png").is_file() else "",
            "error": next((t["error"] for t in outcome.tried if t["error"]), None)})
    return out


def _architecture(cfg: dict, f: dict) -> str:
    name = cfg["model"]["name"]
    if name == "bernoulli":
        return "784 independent pixels"
    if name == "fvsbn":
        return "784 logistic regressions"
    if name == "gated_pixelcnn":
        return f"{f['hidden_layers']} gated layers x {f['hidden_units']} features"
    if name == "pixelsnail":
        m = cfg["model"]

        def n(k, word):
            return f"{m[k]} {word}{'' if m[k] == 1 else 's'}"
        return (f"{n('num_blocks', 'block')} ({n('num_res_per_block', 'gated residual layer')} + 1 causal "
                f"attention, {n('num_heads', 'head')}, keys {m['key_features']}, values {m['value_features']}) x "
                f"{m['num_features']} features")
    units = f"{f['hidden_layers']} x {f['hidden_units']:,}"
    return units + ("" if f["direct_connection"] is None else f", direct {'yes' if f['direct_connection'] else 'no'}")


def _still_improving_at(tried: dict) -> float | None:
    """The last epoch, when the run used its whole budget and its best validation was that last one."""
    e, best = tried.get("epochs"), tried.get("best_epoch")
    if e is None or best is None or tried.get("stopped_early") or round(best, 1) != round(e, 1):
        return None
    return e


def _epochs(e: float | None) -> str:
    return "" if e is None else f"{e:.1f}".removesuffix(".0")


def _as_paper(r: dict) -> str:
    kind = ROWS[r["row"]].kind
    if kind == "baseline":
        return "— (a baseline, no paper)"
    if kind == "beyond":
        return "— (no paper has this model; the anchor is another)"
    return "differs: " + r["differences"] if r["differences"] else "as the paper"


def markdown(rows: list[dict], *, smoke: bool, samples: bool = True) -> str:
    """The table as markdown: one line per row, then the sources and recipes of the published values."""
    head = ["row", "architecture", "orderings", "masks (train / eval)", "optimizer, prior", "epochs (best)",
            "wall time", "device", "chosen (of)", "published", "test NLL", "as the paper", "verdict"]
    lines = [("SMOKE RUN (tiny budgets on 8x8 digits): not the table. " if smoke else "")
             + "Statically binarized MNIST (Larochelle & Murray split 50,000 / 10,000 / 10,000); NLL in nats per "
             "image; each row's candidates are chosen on validation, and the chosen one's best-validation "
             "checkpoint alone is scored on the 10,000 test images.", "",
             "| " + " | ".join(head + (["samples"] if samples else [])) + " |",
             "|" + "---|" * (len(head) + samples)]
    for r in rows:
        done = r["status"] == "done"
        nll = (f"{r['test_nll']:.2f} ± {r['test_stderr']:.2f}" if done
               else r["status"] + (f": {r['error'][:80]}" if r.get("error") else ""))
        early = ", early stop" if r["stopped_early"] else ""
        cells = [r["model"], r["architecture"], r["orderings"], r["masks"], f"{r['optimizer']}; prior {r['prior']}",
                 f"{_epochs(r['epochs'])} ({_epochs(r['best_epoch'])}){early}" if r["epochs"] is not None else "",
                 table_kit.format_duration(r["wall_time_s"]) if r["wall_time_s"] else "", r["device"] or "",
                 f"{r['chosen']} ({r['candidates']})" if r["chosen"] else f"({r['candidates']})",
                 "—" if r["published"] is None else f"{r['published']:.2f}", nll,
                 _as_paper(r), r["verdict"]]
        if samples:
            cells.append(f"[grid]({r['samples']})" if r["samples"] else "")
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    lines += ["", "Published values:"] + [f"- {r['model']}: {r['source']}." for r in rows]
    recipes: dict[str, list[str]] = {}
    for r in rows:
        if r["recipe_source"]:
            recipes.setdefault(r["recipe_source"], []).append(r["model"])
    lines += ["", "The papers' models and recipes (what the 'as the paper' column compares with):"]
    lines += [f"- {', '.join(models)}: {recipe}." for recipe, models in recipes.items()]
    return "\n".join(lines) + "\n"


def write_report(rows: list[dict], workdir: Path, smoke: bool) -> None:
    with open(workdir / "paper_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (workdir / "paper_table.md").write_text(markdown(rows, smoke=smoke))


def readme_block(rows: list[dict]) -> str:
    """README's copy: the table without the sample links, and the command that wrote it."""
    return (f"Written by `{COMMAND}` (do not edit by hand; rerun it).\n\n" + markdown(rows, smoke=False, samples=False))


def run_table(workdir, *, rows=(), smoke: bool = False, report_only: bool = False,
              manual_dir: str = DEFAULT_MANUAL_DIR, data_dir: str = "", readme: str | Path | None = None,
              records_dir: str | Path | None = None, in_process: bool = False, on_event=print) -> list[dict]:
    """Trains what is unfinished of the rows (all, or `rows`), then writes paper_table.md / .csv (and,
    given `readme`, that file's paper_table block); returns the table's rows (every row, finished or
    not). records_dir: rows the workdir lacks are restored from their records there, and given `readme`
    the finished rows are recorded there. in_process: candidates train in this process, not in children
    (tests)."""
    from dgm_jax import rundir

    unknown = sorted(set(rows) - set(row_configs.ROWS))
    if unknown:
        raise TableError(f"unknown rows {unknown}; valid: {', '.join(row_configs.ROWS)}")
    if readme is not None and smoke:
        raise TableError("a smoke table is not the table: it is never written into the README")
    workdir = Path(workdir).absolute()
    data_dir = data_dir or str(workdir / "tfds")
    grids = {r: row_candidates(r, smoke=smoke, manual_dir=manual_dir, data_dir=data_dir) for r in row_configs.ROWS}
    configs, overrides = {r: g[0] for r, g in grids.items()}, {r: g[1] for r, g in grids.items()}
    todo = [r for r in row_configs.ROWS if not rows or r in rows]
    if not smoke and not report_only:
        check_data(manual_dir, data_dir)
    info_path, info = table_kit.open_table(workdir, "paper_table.json", smoke, row_configs.ROWS)
    if records_dir is not None:
        table_kit.restore_rows(workdir, records_dir, configs, on_event)

    if not report_only:
        for name in todo:                      # every row checked before any trains
            table_kit.check_row(workdir / name, configs[name])
        for i, name in enumerate(todo, 1):
            outcome = table_kit.run_row(workdir / name, configs[name], overrides[name], full_train_images=TRAIN_IMAGES,
                                        in_process=in_process, tag=f"[{i}/{len(todo)}] {name}", on_event=on_event)
            if outcome.status == "done":
                on_event(f"[{i}/{len(todo)}] {name}: {outcome.chosen} chosen of {len(configs[name])}; test NLL "
                         f"{outcome.test['nll_nats']:.2f} ± {outcome.test['nll_stderr']:.2f} nats "
                         f"({table_kit.format_duration(outcome.wall_time_s)} in all)")
            else:
                on_event(f"[{i}/{len(todo)}] {name}: {outcome.status} (see {workdir / name}/*/train.log)")

    mle = info.get("bernoulli_mle_nll")
    if not smoke and (mle is None or not math.isfinite(mle)) and (workdir / "bernoulli").is_dir():
        info["bernoulli_mle_nll"] = mle = bernoulli_mle_nll(manual_dir, data_dir)
        rundir.write_json_atomic(info_path, info)
    table = collect(workdir, configs, overrides, mle)
    write_report(table, workdir, smoke)
    if readme is not None:
        if records_dir is not None:
            for r in table:
                if r["status"] == "done":
                    table_kit.archive_row(workdir / r["row"], records_dir)
        table_kit.write_block(readme, BLOCK, readme_block(table))
    return table


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    table_kit.table_main("paper_table", run_table, FLAGS, README, RECORDS_DIR)


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    _define_flags()
    app.run(main)
