"""Ablation sweeps: one base config, a list of overrides, one resumable workdir per member.

A sweep is a Python file (see experiments/sweeps/) defining

    def get_sweep(smoke: bool) -> tuple[ml_collections.ConfigDict, list]:
        '''(base config, members); smoke=True: a variant that runs on a laptop CPU in minutes.'''

where each member is a dict of dotted overrides of the base config,
``{"model.num_features": 16, "penalties": (("l2", 1e-3, "kernels"),)}``, or a
``(name, overrides)`` pair; :func:`grid` builds the Cartesian product of axes.
A member without a name is named after its overrides
(``num_features=16,num_layers=2``). Keys are checked against the locked base
config, so a misspelled key fails before anything trains.

:func:`run_sweep` trains every member with dgm_jax.train_and_evaluate in
``workdir/<name>`` (sequentially in this process, or ``parallel`` spawned
processes), then writes ``results.csv``, ``results.md`` and the plots
(:func:`write_report`). It is resumable: a member whose ``sweep_member.json``
says it finished with exactly the config now asked for is not run again; an
interrupted member resumes from its latest checkpoint (train_and_evaluate's
own resume); a member whose config changed (e.g. a larger num_steps) continues.

Per member the runner also scores the training split (one fixed binarization,
every image) with the final and the best-validation parameters, so train and
validation NLL of the same parameters can be compared (the bias/variance
picture); the mini-batch train NLL logged during training is noisier.
All NLLs are nats per image.
"""
from __future__ import annotations

import concurrent.futures as futures
import copy
import csv
import dataclasses
import importlib.util
import itertools
import json
import logging
import math
import multiprocessing
import re
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dgm_jax import config_schema, rundir

log = logging.getLogger(__name__)

MEMBER_FILE = "sweep_member.json"
# Overrides that change only the size of a model: the capacity plot draws one
# line per combination of the OTHER overrides (e.g. per architecture).
def size_keys() -> frozenset[str]:
    """'model.<field>' for every field that some registered model declares as a size field."""
    from dgm_jax import models  # noqa: WPS433
    return frozenset(f"model.{f}" for spec in models.REGISTRY.values() for f in spec.size_fields)


@dataclasses.dataclass(frozen=True)
class Member:
    name: str                       # its workdir is <sweep workdir>/<name>
    overrides: dict[str, Any]       # dotted key -> value


def grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of axes {"model.num_layers": [1, 2], "optim.learning_rate": [1e-3, 3e-3]}, last axis fastest."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        if not value:
            return "none"
        return "+".join(_fmt(v) if not isinstance(v, (tuple, list)) else "-".join(map(_fmt, v)) for v in value)
    return str(value)


def member_name(overrides: Mapping[str, Any]) -> str:
    """A stable, path-safe name from the overrides: 'num_features=16,num_layers=2' ('base' if none)."""
    if not overrides:
        return "base"
    name = ",".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in overrides.items())
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", name)


def make_members(items: Sequence[Any]) -> list[Member]:
    """Normalizes a sweep's member list (dicts or (name, dict) pairs); names must be unique and path-safe."""
    members = []
    for item in items:
        if isinstance(item, Member):
            members.append(item)
            continue
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, overrides = item
        elif isinstance(item, Mapping):
            name, overrides = member_name(item), item
        else:
            raise ValueError(f"a sweep member must be a dict of overrides or a (name, dict) pair, got {item!r}")
        if not re.fullmatch(r"[A-Za-z0-9._=,+-]+", name) or name in (".", ".."):
            raise ValueError(f"sweep member name {name!r} must be path-safe (letters, digits, ._=,+-)")
        members.append(Member(name, dict(overrides)))
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"sweep member names must be unique; repeated: {dupes}")
    if not members:
        raise ValueError("a sweep needs at least one member")
    return members


