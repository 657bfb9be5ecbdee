"""Faults: kills at any moment, pre-emption, a failing disk, non-finite values, damaged checkpoints.

Each run is a subprocess of launch.py with a little test instrumentation
(SCRIPT): it prints every metrics record it logs, and on request sleeps a
little per step (so that a kill lands mid-run), hangs inside orbax's finalize
of one step (so that a kill lands while that checkpoint is being written),
makes the checkpoint directory unwritable at a given log line, or poisons one
training batch with NaN. The runs share a persistent compilation cache, so
only the first one compiles.
"""
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import dgm_jax
from dgm_jax import checkpointing
from conftest import REPO, xla_flags

FLAGS = ["--config=experiments/configs/pixelcnn.py:tiny", "--config.optim.ema_decay=0.99", "--config.train.num_steps=40",
         "--config.train.log_every=5", "--config.train.eval_every=20", "--config.train.checkpoint_every=10",
         "--config.train.keep_checkpoints=3"]

SCRIPT = r"""
import asyncio, os, subprocess, sys, time
import numpy as np
from absl import app
import launch
from dgm_jax import data, device_prefetch, metric_writers
from orbax.checkpoint._src.path import atomicity

workdir, flags = sys.argv[1], sys.argv[2:]
env = os.environ.get

_write = metric_writers.MetricWriter.write
def write(self, step, split, metrics):
    _write(self, step, split, metrics)
    print(f"LOGGED {split} {step}", flush=True)
    if env("TEST_LOCK_AT") == f"{split} {step}":     # a disk that stops taking writes
        d = os.path.join(workdir, "checkpoints")
        os.chmod(d, 0o555)
        if os.access(d, os.W_OK):                        # root ignores permissions
            subprocess.run(["chattr", "+i", d], check=True)
        print("LOCKED", flush=True)
metric_writers.MetricWriter.write = write

_next = device_prefetch.DevicePrefetcher.next
def next_(self, k):
    time.sleep(float(env("TEST_STEP_DELAY", "0")))
    return _next(self, k)
device_prefetch.DevicePrefetcher.next = next_

_finalize = atomicity.AtomicRenameTemporaryPath.finalize
async def finalize(self):
    # Every file of the step is written; only the rename that commits it is left.
    if self.get_final().name == env("TEST_HANG_IN_FINALIZE_OF_STEP"):
        print("FINALIZE", self.get(), flush=True)
        await asyncio.sleep(600)
    return await _finalize(self)
atomicity.AtomicRenameTemporaryPath.finalize = finalize

if env("TEST_POISON_BATCH"):
    class Poisoned:
        # Training batch number TEST_POISON_BATCH (0-based) becomes NaN.
        def __init__(self, it): self.it, self.n = it, 0
        def __iter__(self): return self
        def __next__(self):
            b, self.n = next(self.it), self.n + 1
            return {**b, "x": np.full_like(b["x"], np.nan)} if self.n - 1 == int(env("TEST_POISON_BATCH")) else b
        def get_state(self): return {"inner": self.it.get_state(), "n": self.n}
        def set_state(self, s): self.it.set_state(s["inner"]); self.n = s["n"]
    _make = data.train_iterator
    data.train_iterator = lambda *a, **k: Poisoned(_make(*a, **k))

if env("TEST_INTERLEAVE_PROCESSES"):
    # One process fed the global batches of a P-process run: the P shards' batches side by side.
    P = int(env("TEST_INTERLEAVE_PROCESSES"))
    class Interleaved:
        def __init__(self, its): self.its = its
        def __iter__(self): return self
        def __next__(self):
            bs = [next(it) for it in self.its]
            return {k: np.concatenate([b[k] for b in bs]) for k in bs[0]}
        def get_state(self): return [it.get_state() for it in self.its]
        def set_state(self, s): [it.set_state(x) for it, x in zip(self.its, s)]
    _make_shard = data.train_iterator
    def interleaved(ds, *, batch_size, seed, process_index, process_count, num_workers):
        assert (process_index, process_count) == (0, 1)
        return Interleaved([_make_shard(ds, batch_size=batch_size, seed=seed, process_index=p, process_count=P,
                                        num_workers=num_workers) for p in range(P)])
    data.train_iterator = interleaved

app.run(launch.main, argv=["launch.py", f"--workdir={workdir}"] + flags)
"""


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    return {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "XLA_FLAGS": xla_flags(), "JAX_PLATFORMS": "cpu"}


class Run:
    """One instrumented launch; stdout lines are read as they come."""

    def __init__(self, workdir: Path, env: dict, flags=(), base_flags=FLAGS, **test_env):
        self.log = workdir.parent / f"{workdir.name}.stderr.{random.getrandbits(32):08x}"
        full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        full_env.update({f"TEST_{k.upper()}": str(v) for k, v in test_env.items()})
        self.proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(workdir), *base_flags, *flags], cwd=REPO,
                                     env=full_env, stdout=subprocess.PIPE, stderr=open(self.log, "w"), text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, prefix: str, timeout: float = 240) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no {prefix!r} within {timeout}s:\n{self.stderr()[-3000:]}") from None
            if line is None:
                raise AssertionError(f"exited ({self.proc.wait()}) before {prefix!r}:\n{self.stderr()[-3000:]}")
            if line.startswith(prefix):
                return line

    def signal(self, sig) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=120)

    def finish(self, timeout: float = 300) -> int:
        return self.proc.wait(timeout=timeout)


