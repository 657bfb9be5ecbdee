"""Pieces shared by the result tables (experiments/paper_table.py, experiments/levels_table.py).

A table is a list of rows; a row is a small grid of candidate configs, selected on
validation only. A row's directory holds

    <row_dir>/<candidate>/     one run per candidate (sweep_member.json, results.json, train.log,
                               checkpoints), trained with train.score_test=False: a candidate
                               reads the training and validation splits only
    <row_dir>/tried.csv        every candidate tried: its settings, status, best validation NLL,
                               steps, epochs, wall time, launches, device, and which one was chosen
    <row_dir>/test.json        the test NLL of the chosen candidate's best-validation checkpoint,
                               scored once, after every candidate finished

A finished row's record (tried.csv, test.json and each candidate's sweep_member.json,
results.json, config.json, run_info.json, metrics.jsonl and sample grids; no checkpoints,
a few hundred KB) is copied into the repository (docs/<table>/records/<row>/) when the
README block is written, and copied back into a workdir that lacks the row: a fresh
clone regenerates the README's table, and a later session adds rows, without retraining
what has been scored. A record whose configs no longer match the row's (beyond where the data
lie, sweeps.LOCATION_KEYS: a record made in another clone is the same run) is not restored
(the row trains anew and its new record replaces the old one when published).

The chosen candidate is the finished one with the lowest best-validation NLL (a tie:
the one listed first). Once test.json exists the row's grid is closed: a candidate
added, removed or changed is refused (TableError), so that a test score of a run
which validation did not choose never comes to exist.

API (all paths are pathlib.Path or str):
    Candidate(name, overrides)              one configuration of a row's grid: dotted config overrides
    candidate_config(base, overrides)       its validated, JSON-able config dict (sweeps.resolved), with
                                            train.score_test=False and no progress bar
    run_row(row_dir, configs, ...)          trains the unfinished candidates ({name: config dict}, in order),
                                            rewrites tried.csv, chooses, scores the test split once;
                                            returns a RowOutcome; resumable, like the runs themselves
    read_row(row_dir, configs, ...)         the RowOutcome of what row_dir holds (trains nothing)
    archive_row(row_dir, records_dir)       copies a finished row's record to records_dir/<row>/
    restore_rows(workdir, records_dir, configs)  copies the records of rows workdir lacks into it
    run_child(args)                         this file as a child process (SIGTERM / SIGINT passed on)
    open_table(workdir, info_name, smoke, rows)  makes the table's directory, records smoke / rows
    table_main(prog, run_table, flags, readme)  a table script's command line (flags, exit codes, report)
    write_block(path, name, text)           replaces what lies between <!-- name:begin --> and
    read_block(path, name)                  <!-- name:end --> in a text file (README.md); read it back
    device_name(), format_duration(s), epochs(steps, config, full_train_images)

The children: ``python experiments/table_kit.py train <candidate_dir>`` trains the config
in <candidate_dir>/requested_config.json; ``... score <candidate_dir> <candidate>...``
scores its best checkpoint on the test split into <candidate_dir>/../test.json (the
candidates it was chosen among are recorded with it). Each is a fresh
process, so that the config's train.cpu_devices takes effect (JAX fixes its devices
when it starts) and no state of one run's libraries reaches the next.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REQUESTED_CONFIG = "requested_config.json"
TRIED_CSV = "tried.csv"
TEST_JSON = "test.json"
TRIED_FIELDS = ("candidate", "settings", "status", "best_val_nll", "best_step", "final_step", "batch_size",
                "epochs", "best_epoch", "stopped_early", "wall_time_s", "launches", "device", "chosen", "error")


class TableError(Exception):
    """A table that cannot run as asked (unknown rows, a changed config, a closed grid, a bad README)."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str                          # the run's directory name inside the row's
    overrides: Mapping[str, Any]       # dotted keys of the row's base config -> values


@dataclasses.dataclass
class RowOutcome:
    status: str                        # done | not run | incomplete | failed
    tried: list[dict]                  # tried.csv's rows (candidate order)
    chosen: str | None                 # the candidate chosen on validation (all finished), else None
    test: dict | None                  # test.json: the chosen one's test NLL, once scored
    wall_time_s: float                 # every candidate's training (over all launches) + the test scoring
    device: str                        # where the chosen one (else the last one) ran