def load_sweep(path: str | Path, smoke: bool = False):
    """Imports a sweep file and returns (base ConfigDict, [Member]) from its get_sweep(smoke)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sweep file {path}")
    spec = importlib.util.spec_from_file_location(f"_dgm_sweep_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_sweep"):
        raise ValueError(f"{path} defines no get_sweep(smoke) -> (base_config, members)")
    base, items = module.get_sweep(smoke)
    return base, make_members(items)


def apply_overrides(base, overrides: Mapping[str, Any]):
    """A locked copy of the ConfigDict `base` with dotted `overrides` set; unknown keys are errors.

    model.name / model.likelihood switch the model section first
    (config_schema.switch_model_overrides: shared fields kept, the new model's own at their
    defaults), so the other overrides may set the new model's fields; one that the new model
    does not have is an error naming it.
    """
    import ml_collections  # noqa: WPS433

    cfg = copy.deepcopy(base)
    switch = {k: overrides[k] for k in ("model.name", "model.likelihood") if k in overrides}
    if switch:
        explicit = [k.split(".", 1)[1] for k in overrides if k.startswith("model.") and k not in switch]
        section = config_schema.switch_model_overrides(
            cfg.model.to_dict(), switch.get("model.name"), switch.get("model.likelihood"), explicit,
            where="sweep override model")
        with cfg.unlocked():
            cfg.model = ml_collections.ConfigDict(section)
    cfg.lock()
    for key, value in overrides.items():
        if key in switch:
            continue
        node, parts = cfg, key.split(".")
        try:
            for part in parts[:-1]:
                node = node[part]
            if parts[-1] not in node:
                raise KeyError(parts[-1])
            node[parts[-1]] = value
        except (KeyError, AttributeError, TypeError) as e:
            raise config_schema.ConfigError(f"sweep override {key}={value!r} does not apply to the base "
                                            f"config: {type(e).__name__}: {e}") from None
    return cfg


def resolve(base, member: Member) -> dict:
    """The member's validated config as a plain JSON-able dict (progress bars off: members log to files)."""
    cfg = apply_overrides(base, member.overrides)
    cfg.train.progress_bar = False
    return resolved(cfg)


def resolved(config) -> dict:
    """A ConfigDict validated against the typed schema, as the plain JSON-able dict run_member takes."""
    return _jsonable(config_schema.to_dict(config_schema.from_config_dict(config)))


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=rundir._json_default))


def read_member(member_dir: Path) -> dict | None:
    path = Path(member_dir) / MEMBER_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# Keys that say where a run found its data, not what it trained: a run recorded in another clone,
# workdir or machine (its data prepared at another path) is the same run.
LOCATION_KEYS = (("data", "data_dir"), ("data", "manual_dir"))


def experiment(cfg: dict) -> dict:
    """The config dict `cfg` without its LOCATION_KEYS: what two runs must share to be the same run.
    Model fields added since `cfg` was recorded count at their defaults (the same network)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    if isinstance(out.get("model"), dict):
        out["model"] = config_schema.complete_model_section(out["model"])
    for section, key in LOCATION_KEYS:
        if isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return out


def same_experiment(a: dict | None, b: dict | None) -> bool:
    """Whether config dicts a and b describe the same run (equal but for where the data are)."""
    return a is not None and b is not None and experiment(a) == experiment(b)


def is_finished(member_dir: Path, cfg: dict) -> bool:
    """Finished = the runner recorded 'done' for this config (wherever its data were) and results.json is final."""
    rec = read_member(member_dir)
    if rec is None or rec.get("status") != "done" or not same_experiment(rec.get("config"), cfg):
        return False
    try:
        results = json.loads((Path(member_dir) / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return results.get("stopped_early") or results.get("final_step", -1) >= cfg["train"]["num_steps"]


# ---------------------------------------------------------------------------
# Running one member.

def _split_nll(workdir: Path, which: str, ds) -> float:
    """NLL (nats/image) of every training image under the `which` checkpoint's evaluation parameters."""
    import dgm_jax  # noqa: WPS433

    run = dgm_jax.load(workdir, which)
    x, y = ds.eval_images("train"), ds.labels.get("train")
    bs = run.config.train.eval_batch_size
    lp = [np.asarray(dgm_jax.log_prob(run.model, run.params, x[i:i + bs], None if y is None else y[i:i + bs]))
          for i in range(0, len(x), bs)]
    return float(-np.concatenate(lp).astype(np.float64).mean())