def _state(workdir: Path, step: int):
    ckpt = checkpointing.Checkpointer(workdir, async_save=False)
    out = ckpt.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(),
                                                             meta=ocp.args.JsonRestore()))
    ckpt.close()
    return out["state"], out["meta"]


def _assert_same_state(a: Path, b: Path, step: int) -> None:
    sa, sb = _state(a, step)[0], _state(b, step)[0]
    la, lb = jax.tree_util.tree_flatten_with_path(sa)[0], jax.tree_util.tree_flatten_with_path(sb)[0]
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def _tmp_dirs(workdir: Path) -> list[str]:
    return sorted(p.name for p in (workdir / "checkpoints").iterdir() if "orbax-checkpoint-tmp" in p.name)


def _steps(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_env):
    """An uninterrupted run of the config (also fills the compilation cache)."""
    wd = tmp_path_factory.mktemp("reference") / "run"
    run = Run(wd, cache_env)
    assert run.finish() == 0, run.stderr()[-3000:]
    return wd


def _can_lock(path: Path) -> bool:
    """Whether this machine lets a test make a directory unwritable (as SCRIPT's TEST_LOCK_AT does)."""
    path.mkdir()
    os.chmod(path, 0o555)
    if os.access(path, os.W_OK) and (shutil.which("chattr") is None or
                                     subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode):
        _unlock(path)
        return False
    try:
        (path / "x").write_text("x")
        ok = False
    except OSError:
        ok = True
    _unlock(path)
    return ok