def candidate_config(base, overrides: Mapping[str, Any]) -> dict:
    """The validated config dict of one candidate (a ConfigDict `base` with dotted `overrides`)."""
    from dgm_jax import sweeps
    cfg = sweeps.apply_overrides(base, overrides)
    cfg.train.score_test = False
    cfg.train.progress_bar = False
    return sweeps.resolved(cfg)


def epochs(steps: int | None, config: Mapping, full_train_images: int) -> float | None:
    """Passes over the training set in `steps` steps (data.train_subset, if set, is the set)."""
    if steps is None:
        return None
    return steps * config["train"]["batch_size"] / (config["data"]["train_subset"] or full_train_images)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(round(seconds))                     # rounded once: 2399.6 s is 40 min 0 s, not 39 min 60 s
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def device_name() -> str:
    """The device runs compute on: the accelerator's kind, or the CPU's model and core count."""
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


# ---------------------------------------------------------------------------
# The README block.

def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def _block_span(text: str, path: Path, name: str) -> tuple[int, int]:
    begin, end = _markers(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise TableError(f"{path} must hold exactly one {begin!r} followed by one {end!r} "
                         f"(found {text.count(begin)} and {text.count(end)})")
    return text.index(begin) + len(begin), text.index(end)


def read_block(path, name: str) -> str:
    """The text between the markers of block `name` in file `path`, without the surrounding newlines."""
    path = Path(path)
    text = path.read_text()
    i, j = _block_span(text, path, name)
    return text[i:j].strip("\n")


def write_block(path, name: str, block: str) -> bool:
    """Replaces block `name` of file `path` by `block` (atomically); returns whether the file changed."""
    path = Path(path)
    text = path.read_text()
    i, j = _block_span(text, path, name)
    new = text[:i] + "\n" + block.strip("\n") + "\n" + text[j:]
    if new == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
    return True


# ---------------------------------------------------------------------------
# One row: candidates, tried.csv, the choice, the test split once.

def _settings(overrides: Mapping[str, Any]) -> str:
    return "; ".join(f"{k}={v!r}" for k, v in overrides.items()) or "(the row's config)"


def _tried_rows(row_dir: Path, configs: Mapping[str, dict], overrides: Mapping[str, Mapping],
                full_train_images: int, chosen: str | None) -> list[dict]:
    from dgm_jax import sweeps
    rows = []
    for name, cfg in configs.items():
        rec = sweeps.read_member(row_dir / name) or {}
        res = rec.get("results") or {}
        rows.append({
            "candidate": name, "settings": _settings(overrides.get(name, {})),
            "status": rec.get("status", "not run"), "best_val_nll": res.get("best_val_nll"),
            "best_step": res.get("best_step"), "final_step": res.get("final_step"),
            "batch_size": cfg["train"]["batch_size"], "epochs": epochs(res.get("final_step"), cfg, full_train_images),
            "best_epoch": epochs(res.get("best_step"), cfg, full_train_images),
            "stopped_early": res.get("stopped_early"), "wall_time_s": rec.get("wall_time_s"),
            "launches": rec.get("launches"), "device": rec.get("device"), "chosen": name == chosen,
            "error": rec.get("error")})
    return rows


def _choose(tried: Sequence[dict]) -> str | None:
    """The candidate of lowest best-validation NLL, once every candidate is done (else None)."""
    if not tried or any(t["status"] != "done" for t in tried):
        return None
    return min(tried, key=lambda t: t["best_val_nll"])["candidate"]   # min keeps the first of a tie


def _write_tried(row_dir: Path, tried: Sequence[dict]) -> None:
    row_dir.mkdir(parents=True, exist_ok=True)
    tmp = row_dir / (TRIED_CSV + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRIED_FIELDS)
        w.writeheader()
        w.writerows(tried)
    os.replace(tmp, row_dir / TRIED_CSV)


def read_test(row_dir) -> dict | None:
    try:
        return json.loads((Path(row_dir) / TEST_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def check_row(row_dir, configs: Mapping[str, dict]) -> None:
    """Refuses a row whose candidates' configs changed since they trained, or whose grid changed
    after its test split was scored."""
    from dgm_jax import sweeps
    row_dir = Path(row_dir)
    changed = [n for n, cfg in configs.items()
               if not sweeps.same_experiment((sweeps.read_member(row_dir / n) or {}).get("config", cfg), cfg)]
    if changed:
        raise TableError(f"the config of candidate(s) {', '.join(changed)} of {row_dir} changed since they were "
                         "trained; move the row's directory away to retrain it, or use another workdir")
    test = read_test(row_dir)
    if test is not None and list(test["candidates"]) != list(configs):
        raise TableError(f"the test split of {row_dir} was scored for {test['candidate']!r}, chosen among "
                         f"{test['candidates']}; its grid is closed and cannot become {list(configs)} (move the "
                         "row's directory away to select again)")


def read_row(row_dir, configs: Mapping[str, dict], overrides: Mapping[str, Mapping] | None = None, *,
             full_train_images: int) -> RowOutcome:
    """What row_dir holds for the candidates `configs` (trains and scores nothing; rewrites nothing)."""
    from dgm_jax import sweeps
    row_dir = Path(row_dir)
    tried = _tried_rows(row_dir, configs, overrides or {}, full_train_images, None)
    chosen = _choose(tried)
    for t in tried:
        t["chosen"] = t["candidate"] == chosen
    test = read_test(row_dir)
    statuses = {t["status"] for t in tried}
    status = ("done" if chosen and test else "failed" if "failed" in statuses
              else "not run" if statuses == {"not run"} else "incomplete")
    wall = sum(t["wall_time_s"] or 0.0 for t in tried) + ((test or {}).get("wall_time_s") or 0.0)
    devices = [(sweeps.read_member(row_dir / t["candidate"]) or {}).get("device") for t in tried]
    device = next((d for t, d in zip(tried, devices) if t["chosen"] and d), None) or next(
        (d for d in reversed(devices) if d), "")
    return RowOutcome(status=status, tried=tried, chosen=chosen, test=test, wall_time_s=wall, device=device)


def run_row(row_dir, configs: Mapping[str, dict], overrides: Mapping[str, Mapping] | None = None, *,
            full_train_images: int, in_process: bool = False, tag: str = "",
            on_event: Callable[[str], None] = print) -> RowOutcome:
    """Trains the row's unfinished candidates (configs: {name: candidate_config(...)}, in order), rewrites
    tried.csv after each, and once all are done scores the chosen one's best checkpoint on the test split
    (only if test.json does not exist yet). in_process=True runs the candidates in this process (tests:
    no JAX start per child; train.cpu_devices then gets the devices this process has).

    Raises TableError (check_row) before anything trains; dgm_jax.train.Preempted when a signal stopped
    a child (the same call resumes it).
    """
    from dgm_jax import sweeps
    row_dir = Path(row_dir).absolute()
    overrides = overrides or {}
    check_row(row_dir, configs)
    tag = tag or row_dir.name
    for name, cfg in configs.items():
        cand_dir = row_dir / name
        if sweeps.is_finished(cand_dir, cfg):
            continue
        prev = sweeps.read_member(cand_dir)
        on_event(f"{tag}/{name}: {'resuming' if prev else 'training'} ({cfg['train']['num_steps']:,} steps at most; "
                 f"log in {cand_dir}/train.log)")
        cand_dir.mkdir(parents=True, exist_ok=True)
        (cand_dir / REQUESTED_CONFIG).write_text(json.dumps(cfg, indent=1))
        rec = train_candidate(cand_dir) if in_process else _train_in_child(cand_dir)
        res = rec.get("results") or {}
        on_event(f"{tag}/{name}: " + (f"best validation NLL {res['best_val_nll']:.3f} at step {res['best_step']:,} "
                                      f"({format_duration(rec['wall_time_s'])} in all)" if rec["status"] == "done"
                                      else f"FAILED: {rec.get('error')} (see {cand_dir}/train.log)"))
        _write_tried(row_dir, _tried_rows(row_dir, configs, overrides, full_train_images, None))
    outcome = read_row(row_dir, configs, overrides, full_train_images=full_train_images)
    if outcome.chosen is not None and outcome.test is None:
        on_event(f"{tag}: chose {outcome.chosen} on validation; scoring it on the test split")
        cand_dir = row_dir / outcome.chosen
        if in_process:
            score_test(cand_dir, list(configs))
        else:
            run_child(["score", str(cand_dir), *configs])
        outcome = read_row(row_dir, configs, overrides, full_train_images=full_train_images)
        if outcome.test is None:
            raise TableError(f"scoring the test split of {cand_dir} wrote no {row_dir / TEST_JSON}")
    _write_tried(row_dir, outcome.tried)
    return outcome


# ---------------------------------------------------------------------------
# A finished row's record, kept in the repository.

RECORD_ROW_FILES = (TRIED_CSV, TEST_JSON)
RECORD_CANDIDATE_FILES = ("sweep_member.json", "results.json", "config.json", "run_info.json", "metrics.jsonl",
                          "samples.png", "samples_by_class.png")


def archive_row(row_dir, records_dir) -> Path:
    """Copies the record of the finished row in row_dir (its test.json must exist) to
    records_dir/<row>/, replacing an older record of that row; returns that directory."""
    row_dir = Path(row_dir)
    test = read_test(row_dir)
    if test is None:
        raise TableError(f"{row_dir} has no {TEST_JSON}: only a finished row has a record")
    dest = Path(records_dir) / row_dir.name
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in RECORD_ROW_FILES:
        shutil.copyfile(row_dir / name, tmp / name)
    for cand in test["candidates"]:
        (tmp / cand).mkdir()
        for name in RECORD_CANDIDATE_FILES:
            if (row_dir / cand / name).is_file():
                shutil.copyfile(row_dir / cand / name, tmp / cand / name)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)          # the old record stays whole until the new one is in place
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def restore_rows(workdir, records_dir, configs: Mapping[str, Mapping[str, dict]],
                 on_event: Callable[[str], None] = print) -> list[str]:
    """For each row of `configs` ({row: {candidate: config dict}}) that workdir does not hold at all,
    copies its record from records_dir when the record is for exactly these candidates and configs;
    returns the rows restored. A row that workdir holds, even partly, is never touched."""
    from dgm_jax import sweeps
    restored = []
    for row, cands in configs.items():
        src, dest = Path(records_dir) / row, Path(workdir) / row
        test = read_test(src)
        if test is None or dest.exists():
            continue
        if list(test["candidates"]) != list(cands) or any(
                not sweeps.is_finished(src / name, cfg) for name, cfg in cands.items()):
            on_event(f"{row}: the record in {src} is for other candidates or configs; the row trains anew "
                     "(publishing it replaces that record)")
            continue
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        os.replace(tmp, dest)
        on_event(f"{row}: restored from its record in {src} (trained and scored in an earlier session)")
        restored.append(row)
    return restored


# ---------------------------------------------------------------------------
# What the children run (also called in-process by run_row(in_process=True)).

def train_candidate(cand_dir) -> dict:
    """Trains (or resumes) the config in <cand_dir>/requested_config.json, validation only; the record
    (sweep_member.json, with the device) is returned."""
    from dgm_jax import rundir, sweeps
    cand_dir = Path(cand_dir)
    cfg = json.loads((cand_dir / REQUESTED_CONFIG).read_text())
    if cfg["train"]["score_test"]:
        raise TableError(f"{cand_dir / REQUESTED_CONFIG}: a candidate must have train.score_test=False")
    rec = sweeps.run_member(cand_dir.name, {}, cfg, str(cand_dir), score_train=False)
    rec["device"] = device_name()
    rundir.write_json_atomic(cand_dir / sweeps.MEMBER_FILE, rec)
    return rec


def score_test(cand_dir, candidates: Sequence[str]) -> dict:
    """The test NLL of the best-validation checkpoint of cand_dir, written to <row_dir>/test.json
    (with the candidates it was chosen among); refuses if test.json exists (the split is read once)."""
    from dgm_jax import evaluation, rundir, xla_cpu
    cand_dir = Path(cand_dir)
    out = cand_dir.parent / TEST_JSON
    if out.exists():
        raise TableError(f"{out} exists: the test split of this row was scored already")
    cfg = json.loads((cand_dir / "config.json").read_text())
    xla_cpu.request_cpu_devices(cfg["train"]["cpu_devices"])       # before JAX starts, as in training
    t0 = time.time()
    res = evaluation.evaluate_checkpoint(cand_dir, "test", "best")
    res.update(candidate=cand_dir.name, candidates=list(candidates), wall_time_s=time.time() - t0,
               device=device_name())
    rundir.write_json_atomic(out, res)
    return res


def run_child(args: Sequence[str]) -> int:
    """Runs ``python experiments/table_kit.py *args`` and waits; SIGTERM / SIGINT are passed on to it.
    Raises dgm_jax.train.Preempted if it was stopped by a signal (it saved its step, exit code 75, or
    was stopped before its first checkpoint); returns its exit code otherwise."""
    from dgm_jax import distributed
    from dgm_jax.train import Preempted
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], cwd=str(REPO))
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
        raise Preempted(f"{' '.join(args[:2])} was stopped by a signal; the same command resumes it", -1)
    return code


