"""Checkpoints of a run, behind a few functions over orbax's CheckpointManager.

Layout of a workdir::

    workdir/checkpoints/<step>/state   the TrainState pytree (params, opt state, EMA, rng, counters)
    workdir/checkpoints/<step>/meta    JSON: data-iterator position, early-stopping record, metrics
    workdir/run_info.json              model config, data set name and image shape (checked on resume)
    workdir/config.json                the resolved config of the latest launch

Orbax writes each step into a temporary directory and renames it when
complete, so a run killed mid-save leaves no half-written step that a restart
could pick up. Kept: the latest ``keep`` steps plus the best by validation NLL.
On restore, a step that fails to load (damaged files) is reported and the next
older step is tried; the run never silently starts over when checkpoints exist.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A workdir or checkpoint that cannot be used."""


class Checkpointer:
    def __init__(self, workdir: str | os.PathLike, keep: int = 3, async_save: bool = True):
        self.directory = Path(workdir).absolute() / "checkpoints"
        policy = cm.AnyPreservationPolicy([
            cm.LatestN(n=keep),
            # BestN keeps the last n after sorting ascending by the metric, so rank by -NLL.
            cm.BestN(get_metric_fn=lambda m: -float(m["val_nll"]), n=1, keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, create=True, enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, meta: dict, val_nll: float | None = None) -> None:
        """Saves host `state` and JSON-able `meta` at `step` (asynchronously; see wait())."""
        metrics = {"val_nll": float(val_nll)} if val_nll is not None else None
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), metrics=metrics, force=True)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore(self, step: int, target: Any) -> tuple[Any, dict]:
        """Restores step `step` into the structure of host pytree `target`."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def restore_latest_good(self, target: Any) -> tuple[int, Any, dict] | None:
        """The newest step that restores cleanly, falling back over damaged ones.

        Returns None only when there is no checkpoint at all; raises
        CheckpointError when checkpoints exist but none can be read.
        """
        steps = self.all_steps()
        errors = []
        for step in reversed(steps):
            try:
                state, meta = self.restore(step, target)
                _check_finite_structure(state, target)
                if errors:
                    log.warning("Restored step %d after skipping damaged checkpoints: %s", step, "; ".join(errors))
                return step, state, meta
            except Exception as e:  # noqa: BLE001 - any failure to read means a damaged step
                msg = f"step {step} in {self.directory}: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                log.warning("Checkpoint could not be restored (%s); trying an older one.", msg)
                errors.append(msg)
        if steps:
            raise CheckpointError("No checkpoint in this workdir could be restored; refusing to start over. "
                                  "Problems: " + " | ".join(errors))
        return None

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _check_finite_structure(state: Any, target: Any) -> None:
    leaves, tree = jax.tree.flatten(state)
    t_leaves, t_tree = jax.tree.flatten(target)
    if tree != t_tree:
        raise CheckpointError("checkpoint structure differs from the model's")
    for a, b in zip(leaves, t_leaves):
        if np.shape(a) != np.shape(b):
            raise CheckpointError(f"checkpoint leaf shaped {np.shape(a)} where the model has {np.shape(b)}")


# ---------------------------------------------------------------------------
# Run identity: a workdir belongs to one model on one kind of data.

RUN_INFO = "run_info.json"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Writes JSON through a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def check_run_identity(workdir: Path, info: dict) -> None:
    """Refuses a workdir that holds a run of a different model or data shape.

    `info` holds the model config (a dict), the data set name, image shape,
    number of classes and condition size. Training hyper-parameters may change between
    launches (e.g. a larger train.num_steps continues the run); the model and
    the data layout may not, since the checkpoint would not fit.
    """
    path = Path(workdir) / RUN_INFO
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = json.loads(json.dumps(info, default=_json_default))  # tuples -> lists, as stored
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            # The compute dtype may change between launches; the parameters do not.
            diffs += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                      if a.get(k) != b.get(k) and k != "dtype"]
        elif a != b:
            diffs.append(f"{key}: {a!r} -> {b!r}")
    if diffs:
        raise CheckpointError(
            f"The workdir {workdir} holds a run of a different model or data "
            f"(saved model {old['model'].get('name')!r} on {old.get('data')!r}); this config differs in: "
            + "; ".join(diffs) + ". Use a new --workdir, or the run's own config.")
