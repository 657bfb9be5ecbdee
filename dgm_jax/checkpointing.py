"""Checkpoints of a run, behind a few functions over orbax's CheckpointManager.

Layout of a workdir::

    workdir/checkpoints/<step>/state   the TrainState pytree (params, opt state, EMA, rng, counters)
    workdir/checkpoints/<step>/meta    JSON: data-iterator position, early-stopping record, metrics

(the rest of a workdir, run identity and the choice of a checkpoint are in
dgm_jax/rundir.py).

Orbax writes each step (state and meta together, one Composite save) into
``<step>.orbax-checkpoint-tmp-<time>`` and renames it when complete, so a run
killed mid-save leaves only a temporary directory, which no restore considers
and the next launch deletes. Kept: the latest ``keep`` steps plus the best by
validation NLL.

Damage: orbax/tensorstore notice truncated or missing files, but not changed
bytes inside a zarr chunk, so the meta of every step carries a CRC-32 of each
state array (``meta['checksums']``), checked on restore. A step that fails to
load is reported with what was wrong and the next older step is tried; once an
older step restores, the damaged newer ones are moved to
``workdir/checkpoints_damaged/`` (kept for inspection, out of the way of the
steps the resumed run will write again). The run never silently starts over
when checkpoints exist (CheckpointError if none can be read), and never writes
over a good checkpoint.

A save that fails (a full disk, permissions) raises CheckpointError naming the
step, the directory and, for a full disk (OSError ENOSPC, or tensorstore's "No
space left on device"), the file system and its free space. Saves run in the
background, so the error surfaces at the next save, at the end of training or
at a pre-emption, whichever comes first. Orbax deletes old steps only after a
new one is complete, so the steps written before stay on disk and good; the
partial step is a temporary directory that the next launch deletes, and that
launch resumes from the latest good step.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from dgm_jax.rundir import CheckpointError  # noqa: F401 - raised here, defined with the run directory

log = logging.getLogger(__name__)




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
            cleanup_tmp_directories=True,
            # The step directory is made in save() itself, so an unwritable or full
            # disk fails there, at once (made in the background, a failure left the
            # writer threads waiting for it until orbax's timeout).
            async_options=ocp.AsyncOptions(create_directories_asynchronously=False))
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))
        self._pending_step: int | None = None

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, meta: dict, val_nll: float | None = None) -> None:
        """Saves host `state` and JSON-able `meta` at `step` (asynchronously; see wait()).

        meta gains 'checksums' (CRC-32 of each state array), checked on restore.
        Raises CheckpointError naming the directory if this save or the
        previous (asynchronous) one failed.
        """
        self.wait()   # orbax waits for the previous save anyway; this names the step if it failed
        metrics = {"val_nll": float(val_nll)} if val_nll is not None else None
        meta = {**meta, "checksums": checksums(state)}
        try:
            self.manager.save(step, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), metrics=metrics, force=True)
        except Exception as e:  # noqa: BLE001 - I/O errors come wrapped in many types
            raise self._save_error(step, e) from e
        self._pending_step = step

    def wait(self) -> None:
        """Blocks until pending saves are on disk; CheckpointError if one failed."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001
            raise self._save_error(self._pending_step, e) from e

    def steps_on_disk(self) -> list[int]:
        """The committed steps in the directory (orbax's own list drops steps it plans to delete)."""
        try:
            return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())
        except OSError:
            return []

    def _save_error(self, step: int | None, e: BaseException) -> CheckpointError:
        good = [s for s in self.steps_on_disk() if s != step]
        before = (f"the checkpoints written before (steps {', '.join(map(str, good))}) are intact, and the partial "
                  f"step {step} is deleted by the next launch" if good else "no checkpoint was written before it")
        resume = f"it resumes from step {good[-1]}" if good else "it starts from step 0"
        if disk_full(e):
            problem = f"the disk is full ({os.strerror(errno.ENOSPC)}; {_free_space(self.directory)})"
            fix = "Free space on that disk"
        else:
            first = str(e).splitlines()[0][:300] if str(e) else ""
            problem = f"{type(e).__name__}: {first}"
            fix = "Free space or fix the permissions of the workdir"
        return CheckpointError(f"Could not write the checkpoint of step {step} to {self.directory}: {problem}. The "
                               f"run stopped; {before}. {fix}, then run the same command again: {resume}.")

    def restore(self, step: int, target: Any) -> tuple[Any, dict]:
        """Restores step `step` into the structure of host pytree `target`, checking its checksums."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        state, meta = out["state"], out["meta"]
        check_structure(state, target)
        verify_checksums(state, meta)
        return state, meta

    def restore_meta(self, step: int) -> dict:
        """The JSON meta of step `step` (data position, early-stopping record, checksums)."""
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore_params(self, step: int, target: Any, field: str = "params") -> Any:
        """Only state.<field> ('params' or 'ema_params') of step `step`, shaped like the pytree `target`.

        A partial restore: no optimizer needs to be built. Raises CheckpointError when the
        stored tree does not fit `target` (another model).
        """
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
                item={field: target}, partial_restore=True)))["state"]
            params = restored[field]
            check_structure(params, target)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(
                f"The checkpoint at step {step} in {self.directory} does not match the model built from its "
                f"config: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
        return params

    def restore_latest_good(self, target: Any) -> tuple[int, Any, dict] | None:
        """The newest step that restores cleanly, falling back over damaged ones.

        Returns None only when there is no checkpoint at all; raises
        CheckpointError when checkpoints exist but none can be read.
        """
        steps = self.all_steps()
        errors, damaged = [], []
        for step in reversed(steps):
            try:
                state, meta = self.restore(step, target)
            except Exception as e:  # noqa: BLE001 - any failure to read means a damaged step
                msg = f"step {step} in {self.directory}: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                log.warning("Checkpoint could not be restored (%s); trying an older one.", msg)
                errors.append(msg)
                damaged.append(step)
                continue
            if damaged:
                moved = self._move_aside(damaged)
                log.warning("Restored step %d after skipping damaged checkpoints: %s. The damaged steps were "
                            "moved to %s.", step, "; ".join(errors), moved)
            return step, state, meta
        if steps:
            raise CheckpointError(f"No checkpoint in {self.directory} could be restored; refusing to start "
                                  "over. Problems: " + " | ".join(errors))
        return None

    def _move_aside(self, steps: list[int]) -> Path:
        """Moves damaged steps out of the checkpoint directory (process 0), so resumed saves cannot collide."""
        dest = self.directory.parent / "checkpoints_damaged"
        if jax.process_index() == 0:
            dest.mkdir(exist_ok=True)
            for step in steps:
                shutil.move(str(self.directory / str(step)), str(dest / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices("dgm_jax_checkpoints_moved_aside")
        self.manager.reload()
        return dest

    def close(self) -> None:
        self.manager.wait_until_finished()
        # orbax 0.12.8's close() does not join its tmp-directory cleanup thread,
        # which then prints a traceback at interpreter exit; wait for it first.
        getattr(self.manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
        self.manager.close()


def disk_full(e: BaseException | None) -> bool:
    """Whether an error, or one in its chain of causes, says the disk is full: OSError ENOSPC, or
    tensorstore's ValueError 'RESOURCE_EXHAUSTED: ... No space left on device [os_error_code=28]'."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return True
        if os.strerror(errno.ENOSPC) in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _free_space(path: Path) -> str:
    """'1.2 MB free on the file system mounted at /mnt/x' for the file system holding path."""
    mount = Path(path)
    while not mount.exists() and mount != mount.parent:
        mount = mount.parent
    try:
        free = shutil.disk_usage(mount).free
    except OSError:
        return "free space unknown"
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    return f"{free / 1e6:.1f} MB free on the file system mounted at {mount}"