def open_table(workdir: Path, info_name: str, smoke: bool, rows: Sequence[str]) -> tuple[Path, dict]:
    """Makes `workdir` and records in <workdir>/<info_name> whether it is a smoke table and its rows;
    refuses a smoke table in a full table's directory and the reverse. Returns (the file, its dict)."""
    workdir.mkdir(parents=True, exist_ok=True)
    info_path = workdir / info_name
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if info.get("smoke", smoke) != smoke:
        raise TableError(f"{workdir} holds a {'smoke' if info['smoke'] else 'full'} table; use another workdir")
    info.update(smoke=smoke, rows=list(rows))
    from dgm_jax import rundir
    rundir.write_json_atomic(info_path, info)
    return info_path, info


def table_main(prog: str, run_table: Callable, flag_values, readme: Path, records_dir: Path) -> None:
    """The command line of a table script (paper_table.py, levels_table.py): runs
    run_table(workdir, rows=..., ...) from the script's flags, prints <workdir>/<prog>.md, and exits
    2 on a TableError, PREEMPTED_EXIT_CODE when preempted (the same command resumes), 1 when a
    row asked for did not finish. A full (not smoke) table restores the rows its workdir lacks from
    records_dir and, with --write_readme, records its finished rows there. The console gets one line
    per candidate and the warnings; the full log of each candidate (INFO, the libraries' too) goes to
    <row>/<candidate>/train.log."""
    from dgm_jax import distributed, sweeps
    from dgm_jax.train import Preempted
    sweeps.quiet_console()
    f = flag_values
    try:
        table = run_table(f.workdir, rows=f.rows, smoke=f.smoke, report_only=f.report_only,
                          manual_dir=f.manual_dir, data_dir=f.data_dir, readme=readme if f.write_readme else None,
                          records_dir=None if f.smoke else records_dir,
                          on_event=lambda line: print(line, flush=True))
    except TableError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(2)
    except Preempted as e:
        print(f"{prog}: {e}; the same command resumes the row", file=sys.stderr)
        sys.exit(distributed.PREEMPTED_EXIT_CODE)
    print((Path(f.workdir) / f"{prog}.md").read_text())
    failed = [r["row"] for r in table if (not f.rows or r["row"] in f.rows) and r["status"] != "done"]
    if failed and not f.report_only:
        print(f"Rows not finished: {', '.join(failed)} (see <workdir>/<row>/<candidate>/train.log)", file=sys.stderr)
        sys.exit(1)


def _train_in_child(cand_dir: Path) -> dict:
    from dgm_jax import rundir, sweeps
    code = run_child(["train", str(cand_dir)])
    rec = sweeps.read_member(cand_dir) or {"name": cand_dir.name, "wall_time_s": 0.0}
    if code != 0 and rec.get("status") != "failed":
        rec.update(status="failed", error=f"the candidate's process exited with code {code}")
        rundir.write_json_atomic(cand_dir / sweeps.MEMBER_FILE, rec)
    return rec


def _child_main(argv: Sequence[str]) -> int:
    from dgm_jax import distributed, sweeps
    from dgm_jax.train import Preempted
    sweeps.quiet_console()          # warnings on the console; the full log in <candidate>/train.log
    if len(argv) >= 2 and argv[0] == "train":
        try:
            train_candidate(argv[1])     # a failure is recorded in sweep_member.json
        except Preempted:
            return distributed.PREEMPTED_EXIT_CODE
        return 0
    if len(argv) >= 2 and argv[0] == "score":
        score_test(argv[1], argv[2:])
        return 0
    print("usage: table_kit.py train <candidate_dir> | score <candidate_dir> <candidate>...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    sys.exit(_child_main(sys.argv[1:]))
