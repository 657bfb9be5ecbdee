"""The statically binarized MNIST table of the literature, reproduced: python experiments/paper_table.py --workdir=runs/paper_table

    [--rows=fvsbn,nade]   only these rows (the table still lists every row)
    [--smoke]             seconds-long budgets on embedded data (the test suite runs this)
    [--report_only]       train nothing; rewrite paper_table.md / .csv from the workdir
    [--manual_dir=DIR]    where the Larochelle & Murray .amat files are
                          (default: ../shared/data/binarized_mnist beside the repository)

Each row trains in <workdir>/<row> (its config: experiments/configs/paper_table.py,
variant <row>; its full log in train.log), selects on the validation split only
(early stopping, the best-validation checkpoint), and scores that checkpoint on all
10,000 test images. Running the same command again skips finished rows and resumes
an interrupted one from its latest checkpoint; the wall time of a row adds up over
its launches. The report, paper_table.md and paper_table.csv, has per row: the
parameters, test NLL ± standard error (nats per image), the published value and its
source, the difference, whether the bar (<= the published value) is met, the epochs
trained and to the best checkpoint, the wall time and the device; and a sample grid
per row (<workdir>/<row>/samples.png).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # the row configs import experiments.configs
    sys.path.insert(0, str(REPO))

from experiments.configs import paper_table as row_configs  # noqa: E402

FLAGS = flags.FLAGS
DEFAULT_MANUAL_DIR = str(REPO.parent / "shared" / "data" / "binarized_mnist")


def _define_flags() -> None:
    """Only when run as a script, so that tests can import run_table beside other absl programs."""
    flags.DEFINE_string("workdir", None, "Directory of the table; row <name> trains in <workdir>/<name>.",
                        required=True)
    flags.DEFINE_list("rows", [], f"Rows to train (default: all of {', '.join(row_configs.ROWS)}).")
    flags.DEFINE_bool("smoke", False, "Tiny budgets on the embedded 8x8 digits: the pipeline in seconds, not the table.")
    flags.DEFINE_bool("report_only", False, "Train nothing; rewrite the report from what the workdir holds.")
    flags.DEFINE_string("manual_dir", DEFAULT_MANUAL_DIR, "Directory holding binarized_mnist_{train,valid,test}.amat.")
    flags.DEFINE_string("data_dir", "", "tfds data_dir for the prepared binarized_mnist (default: <workdir>/tfds).")
    flags.DEFINE_bool("row_process", False, "Internal: train the one row of --rows in this process (the table "
                      "runs each row so).")

TRAIN_IMAGES = 50_000


class TableError(Exception):
    """A table that cannot run as asked (unknown rows, missing data, a workdir of the other kind)."""


@dataclasses.dataclass(frozen=True)
class Published:
    label: str              # the row as the table shows it
    nll: float | None       # published test NLL (nats); None for the baseline
    source: str


PUBLISHED = {
    "bernoulli": Published("Independent pixels (Bernoulli)", None,
                           "baseline; bar: the closed-form MLE (training pixel means, kept in "
                           "[1/(2N), 1 - 1/(2N)]: unclipped, it is +inf on the test split)"),
    "fvsbn": Published("FVSBN", 97.45, "Larochelle & Murray (2011), NADE paper, MNIST results"),
    "nade": Published("NADE, H = 500, fixed order", 88.33,
                      "as listed in Germain et al. (2015, MADE) and van den Oord et al. (2016, PixelRNN)"),
    "made_1mask": Published("MADE, 1 hidden layer, 1 mask", 88.40, "Germain et al. (2015), MNIST results"),
    "made_32masks": Published("MADE, 2 hidden layers, 32 masks", 86.64,
                              "Germain et al. (2015); layers as listed by van den Oord et al. (2016)"),
    "gated_pixelcnn": Published("Gated PixelCNN (beyond the papers above)", 81.30,
                                "anchor: the original PixelCNN in van den Oord et al. (2016, PixelRNN), "
                                "binarized MNIST results"),
}
assert set(PUBLISHED) == set(row_configs.ROWS)


def device_name() -> str:
    """The device the rows ran on: the accelerator's kind, or the CPU's model and core count."""
    import os
    import jax
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        return f"{jax.device_count()} x {dev.device_kind}"
    model = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def row_config(name: str, *, smoke: bool, manual_dir: str, data_dir: str) -> dict:
    """The row's validated config dict (progress bar on: the table shows the running row's progress)."""
    from dgm_jax import sweeps
    config = row_configs.get_config(name + (",smoke" if smoke else ""))
    if config.data.name == "binarized_mnist":
        config.data.manual_dir = manual_dir
        config.data.data_dir = data_dir
    config.train.progress_bar = not smoke
    return sweeps.resolved(config)


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
    pixel j, with p_j kept in [1/(2N), 1 - 1/(2N)] (N training images). The unclipped MLE gives
    probability 0 to a pixel that is off in every training image, so a test image with that
    pixel on has NLL +inf (binarized MNIST has such pixels); the clip is the smallest change
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


def collect(workdir: Path, device: str, mle: float | None) -> list[dict]:
    """One row per table entry, finished or not, from its sweep_member.json and results.json."""
    from dgm_jax import sweeps
    rows = []
    for name in row_configs.ROWS:
        pub = PUBLISHED[name]
        rec = sweeps.read_member(workdir / name) or {}
        res = rec.get("results") or {}
        cfg = rec.get("config") or {}
        batch = (cfg.get("train") or {}).get("batch_size", 0)
        num_train = (cfg.get("data") or {}).get("train_subset") or TRAIN_IMAGES
        nll = res.get("test_nll_nats")
        bar = pub.nll if pub.nll is not None else mle
        row = {"row": name, "model": pub.label, "status": rec.get("status", "not run"),
               "num_params": res.get("num_params"), "test_nll": nll, "test_stderr": res.get("test_nll_stderr"),
               "best_val_nll": res.get("best_val_nll"), "published": pub.nll, "source": pub.source, "bar": bar,
               "difference": None if nll is None or bar is None else nll - bar,
               "bar_met": None if nll is None or bar is None else bool(nll <= bar),
               "epochs": None if not res else res["final_step"] * batch / num_train,
               "best_epoch": None if not res else res["best_step"] * batch / num_train,
               "stopped_early": res.get("stopped_early"), "wall_time_s": rec.get("wall_time_s"),
               "launches": rec.get("launches"), "device": rec.get("device", device),
               "samples": f"{name}/samples.png" if (workdir / name / "samples.png").is_file() else "",
               "error": rec.get("error")}
        rows.append(row)
    return rows


def _n(v, fmt):
    return "" if v is None else fmt.format(v)


def _epochs(e: float) -> str:
    return f"{e:.1f}".removesuffix(".0")


def _difference(d: float | None) -> str:
    # Two decimals, or four where two would print 0.00 (the Bernoulli row sits at its MLE).
    return "" if d is None else f"{d:+.2f}" if abs(d) >= 0.005 else f"{d:+.4f}"


def write_report(rows: list[dict], workdir: Path, smoke: bool) -> None:
    fields = list(rows[0])
    with open(workdir / "paper_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    lines = [("SMOKE RUN (tiny budgets on 8x8 digits): not the table. " if smoke else "")
             + "Statically binarized MNIST (Larochelle & Murray split 50,000 / 10,000 / 10,000); test NLL in "
             "nats per image of the best-validation checkpoint on all 10,000 test images.", "",
             "| model | params | test NLL | published | difference | bar | epochs (best) | wall time | device |"
             " samples |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "done":
            state = r["status"] + (f": {r['error'][:80]}" if r.get("error") else "")
            lines.append(f"| {r['model']} | | {state} | {_n(r['published'], '{:.2f}')} | | | | "
                         f"{_n(r['wall_time_s'], '{:.0f} s')} | | |")
            continue
        pub = _n(r["published"], "{:.2f}") or "—"
        bar = ("met" if r["bar_met"] else "MISSED") if r["bar_met"] is not None else ""
        if r["published"] is None and r["bar"] is not None:
            bar += f" (MLE {r['bar']:.4f})"
        wall = r["wall_time_s"] or 0.0
        grid = f"[grid]({r['samples']})" if r["samples"] else ""
        lines.append(
            f"| {r['model']} | {r['num_params']:,} | {r['test_nll']:.2f} ± {r['test_stderr']:.2f} | {pub} | "
            f"{_difference(r['difference'])} | {bar} | {_epochs(r['epochs'])} ({_epochs(r['best_epoch'])})"
            f"{', early stop' if r['stopped_early'] else ''} | {int(wall // 60)} min {wall % 60:.0f} s | "
            f"{r['device']} | {grid} |")
    lines += ["", "Sources of the published values:"]
    lines += [f"- {r['model']}: {r['source']}" for r in rows]
    (workdir / "paper_table.md").write_text("\n".join(lines) + "\n")


def train_row(name: str, cfg: dict, row_dir: Path) -> dict:
    """Trains (or resumes) one row in this process and records it in <row_dir>/sweep_member.json."""
    from dgm_jax import rundir, sweeps
    rec = sweeps.run_member(name, {}, cfg, str(row_dir), score_train=False)
    rec["device"] = device_name()
    rundir.write_json_atomic(row_dir / sweeps.MEMBER_FILE, rec)
    return rec


def _train_row_in_child(name: str, row_dir: Path, *, smoke: bool, manual_dir: str, data_dir: str) -> dict:
    """train_row in a fresh Python process: each row gets the CPU devices its config asks for
    (train.cpu_devices: NADE one per core, the others one), which JAX fixes when it starts, and
    no state of one row's libraries reaches the next. SIGTERM / SIGINT are passed on to the
    row, which saves a checkpoint and exits with the pre-emption code."""
    import signal
    import subprocess
    from dgm_jax import distributed, rundir, sweeps
    from dgm_jax.train import Preempted
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--workdir={row_dir.parent}", f"--rows={name}",
           f"--manual_dir={manual_dir}", f"--data_dir={data_dir}", "--row_process"] + (["--smoke"] if smoke else [])
    child = subprocess.Popen(cmd, cwd=str(REPO))
    received = []

    def pass_on(signum, frame):
        received.append(signum)
        child.send_signal(signum)
    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == distributed.PREEMPTED_EXIT_CODE or received:
        # The table stops here, whether the row had saved its step (exit 75) or was stopped
        # before its first checkpoint; the same command resumes (or restarts) this row.
        raise Preempted(f"row {name} was stopped by a signal (its checkpoints are in {row_dir})", -1)
    rec = sweeps.read_member(row_dir) or {"name": name, "wall_time_s": 0.0}
    if code != 0 and rec.get("status") != "failed":
        rec.update(status="failed", error=f"the row's process exited with code {code}")
        rundir.write_json_atomic(row_dir / sweeps.MEMBER_FILE, rec)
    return rec


def run_table(workdir, *, rows=(), smoke: bool = False, report_only: bool = False,
              manual_dir: str = DEFAULT_MANUAL_DIR, data_dir: str = "", on_event=print) -> list[dict]:
    """Trains the rows that are not finished (all, or `rows`), then writes paper_table.md / .csv;
    returns the table's rows (every row, finished or not)."""
    from dgm_jax import rundir, sweeps

    unknown = sorted(set(rows) - set(row_configs.ROWS))
    if unknown:
        raise TableError(f"unknown rows {unknown}; valid: {', '.join(row_configs.ROWS)}")
    workdir = Path(workdir).absolute()
    data_dir = data_dir or str(workdir / "tfds")
    todo = [r for r in row_configs.ROWS if not rows or r in rows]
    configs = {r: row_config(r, smoke=smoke, manual_dir=manual_dir, data_dir=data_dir) for r in todo}
    if not smoke and not report_only:
        check_data(manual_dir, data_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = device_name()
    info_path = workdir / "paper_table.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if info.get("smoke", smoke) != smoke:
        raise TableError(f"{workdir} holds a {'smoke' if info['smoke'] else 'full'} table; use another workdir")
    info.update(smoke=smoke, rows=list(row_configs.ROWS))
    rundir.write_json_atomic(info_path, info)

    if not report_only:
        changed = [r for r in todo if (sweeps.read_member(workdir / r) or {}).get("config", configs[r]) != configs[r]]
        if changed:
            # A row trained (or half-trained) under other settings would mix two runs in one figure.
            raise TableError(f"the config of row(s) {', '.join(changed)} changed since they were trained in "
                             f"{workdir}; move their directories away to retrain them, or use another workdir")
    for i, name in enumerate([] if report_only else todo, 1):
        row_dir, tag = workdir / name, f"[{i}/{len(todo)}] {name}"
        if sweeps.is_finished(row_dir, configs[name]):
            on_event(f"{tag}: finished, skipped")
            continue
        prev = sweeps.read_member(row_dir)
        on_event(f"{tag}: {'resuming' if prev else 'training'} ({configs[name]['train']['num_steps']:,} steps "
                 f"at most; log in {row_dir}/train.log)")
        t0 = time.time()
        rec = _train_row_in_child(name, row_dir, smoke=smoke, manual_dir=manual_dir, data_dir=data_dir)
        if rec["status"] == "done":
            r = rec["results"]
            on_event(f"{tag}: test NLL {r['test_nll_nats']:.2f} ± {r['test_nll_stderr']:.2f} nats "
                     f"({time.time() - t0:.0f} s this launch)")
        else:
            on_event(f"{tag}: FAILED: {rec.get('error')} (see {row_dir}/train.log)")

    mle = info.get("bernoulli_mle_nll")
    if not smoke and (mle is None or not math.isfinite(mle)) and sweeps.read_member(workdir / "bernoulli"):
        info["bernoulli_mle_nll"] = bernoulli_mle_nll(manual_dir, data_dir)
        rundir.write_json_atomic(info_path, info)
    table = collect(workdir, device, info.get("bernoulli_mle_nll"))
    write_report(table, workdir, smoke)
    return table


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # The console: one line per row, the running row's progress bar, warnings; the full log of
    # each row (INFO, the libraries' too) goes to <workdir>/<row>/train.log.
    from dgm_jax import sweeps
    sweeps.quiet_console()
    if FLAGS.row_process:        # one row, started by run_table in a process of its own
        _row_process_main()
        return
    try:
        table = run_table(FLAGS.workdir, rows=FLAGS.rows, smoke=FLAGS.smoke, report_only=FLAGS.report_only,
                          manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir,
                          on_event=lambda line: print(line, flush=True))
    except TableError as e:
        print(f"paper_table: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - only the pre-emption is handled here
        from dgm_jax import distributed
        from dgm_jax.train import Preempted
        if not isinstance(e, Preempted):
            raise
        print(f"paper_table: {e}; the same command resumes the row", file=sys.stderr)
        sys.exit(distributed.PREEMPTED_EXIT_CODE)
    print((Path(FLAGS.workdir) / "paper_table.md").read_text())
    failed = [r["row"] for r in table if (not FLAGS.rows or r["row"] in FLAGS.rows) and r["status"] != "done"]
    if failed and not FLAGS.report_only:
        print(f"Rows not finished: {', '.join(failed)} (see <workdir>/<row>/train.log)", file=sys.stderr)
        sys.exit(1)


def _row_process_main() -> None:
    from dgm_jax import distributed
    from dgm_jax.train import Preempted
    (name,) = FLAGS.rows
    workdir = Path(FLAGS.workdir).absolute()
    cfg = row_config(name, smoke=FLAGS.smoke, manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir or
                     str(workdir / "tfds"))
    try:
        train_row(name, cfg, workdir / name)     # a failure is recorded in sweep_member.json
    except Preempted:
        sys.exit(distributed.PREEMPTED_EXIT_CODE)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