def _leaf_name(path) -> str:
    """'params/conv/kernel' for a key path, the same whether the tree was restored as a dataclass or a dict."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def checksums(state: Any) -> dict[str, int]:
    """CRC-32 of the bytes of every array leaf of a host pytree, by leaf name ('params/conv/kernel')."""
    return {_leaf_name(path): zlib.crc32(np.ascontiguousarray(np.asarray(leaf)).view(np.uint8).ravel())
            for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]}


def verify_checksums(state: Any, meta: dict) -> None:
    """Raises CheckpointError naming the arrays whose bytes differ from what was saved.

    `state` may be the whole saved tree or a part restored with its own names
    (e.g. {'params': ...}); only arrays present in both are compared. Steps
    written before checksums existed (no meta['checksums']) pass.
    """
    expected = meta.get("checksums") if isinstance(meta, dict) else None
    if not expected:
        return
    got = checksums(state)
    bad = [k for k in got if k in expected and got[k] != expected[k]]
    if bad:
        raise CheckpointError(f"checksum mismatch: the bytes of {', '.join(bad[:5])}"
                              f"{' and others' if len(bad) > 5 else ''} differ from what was saved (corrupted files)")


def check_structure(state: Any, target: Any) -> None:
    leaves, tree = jax.tree.flatten(state)
    t_leaves, t_tree = jax.tree.flatten(target)
    if tree != t_tree:
        raise CheckpointError("checkpoint structure differs from the model's")
    for a, b in zip(leaves, t_leaves):
        if np.shape(a) != np.shape(b):
            raise CheckpointError(f"checkpoint leaf shaped {np.shape(a)} where the model has {np.shape(b)}")
