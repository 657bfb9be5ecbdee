"""A run directory (workdir): its files, its identity, and the choice of a checkpoint in it.

Layout::

    workdir/config.json          the resolved config of the latest launch (flat model section)
    workdir/run_info.json        what identifies the run: model, likelihood, data layout (checked on resume)
    workdir/checkpoints/<step>/  orbax checkpoints (dgm_jax/checkpointing.py)
    workdir/metrics.jsonl, tensorboard/, learning_curve.png, samples.png, results.json

A workdir holds one model on one data layout: training hyper-parameters may
change between launches (a larger train.num_steps continues the run), the
model, its likelihood and the data layout may not, since the checkpoints
would not fit. Everything that reads or writes these files outside the
checkpoints themselves is here, so that training (dgm_jax/train.py), loading
(dgm_jax/api.py) and evaluation share one definition.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dgm_jax import config_schema
from dgm_jax.config_schema import Config

RUN_INFO = "run_info.json"
CONFIG = "config.json"
RESULTS = "results.json"
# run_info keys added after the first runs were written, with the value those runs had.
# output_layout: '' for every layout that runs had before the tag was recorded (see output_layout()).
_INFO_DEFAULTS = {"num_levels": 2, "likelihood": "bernoulli", "output_layout": ""}


class CheckpointError(RuntimeError):
    """A workdir or checkpoint that cannot be used (not a run, another run's, no such step, damaged)."""


def write_json_atomic(path: Path, obj: Any) -> None:
    """Writes JSON through a temporary file and a rename, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def prepare_workdir(workdir: str | os.PathLike, process_index: int = 0) -> Path:
    """Creates the workdir and checks that it can be written, before any training."""
    path = Path(workdir).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test.{process_index}"   # one per process on a shared file system
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(f"The workdir {path} is not writable ({e.strerror}); choose another --workdir.") from e
    return path


def output_layout(cfg: Config, likelihood: str, num_levels: int, num_channels: int) -> str:
    """The observation model's tag of what its outputs mean ('' unless its layout changed since the
    first runs, e.g. the RGB logistic mixture's PixelCNN++ count, dgm_jax/observations)."""
    from dgm_jax import observations  # noqa: WPS433 - jax only when a run is built or loaded

    obs = observations.build(likelihood, cfg.model.likelihood_options, num_levels=int(num_levels),
                             num_channels=int(num_channels))
    return getattr(obs, "output_layout", "")


def run_info(cfg: Config, ds, likelihood: str) -> dict:
    """What identifies a run: the model section, the resolved likelihood, the layout of its outputs
    and the data layout."""
    return {"model": config_schema.to_dict(cfg)["model"], "likelihood": likelihood,
            "output_layout": output_layout(cfg, likelihood, ds.num_levels, ds.image_shape[-1]),
            "data": cfg.data.name, "image_shape": list(ds.image_shape), "num_levels": int(ds.num_levels),
            "num_classes": int(ds.num_classes), "cond_dim": int(ds.cond_dim),
            "use_ema": cfg.optim.ema_decay > 0}


def _layout_error(workdir, saved: str, current: str) -> CheckpointError:
    return CheckpointError(
        f"The checkpoints in {workdir} were written with the likelihood's outputs laid out as "
        f"{saved or 'before output layouts were recorded'!r}; this version lays them out as {current!r} "
        "(for RGB the discretized logistic mixture now emits PixelCNN++'s 10M numbers per pixel, no "
        "longer M (3 + C - 1) per sub-pixel), so the network's last layer has another shape and meaning. "
        "Those checkpoints cannot be restored: train again in a new --workdir.")


def read_info(workdir: Path) -> dict:
    info = {**_INFO_DEFAULTS, **json.loads((Path(workdir) / RUN_INFO).read_text())}
    if isinstance(info.get("model"), dict):        # model fields added since, at their defaults
        info["model"] = config_schema.complete_model_section(info["model"])
    return info


def check_run_identity(workdir: Path, info: dict) -> None:
    """Refuses a workdir that holds a run of a different model, likelihood or data layout.

    The compute dtype may change between launches (the parameters are float32 either way).
    """
    path = Path(workdir) / RUN_INFO
    if not path.exists():
        return
    old = read_info(workdir)
    new = json.loads(json.dumps(info, default=_json_default))  # tuples -> lists, as stored
    if old["output_layout"] != new.get("output_layout", ""):
        raise _layout_error(workdir, old["output_layout"], new.get("output_layout", ""))
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                      if a.get(k) != b.get(k) and k != "dtype"]
        elif a != b:
            diffs.append(f"{key}: {a!r} -> {b!r}")
    if diffs:
        raise CheckpointError(
            f"The workdir {workdir} holds a run of a different model or data "
            f"(saved model {old['model'].get('name')!r} on {old.get('data')!r}); this config differs in: "
            + "; ".join(diffs) + ". Use a new --workdir, or the run's own config.")


def read_run(workdir: str | os.PathLike) -> tuple[Path, Config, dict]:
    """(absolute workdir, its Config, its run_info) of a saved run; CheckpointError if it is not one."""
    workdir = Path(workdir).absolute()
    for name in (CONFIG, RUN_INFO):
        if not (workdir / name).exists():
            raise CheckpointError(f"{workdir} is not a dgm_jax run directory ({name} is missing).")
    cfg = config_schema.from_config_dict(json.loads((workdir / CONFIG).read_text()))
    info = read_info(workdir)
    current = output_layout(cfg, info["likelihood"], info["num_levels"], info["image_shape"][-1])
    if info["output_layout"] != current:
        raise _layout_error(workdir, info["output_layout"], current)
    return workdir, cfg, info


def resolve_checkpoint(ckpt, which: str | int) -> int:
    """The step of 'best' (best validation NLL; latest if none was validated), 'latest', or a step number.

    ckpt: a dgm_jax.checkpointing.Checkpointer of the run.
    """
    steps_ = ckpt.all_steps()
    if not steps_:
        raise CheckpointError(f"No checkpoint found in {ckpt.directory}.")
    if which == "latest":
        return steps_[-1]
    if which == "best":
        best = int(ckpt.restore_meta(steps_[-1])["record"]["best_step"])
        return best if best in steps_ else steps_[-1]
    try:
        step = int(which)
    except ValueError:
        raise ValueError(f"checkpoint must be 'best', 'latest' or a step number, got {which!r}") from None
    if step not in steps_:
        raise CheckpointError(f"No checkpoint at step {step} in {ckpt.directory}; available: {steps_}.")
    return step