def killed_launch_time(member_dir: Path, prev: dict) -> float | None:
    """Seconds the previous launch of a member ran, when it was killed before recording them (its record
    still says 'running': SIGKILL, a lost machine, a session's end); None when it recorded them itself.

    The launch began when it wrote that record (its `launch_started`, or the record file's time for
    records older than that field) and was last seen at the newest write in the member's directory
    (train.log, metrics.jsonl, checkpoints). Its steps after the last checkpoint are trained again by the
    next launch, so a member's wall_time_s is the time spent on it, not the time an unbroken launch takes.
    """
    member_dir = Path(member_dir)
    if prev.get("status") != "running":
        return None
    record_file = member_dir / MEMBER_FILE
    started = prev.get("launch_started") or record_file.stat().st_mtime
    last = max((f.stat().st_mtime for f in member_dir.rglob("*") if f.is_file() and f != record_file),
               default=started)
    return max(0.0, last - started)


def run_member(name: str, overrides: dict, cfg: dict, member_dir: str, log_to_file: bool = True,
               score_train: bool = True) -> dict:
    """Trains (or resumes) one member and records it in member_dir/sweep_member.json; returns that record.

    Exceptions are caught and recorded (status 'failed'), so one bad member
    does not stop the sweep. score_train=False skips scoring the whole training
    split with the final and best parameters (train_nll_* then None): for a mask
    ensemble that is num_eval_masks passes over 50,000 images.
    """
    import dgm_jax  # noqa: WPS433
    from dgm_jax import data  # noqa: WPS433
    from dgm_jax.train import Preempted  # noqa: WPS433

    member_dir = Path(member_dir)
    member_dir.mkdir(parents=True, exist_ok=True)
    root, handler, level = logging.getLogger(), None, logging.getLogger().level
    if log_to_file:
        handler = logging.FileHandler(member_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(min(level, logging.INFO) if level != logging.NOTSET else logging.INFO)
    prev = read_member(member_dir) or {}
    killed = killed_launch_time(member_dir, prev)
    t0 = time.time()
    rec = {"name": name, "overrides": _jsonable(overrides), "config": cfg, "status": "running",
           "wall_time_s": float(prev.get("wall_time_s", 0.0)) + (killed or 0.0),
           "launches": int(prev.get("launches", 0)) + 1,
           "killed_launches": int(prev.get("killed_launches", 0)) + (killed is not None),
           "launch_started": t0}
    rundir.write_json_atomic(member_dir / MEMBER_FILE, rec)
    try:
        results = dgm_jax.train_and_evaluate(cfg, member_dir)
        rec.update(results=results, train_nll_best=None, train_nll_final=None)
        if score_train:
            ds = data.load_dataset(config_schema.from_config_dict(cfg).data, seed=cfg["seed"])
            rec.update(train_nll_best=_split_nll(member_dir, "best", ds),
                       train_nll_final=_split_nll(member_dir, "latest", ds))
        rec["status"] = "done"
    except Preempted:
        # Not a failure: a checkpoint of the current step is saved; the next run resumes it.
        # The whole sweep stops (the caller exits with the pre-emption code).
        rec["status"] = "preempted"
        raise
    except Exception as e:  # noqa: BLE001 - recorded; the sweep goes on with the other members
        rec.update(status="failed", error=f"{type(e).__name__}: {e}")
        log.error("sweep member %s failed:\n%s", name, traceback.format_exc())
    finally:
        rec["wall_time_s"] += time.time() - t0
        rundir.write_json_atomic(member_dir / MEMBER_FILE, rec)
        if handler is not None:
            root.removeHandler(handler)
            root.setLevel(level)
            handler.close()
    return rec


def run_sweep(sweep_path: str | Path, workdir: str | Path, *, smoke: bool = False, parallel: int = 1,
              only: Sequence[str] = (), report: bool = True,
              on_event: Callable[[str], None] = print) -> list[dict]:
    """Runs the members of a sweep file that are not finished, then writes the report; returns its rows.

    parallel > 1 trains that many members at once in spawned processes (JAX
    must not be forked). `only` restricts the run (not the report) to named members.
    """
    base, members = load_sweep(sweep_path, smoke)
    if only:
        unknown = sorted(set(only) - {m.name for m in members})
        if unknown:
            raise ValueError(f"--only names {unknown} are not members; members: {[m.name for m in members]}")
    configs = {m.name: resolve(base, m) for m in members}      # every member validated before any trains
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    rundir.write_json_atomic(workdir / "sweep.json", {
        "sweep": str(sweep_path), "smoke": smoke,
        "members": [{"name": m.name, "overrides": _jsonable(m.overrides)} for m in members]})
    todo = [m for m in members if (not only or m.name in only)
            and not is_finished(workdir / m.name, configs[m.name])]
    for m in members:
        if m not in todo and (not only or m.name in only):
            on_event(f"[skip] {m.name}: finished")
    jobs = [(m.name, m.overrides, configs[m.name], str(workdir / m.name)) for m in todo]
    if parallel <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_event(f"[run ] {job[0]}")
            _report_done(run_member(*job), on_event)
    else:
        ctx = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(max_workers=parallel, mp_context=ctx, initializer=quiet_console) as pool:
            pending = {}
            for job in jobs:
                on_event(f"[run ] {job[0]}")
                pending[pool.submit(run_member, *job)] = job[0]
            for fut in futures.as_completed(pending):
                try:
                    _report_done(fut.result(), on_event)
                except Exception as e:  # noqa: BLE001 - a crashed worker process
                    on_event(f"[fail] {pending[fut]}: worker died: {type(e).__name__}: {e}")
    rows = collect_rows(workdir, members)
    if report:
        write_report(rows, workdir)
    return rows


def quiet_console() -> None:
    """Warnings and errors on the console; the rest goes to each member's train.log (run_member's
    file handler). A plain handler at WARNING replaces the root's handlers, absl's included,
    whose level setting does not filter what it prints."""
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    logging.getLogger().handlers = [console]


def _report_done(rec: dict, on_event) -> None:
    if rec["status"] == "done":
        r = rec["results"]
        on_event(f"[done] {rec['name']}: best val {r['best_val_nll']:.3f}, test {r['test_nll_nats']:.3f} nats "
                 f"({rec['wall_time_s']:.0f} s)")
    else:
        on_event(f"[fail] {rec['name']}: {rec.get('error')}")


# ---------------------------------------------------------------------------
# The report: results.csv, results.md, plots.

def _metric_records(member_dir: Path) -> list[dict]:
    from dgm_jax.metric_writers import read_metrics  # noqa: WPS433
    return read_metrics(member_dir / "metrics.jsonl")


def penalty_weights(cfg: dict) -> dict[str, float]:
    """{term name: weight} of a resolved config's penalties (names as logged: 'l2_kernels')."""
    from dgm_jax.penalties import term_name  # noqa: WPS433
    return {term_name(p["name"], p["mask"]): float(p["weight"]) for p in cfg.get("penalties", ())}


def collect_rows(workdir: Path, members: Sequence[Member]) -> list[dict]:
    """One row per member (finished or not) from its sweep_member.json, results.json and metrics."""
    rows = []
    for m in members:
        d = Path(workdir) / m.name
        rec = read_member(d) or {}
        res = rec.get("results") or {}
        row = {"member": m.name, "overrides": m.overrides, "status": rec.get("status", "not run"),
               "num_params": res.get("num_params"), "best_val_nll": res.get("best_val_nll"),
               "best_val_stderr": None, "best_step": res.get("best_step"),
               "test_nll": res.get("test_nll_nats"), "test_stderr": res.get("test_nll_stderr"),
               "final_train_nll": rec.get("train_nll_final"), "best_train_nll": rec.get("train_nll_best"),
               "final_val_nll": None, "last_minibatch_train_nll": res.get("final_train_nll"),
               "final_step": res.get("final_step"), "stopped_early": res.get("stopped_early"),
               "wall_time_s": rec.get("wall_time_s"), "penalties": penalty_weights(rec.get("config") or {}),
               "error": rec.get("error")}
        val = [r for r in _metric_records(d) if r["split"] == "validation"] if res else []
        for r in val:
            if r["step"] == row["best_step"]:
                row["best_val_stderr"] = r.get("nll_stderr")
        if val:
            row["final_val_nll"] = val[-1].get("nll")
        rows.append(row)
    return rows


_COLUMNS = [  # (key, markdown header)
    ("num_params", "params"), ("best_val_nll", "best val NLL"), ("test_nll", "test NLL (best-val ckpt)"),
    ("final_train_nll", "final train NLL"), ("final_val_nll", "final val NLL"), ("best_step", "best step"),
    ("final_step", "final step"), ("wall_time_s", "wall s"),
]


def _override_keys(rows) -> list[str]:
    keys = []
    for r in rows:
        keys += [k for k in r["overrides"] if k not in keys]
    return keys


def _num(v, fmt="{:.3f}"):
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def write_report(rows: Sequence[dict], workdir: str | Path) -> list[Path]:
    """results.csv, results.md, capacity.png and (if penalty weights vary) penalty.png; returns the paths."""
    workdir = Path(workdir)
    keys = _override_keys(rows)
    fields = (["member"] + keys + ["status", "num_params", "best_val_nll", "best_val_stderr", "best_step",
              "test_nll", "test_stderr", "final_train_nll", "best_train_nll", "final_val_nll",
              "last_minibatch_train_nll", "final_step", "stopped_early", "wall_time_s", "error"])
    with open(workdir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r.get(k) for k in fields if k not in keys},
                        **{k: _fmt(r["overrides"][k]) if k in r["overrides"] else "" for k in keys}})
    lines = ["| member | " + " | ".join(k.split(".")[-1] for k in keys) + (" | " if keys else "")
             + " | ".join(h for _, h in _COLUMNS) + " |",
             "|" + "---|" * (1 + len(keys) + len(_COLUMNS))]
    for r in rows:
        if r["status"] != "done":
            cells = [r["status"] + (f": {r['error'][:80]}" if r.get("error") else "")] + [""] * (len(_COLUMNS) - 1)
        else:
            cells = [_num(r["num_params"], "{:,}"),
                     _num(r["best_val_nll"]) + (f" ± {r['best_val_stderr']:.2f}" if r["best_val_stderr"] else ""),
                     _num(r["test_nll"]) + (f" ± {r['test_stderr']:.2f}" if r["test_stderr"] else ""),
                     _num(r["final_train_nll"]), _num(r["final_val_nll"]), _num(r["best_step"], "{}"),
                     _num(r["final_step"], "{}") + (" (early stop)" if r["stopped_early"] else ""),
                     _num(r["wall_time_s"], "{:.0f}")]
        over = [_fmt(r["overrides"][k]) if k in r["overrides"] else "" for k in keys]
        lines.append("| " + " | ".join([r["member"]] + over + cells) + " |")
    lines += ["", "NLL in nats per image. best val: the best validation NLL (± standard error); test: the "
              "test NLL of that best-validation checkpoint; final train / final val: the training split (all "
              "images, one fixed binarization) and the validation split scored with the final parameters."]
    (workdir / "results.md").write_text("\n".join(lines) + "\n")
    paths = [workdir / "results.csv", workdir / "results.md"]
    done = [r for r in rows if r["status"] == "done"]
    if done:
        plot_capacity(done, workdir / "capacity.png")
        paths.append(workdir / "capacity.png")
        if len({tuple(sorted(r["penalties"].items())) for r in done}) > 1:
            plot_penalty(done, workdir / "penalty.png")
            paths.append(workdir / "penalty.png")
    return paths