def _unlock(path: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    os.chmod(path, 0o755)


def test_kills_preemption_and_failed_save_resume_bitwise(tmp_path, cache_env, reference):
    """One run through every fault in turn; each target step is the next one the run will reach."""
    wd = tmp_path / "run"
    slow = dict(step_delay=0.1)
    next_ckpt = lambda: (max(_steps(wd), default=0) // 10 + 1) * 10     # checkpoints every 10 steps

    # SIGKILL mid-training, right after step 15 is logged.
    run = Run(wd, cache_env, **slow)
    run.wait_for("LOGGED train 15")
    assert run.signal(signal.SIGKILL) == -signal.SIGKILL

    # SIGKILL while a checkpoint is being written (all files written, not yet committed).
    hang = next_ckpt()
    run = Run(wd, cache_env, hang_in_finalize_of_step=hang, **slow)
    run.wait_for("FINALIZE")
    run.signal(signal.SIGKILL)
    assert any(name.startswith(f"{hang}.orbax-checkpoint-tmp") for name in _tmp_dirs(wd)), _tmp_dirs(wd)
    assert hang not in _steps(wd)

    # SIGTERM (pre-emption): a checkpoint at the current step, exit code 75.
    run = Run(wd, cache_env, **slow)
    run.wait_for(f"LOGGED train {max(_steps(wd), default=0) + 5}")
    assert run.signal(signal.SIGTERM) == 75, run.stderr()[-3000:]
    saved = int(re.search(r"Pre-empted \(SIGTERM\): saved a checkpoint at step (\d+)", run.stderr()).group(1))
    assert saved in _steps(wd) and saved == max(_steps(wd)), (saved, _steps(wd))
    assert _tmp_dirs(wd) == []          # the half-written step was cleaned up by this launch

    # The checkpoint directory stops taking writes just before the next save: a clear error, not a lost run.
    # (Needs a directory that can be made unwritable: chmod, or chattr +i for root.)
    if _can_lock(tmp_path / "probe"):
        failing = next_ckpt()
        run = Run(wd, cache_env, lock_at=f"train {failing}", **slow)
        run.wait_for("LOCKED")
        rc = run.finish()
        _unlock(wd / "checkpoints")
        assert rc not in (0, 75)
        err = run.stderr()
        assert re.search(rf"CheckpointError: Could not write the checkpoint of step {failing} to "
                         rf"{re.escape(str(wd))}/checkpoints .*intact", err), err[-3000:]
        assert max(_steps(wd)) == saved

    # SIGKILL at a random moment.
    delay = random.Random().uniform(0, 5)    # start-up, training, checkpointing or the final report
    run = Run(wd, cache_env, **slow)
    try:
        run.finish(timeout=delay)
    except subprocess.TimeoutExpired:
        run.signal(signal.SIGKILL)

    # The same command again finishes, bitwise equal to the uninterrupted run.
    run = Run(wd, cache_env)
    assert run.finish() == 0, run.stderr()[-3000:]
    assert _tmp_dirs(wd) == []
    _assert_same_state(wd, reference, 40)
    res, ref = (json.loads((d / "results.json").read_text()) for d in (wd, reference))
    assert (res["test_nll_nats"], res["best_step"]) == (ref["test_nll_nats"], ref["best_step"]), f"delay {delay:.2f}s"


def _damage(workdir: Path, step: int, how: str) -> None:
    files = [p for p in (workdir / "checkpoints" / str(step) / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    target = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x40        # one bit: orbax reads it without complaint
    else:
        data = data[: len(data) // 2]
    target.write_bytes(bytes(data))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # orbax's loop after a failed read
def test_damaged_checkpoints_fall_back_to_the_last_good_one(tmp_path, cache_env, reference, tiny_config):
    wd = tmp_path / "run"
    shutil.copytree(reference, wd)
    assert _steps(wd) == [20, 30, 40]
    _damage(wd, 40, "flip")
    _damage(wd, 30, "truncate")
    run = Run(wd, cache_env)
    assert run.finish() == 0, run.stderr()[-3000:]
    err = run.stderr()
    assert re.search(r"step 40 in .*checksum mismatch: the bytes of \S+ differ", err), err[-3000:]
    assert re.search(r"step 30 in .*(OUT_OF_RANGE|DATA_LOSS)", err), err[-3000:]
    assert "Restored step 20 after skipping damaged checkpoints" in err
    assert len(list((wd / "checkpoints_damaged").iterdir())) == 2
    _assert_same_state(wd, reference, 40)          # retrained from 20, exactly as before

    # Every checkpoint damaged: an error, never a silent fresh start over them.
    for step in _steps(wd):
        _damage(wd, step, "truncate")
    before = sorted(p.name for p in (wd / "checkpoints").iterdir())
    for k, v in (("num_steps", 40), ("log_every", 5), ("eval_every", 20), ("checkpoint_every", 10),
                 ("keep_checkpoints", 3)):
        setattr(tiny_config.train, k, v)
    with pytest.raises(checkpointing.CheckpointError, match="could be restored; refusing to start over"):
        dgm_jax.train_and_evaluate(tiny_config, wd)
    assert sorted(p.name for p in (wd / "checkpoints").iterdir()) == before


class _Poisoned:
    """Training batch number `bad` (0-based) of the wrapped iterator becomes NaN."""

    def __init__(self, it, bad):
        self.it, self.n, self.bad = it, 0, bad

    def __iter__(self):
        return self

    def __next__(self):
        b, self.n = next(self.it), self.n + 1
        return {**b, "x": np.full_like(b["x"], np.nan)} if self.n - 1 == self.bad else b

    def get_state(self):
        return {"inner": self.it.get_state(), "n": self.n}

    def set_state(self, s):
        self.it.set_state(s["inner"])
        self.n = s["n"]


def test_nonfinite_updates_are_skipped_and_counted_or_stop_the_run(tmp_path, tiny_config, monkeypatch, caplog):
    """In-process (the policy is the training loop's, not the launcher's): batch 13 is NaN."""
    make = dgm_jax.data.train_iterator
    monkeypatch.setattr(dgm_jax.data, "train_iterator", lambda *a, **k: _Poisoned(make(*a, **k), 13))
    for k, v in (("num_steps", 40), ("log_every", 5), ("eval_every", 20), ("checkpoint_every", 10),
                 ("keep_checkpoints", 3), ("num_samples", 0)):
        setattr(tiny_config.train, k, v)
    # policy 'skip': its update is dropped and counted; training goes on.
    with caplog.at_level("WARNING"):
        res = dgm_jax.train_and_evaluate(tiny_config, tmp_path / "skip")
    records = [json.loads(l) for l in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    counts = {r["step"]: r["num_skipped"] for r in records if r["split"] == "train"}
    assert counts == {5: 0, 10: 0, 15: 1, 20: 1, 25: 1, 30: 1, 35: 1, 40: 1}
    assert res["num_skipped_updates"] == 1
    assert "non-finite update(s) skipped so far (the first at step 13)" in caplog.text
    params = _state(tmp_path / "skip", 40)[0]["params"]
    assert all(np.isfinite(np.asarray(p)).all() for p in jax.tree.leaves(params))

    # policy 'stop': NonFiniteError naming step 13; the checkpoint of step 10 is the last and intact.
    tiny_config.train.nonfinite_policy = "stop"
    with pytest.raises(dgm_jax.train.NonFiniteError, match="Non-finite loss or gradient at step 13"):
        dgm_jax.train_and_evaluate(tiny_config, tmp_path / "stop")
    assert _steps(tmp_path / "stop") == [10] and _tmp_dirs(tmp_path / "stop") == []
    state, meta = _state(tmp_path / "stop", 10)
    checkpointing.verify_checksums(state, meta)
    assert int(state["first_bad_step"]) == -1 and int(state["step"]) == 10 and meta["step"] == 10