def _plt():
    import matplotlib  # noqa: WPS433
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: WPS433
    return plt


def plot_capacity(rows: Sequence[dict], path: Path) -> None:
    """Train (dotted) and validation NLL of the final parameters, and best validation NLL (dashed), vs parameters.

    One colour per combination of the non-size overrides (e.g. per architecture).
    """
    plt = _plt()
    from matplotlib.lines import Line2D  # noqa: WPS433
    groups: dict[str, list[dict]] = {}
    sizes = size_keys()
    for r in rows:
        key = ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in r["overrides"].items() if k not in sizes)
        groups.setdefault(key, []).append(r)
    styles = (("final_train_nll", ":s", 1.0, "train, final"), ("final_val_nll", "-o", 1.0, "validation, final"),
              ("best_val_nll", "--^", 0.6, "validation, best (early stop)"))
    fig, ax = plt.subplots(figsize=(7 if len(groups) == 1 else 10, 4.5))
    handles = []
    for i, (key, rs) in enumerate(sorted(groups.items())):
        rs = sorted(rs, key=lambda r: r["num_params"])
        c = "C0" if len(groups) == 1 else f"C{i % 10}"
        for field, fmt, alpha, _ in styles:
            ax.plot([r["num_params"] for r in rs], [r[field] for r in rs], fmt, color=c, ms=5, alpha=alpha)
        if len(groups) > 1:
            handles.append(Line2D([], [], color=c, marker="o", ls="-", label=key))
    handles += [Line2D([], [], color="C0" if len(groups) == 1 else "0.4", ls=fmt[:-1], marker=fmt[-1], alpha=alpha,
                       label=label) for _, fmt, alpha, label in styles]
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("NLL (nats / image)")
    ax.set_title("train vs validation NLL against model size")
    ax.grid(alpha=0.3, which="both")
    if len(groups) == 1:
        ax.legend(handles=handles, fontsize=8)
    else:
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_penalty(rows: Sequence[dict], path: Path) -> None:
    """Validation NLL (best, solid; final, dashed) and final train NLL (dotted) vs penalty weight, per penalty.

    Members with no penalty are the horizontal baseline; members with more
    than one penalty term are left out of this plot.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    series: dict[str, list[tuple[float, dict]]] = {}
    for r in rows:
        if len(r["penalties"]) == 1:
            (name, weight), = r["penalties"].items()
            if weight > 0:
                series.setdefault(name, []).append((weight, r))
    for i, (name, pts) in enumerate(sorted(series.items())):
        pts.sort(key=lambda p: p[0])
        w = [p[0] for p in pts]
        c = f"C{i % 10}"
        ax.plot(w, [p[1]["best_val_nll"] for p in pts], "-o", color=c, label=f"{name}: validation, best")
        ax.plot(w, [p[1]["final_val_nll"] for p in pts], "--^", color=c, alpha=0.6, label=f"{name}: validation, final")
        ax.plot(w, [p[1]["final_train_nll"] for p in pts], ":s", color=c, ms=4, label=f"{name}: train, final")
    for r in rows:
        if not r["penalties"] or all(v == 0 for v in r["penalties"].values()):
            ax.axhline(r["best_val_nll"], color="k", lw=1, label=f"no penalty ({r['member']}): validation, best")
            ax.axhline(r["final_val_nll"], color="k", lw=1, ls="--", alpha=0.6,
                       label="no penalty: validation, final")
            ax.axhline(r["final_train_nll"], color="k", lw=1, ls=":", label="no penalty: train, final")
    ax.set_xscale("log")
    ax.set_xlabel("penalty weight λ")
    ax.set_ylabel("NLL (nats / image)")
    ax.set_title("validation NLL against penalty weight")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
