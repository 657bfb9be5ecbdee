"""Faults: kills at any moment, pre-emption, a full disk, non-finite values, damaged checkpoints.

A run is launch.py with a little test instrumentation (INSTRUMENT): it prints
every metrics record it logs, and on request sleeps a little per step (so that
kills land mid-run), makes its n-th checkpoint write take half a second and
says so (so that a kill lands while that checkpoint is being written), or
finds the disk full (every array write of a checkpoint fails with OSError
ENOSPC). Most runs are forked by one long-lived interpreter (SERVER) that
imports JAX, orbax and dgm_jax once: each relaunch is still a fresh process,
killed with real signals, but it skips the imports, most of a cold start here.
They load what they compile from the session's persistent compilation cache. (The multi-process
test runs its pair from two such servers.)
"""
import errno
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import dgm_jax
import dgm_jax.data
from dgm_jax import checkpointing
from conftest import REPO, xla_flags
from interpreters import SERVE_LOOP, Lines

# The killed run: FVSBN on 8x8 digits (dynamic binarization, so the data position and the Bernoulli
# draws must resume exactly), EMA, a checkpoint every 4 steps, validation every 20.
STEPS = 40
FAST = ["--config=experiments/configs/fvsbn.py:tiny", "--config.optim.ema_decay=0.99",
        f"--config.train.num_steps={STEPS}", "--config.train.log_every=2", "--config.train.eval_every=20",
        "--config.train.checkpoint_every=4", "--config.train.keep_checkpoints=3", "--config.train.num_samples=0"]

INSTRUMENT = r"""
import asyncio, errno, json, os, re, sys, time
import numpy as np
from absl import app
import launch
from dgm_jax import data, device_prefetch, metric_writers
from orbax.checkpoint._src.serialization import type_handlers

env = os.environ.get

_write = metric_writers.MetricWriter.write
def write(self, step, split, metrics):
    _write(self, step, split, metrics)
    print(f"LOGGED {split} {step}", flush=True)
metric_writers.MetricWriter.write = write

_next = device_prefetch.DevicePrefetcher.next
def next_(self, k):
    time.sleep(float(env("TEST_STEP_DELAY", "0")))
    return _next(self, k)
device_prefetch.DevicePrefetcher.next = next_

_open_and_write = type_handlers.NumpyHandler._open_and_write
_written = []      # the temporary step directories this process has written, in order
async def open_and_write(self, value, tspec, ts_context):
    # Every array of a checkpoint is written here, in orbax's background thread.
    if env("TEST_FULL_DISK"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), json.dumps(tspec.get("kvstore", ""))[:200])
    found = re.search(r"[^/]*/checkpoints/\d+\.orbax-checkpoint-tmp[^/]*", json.dumps(tspec))
    step_dir = found.group(0) if found else ""
    if step_dir not in _written:
        _written.append(step_dir)
        if env("TEST_SLOW_WRITE") == str(len(_written) - 1):       # this write takes half a second
            print("WRITING", step_dir.split("/")[-1], flush=True)
    if env("TEST_SLOW_WRITE") == str(_written.index(step_dir)):
        await asyncio.sleep(0.5)
    return await _open_and_write(self, value, tspec, ts_context)
type_handlers.NumpyHandler._open_and_write = open_and_write

class Interleaved:
    # One process fed the global batches of a P-process run: the P shards' batches side by side.
    def __init__(self, its): self.its = its
    def __iter__(self): return self
    def __next__(self):
        bs = [next(it) for it in self.its]
        return {k: np.concatenate([b[k] for b in bs]) for k in bs[0]}
    def get_state(self): return [it.get_state() for it in self.its]
    def set_state(self, s): [it.set_state(x) for it, x in zip(self.its, s)]

_make_shard = data.train_iterator
def train_iterator(ds, *, batch_size, seed, process_index, process_count, num_workers):
    P = int(env("TEST_INTERLEAVE_PROCESSES", "0"))       # read per launch: a forked launch sets it
    if not P:
        return _make_shard(ds, batch_size=batch_size, seed=seed, process_index=process_index,
                           process_count=process_count, num_workers=num_workers)
    assert (process_index, process_count) == (0, 1)
    return Interleaved([_make_shard(ds, batch_size=batch_size, seed=seed, process_index=p, process_count=P,
                                    num_workers=num_workers) for p in range(P)])
data.train_iterator = train_iterator
"""

# Reads one JSON request a line ({"workdir", "flags", "env", "log"}), forks a child that runs launch.py's
# main on it (stderr to "log"), prints "PID <pid>", the child's own lines, then "EXIT <code>". Nothing
# here touches a device before the fork, so each child starts JAX afresh.
SERVER = INSTRUMENT + r"""
import traceback
import jax, jax.numpy as jnp
import tensorboardX, tqdm                                                    # what a run imports later
from dgm_jax import assembly, evaluation, parallel, plots, sampling, steps, train
import experiments.configs.fvsbn
jax.make_jaxpr(lambda x: jnp.tanh(x) @ x.T)(np.ones((2, 2), np.float32))    # JAX's tracing machinery, warm
from jax._src import xla_bridge
assert not xla_bridge._backends, "no device may be touched before a fork"
""" + SERVE_LOOP + r"""
request = serve()                                # from here on, the forked child
os.environ.update(request["env"])
os.dup2(os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
sys.argv = ["launch.py", f"--workdir={request['workdir']}"] + request["flags"]
code = 1
try:
    app.run(launch.main)
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else int(e.code is not None)
except BaseException:
    traceback.print_exc()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


# The fork server shares the session's compilation cache (conftest.py) with this process, whose
# in-process reference run compiles the programs that the forked runs then load.
SERVER_ENV = {"XLA_FLAGS": xla_flags(), "JAX_PLATFORMS": "cpu"}


class ForkServer:
    """SERVER in a subprocess; launch() forks one run of launch.py (one at a time). It imports in the
    background until the first launch."""

    def __init__(self, env: dict, log: Path):
        self.log, self.ready = log, False
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], cwd=REPO, text=True,
                                     env={**os.environ, **env, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(log, "w"))
        self.lines = Lines(self.proc.stdout)

    def launch(self, workdir: Path, flags=FAST, **test_env) -> "Child":
        if not self.ready:
            line = self.lines.get(timeout=300)
            assert line == "READY", f"{line!r}:\n{self.log.read_text()[-3000:]}"
            self.ready = True
        log = workdir.parent / f"{workdir.name}.stderr.{random.getrandbits(32):08x}"
        request = {"workdir": str(workdir), "flags": list(flags), "log": str(log),
                   "env": {f"TEST_{k.upper()}": str(v) for k, v in test_env.items()}}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.lines.get(timeout=60)
        assert line is not None and line.startswith("PID "), f"{line!r}:\n{self.log.read_text()[-3000:]}"
        return Child(self, int(line.split()[1]), log)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:       # a test failed with a launch still running
            self.proc.kill()


class Child:
    """A forked launch: its lines, its exit code (None while it runs), signals by pid, and how long it
    took to log its first training step (its start-up on this machine)."""

    def __init__(self, server: ForkServer, pid: int, log: Path):
        self.server, self.pid, self.log, self.code = server, pid, log, None
        self.started, self.startup = time.monotonic(), None

    def stderr(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def _next_line(self, timeout: float):
        line = self.server.lines.get(timeout)
        if line is None:
            raise AssertionError(f"the fork server died:\n{self.server.log.read_text()[-3000:]}")
        if line.startswith("EXIT "):
            self.code = int(line.split()[1])
        if line.startswith("LOGGED train") and self.startup is None:
            self.startup = time.monotonic() - self.started
        return line

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        """The next line starting with prefix; AssertionError if the run exits first (self.code is set)
        or does not print it within timeout (then it is killed; self.code stays None)."""
        deadline = time.monotonic() + timeout
        while self.code is None:
            try:
                line = self._next_line(max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"no {prefix!r} within {timeout}s:\n{self.stderr()[-3000:]}") from None
            if line.startswith(prefix):
                return line
        raise AssertionError(f"exited ({self.code}) before {prefix!r}:\n{self.stderr()[-3000:]}")

    def running_after(self, seconds: float) -> bool:
        """Reads lines for `seconds`; whether the run is still going."""
        deadline = time.monotonic() + seconds
        while self.code is None and time.monotonic() < deadline:
            try:
                self._next_line(max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                pass
        return self.code is None

    def finish(self, timeout: float = 300) -> int:
        if self.running_after(timeout):
            os.kill(self.pid, signal.SIGKILL)
            raise AssertionError(f"still running after {timeout}s:\n{self.stderr()[-3000:]}")
        return self.code

    def signal(self, sig) -> int:
        if self.code is None:
            os.kill(self.pid, sig)
        return self.finish(timeout=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    fork_server = ForkServer(SERVER_ENV, tmp_path_factory.mktemp("server") / "server.stderr")
    yield fork_server
    fork_server.close()


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
    """The temporary directories of unfinished checkpoint writes."""
    try:
        return sorted(p.name for p in (workdir / "checkpoints").iterdir() if "orbax-checkpoint-tmp" in p.name)
    except FileNotFoundError:
        return []


def _steps(workdir: Path) -> list[int]:
    try:
        return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    except FileNotFoundError:
        return []


@pytest.fixture(scope="module")
def reference(tmp_path_factory, server):
    """An uninterrupted run of the killed config, in this process (while the fork server imports);
    it fills the compilation cache that the forked runs read."""
    wd = tmp_path_factory.mktemp("reference") / "run"
    dgm_jax.train_and_evaluate(_config(FAST), wd)
    return wd


def _kill(run: Child, sig, kind: str, rng: random.Random, resumed_at: int, startup: float) -> str | None:
    """Sends sig at a moment of the given kind; what the moment was, or None if the run ended first.
    A random time is drawn from the start-up (`startup` seconds here) and the first dozen steps;
    'write' is the checkpoint write the launch was told to make slow (half a second)."""
    target = 2 * (resumed_at // 2 + rng.randint(1, 6))         # a logged step up to 12 steps ahead
    if kind == "step" and target < STEPS:
        run.wait_for(f"LOGGED train {target}")
        os.kill(run.pid, sig)
        return f"step {target}"
    if kind == "write":
        try:
            moment = run.wait_for("WRITING").split()[1]
        except AssertionError:
            if run.code is None:
                raise
            return None                 # ended first: the run had no such write left
        os.kill(run.pid, sig)
        return moment
    delay = rng.uniform(0.0, startup + 0.5)   # start-up, restore, training, evaluation or the final report
    if run.running_after(delay):
        os.kill(run.pid, sig)
        return f"{delay:.2f}s"
    return None


def test_eight_kills_and_a_full_disk_then_bitwise_resume(tmp_path, server, reference):
    """8 kills, SIGKILL and SIGTERM alternating, of launches of one run: in turn at a random time
    (start-up, restore, training, evaluation, the final report), during a random checkpoint write, and
    right after a random logged step; in between, a launch whose disk is full. The same command then
    finishes with parameters, optimizer state and EMA bitwise equal to the uninterrupted run. (The seed
    of the moments is in every failure message.)"""
    seed = random.randrange(2 ** 32)
    rng = random.Random(seed)
    wd = tmp_path / "run"
    slow = dict(step_delay=0.04)
    moments, kills, startups, full_disk = [], 0, [1.0], False
    while kills < 8:
        assert len(moments) < 30, f"seed {seed}: {moments}"
        sig = (signal.SIGKILL, signal.SIGTERM)[kills % 2]
        kind = ("time", "write", "step")[len(moments) % 3]
        before = _steps(wd)
        run = server.launch(wd, **slow, **({"slow_write": rng.randint(0, 2)} if kind == "write" else {}))
        moment = _kill(run, sig, kind, rng, max(before, default=0), float(np.median(startups)))
        code = run.finish()
        startups += [run.startup] if run.startup is not None else []
        kills += moment is not None
        moments.append((sig.name, kind, moment, code))
        where = f"seed {seed}, launches so far: {moments}\n{run.stderr()[-3000:]}"
        if sig == signal.SIGKILL and kind == "write" and moment is not None:
            # Killed mid-write: the step is a temporary directory, never a step directory.
            assert code == -signal.SIGKILL and moment in _tmp_dirs(wd), where
            assert int(moment.split(".")[0]) not in _steps(wd), where
        if code == 75:      # pre-empted: a checkpoint of the step it stopped at, the newest on disk
            saved = int(re.search(r"Pre-empted \(SIGTERM\): saved a checkpoint at step (\d+)", run.stderr()).group(1))
            assert saved == max(_steps(wd)) and _tmp_dirs(wd) == [], where
        else:
            assert code in (0, -sig), where        # SIGTERM before training starts or after it ends: the default
        assert max(_steps(wd), default=0) >= max(before, default=0), where    # never a step lost without a newer one

        if not full_disk and kills >= 2 and 0 < max(_steps(wd), default=0) <= STEPS - 8:
            # The disk is full from this launch's first checkpoint on: a clear error that names the step and
            # the disk; every checkpoint written before stays; the relaunch (space freed) resumes from the latest.
            full_disk, before = True, _steps(wd)
            full = server.launch(wd, full_disk=1, **slow)
            code = full.finish()
            err = full.stderr()
            found = re.search(rf"CheckpointError: Could not write the checkpoint of step (\d+) to {re.escape(str(wd))}"
                              r"/checkpoints: the disk is full \(No space left on device; [\d.]+ MB free on the file "
                              r"system mounted at /\S*\)\. The run stopped; the checkpoints written before \(steps "
                              r"([\d, ]+)\) are intact", err)
            assert code == 1 and found, f"exit {code}:\n{err[-3000:]}"
            assert int(found.group(1)) > max(before) and _steps(wd) == before, (found.groups(), before, _steps(wd))
            assert [int(s) for s in found.group(2).split(", ")] == before
            resumed = server.launch(wd, **slow)
            resumed.wait_for("LOGGED train")
            assert f"Resumed {wd} at step {max(before)}." in resumed.stderr(), resumed.stderr()[-3000:]
            assert resumed.signal(signal.SIGKILL) == -signal.SIGKILL

    run = server.launch(wd)
    assert run.finish() == 0, f"seed {seed}, {moments}:\n{run.stderr()[-3000:]}"
    assert full_disk and _tmp_dirs(wd) == [], (seed, moments)
    assert sum(code == 75 for *_, code in moments) >= 2, moments       # pre-emptions, not only default deaths
    _assert_same_state(wd, reference, STEPS)
    res, ref = (json.loads((d / "results.json").read_text()) for d in (wd, reference))
    assert (res["test_nll_nats"], res["best_step"]) == (ref["test_nll_nats"], ref["best_step"]), (seed, moments)


def test_a_full_disk_fails_the_save_clearly_and_keeps_the_previous_step(tmp_path, monkeypatch):
    """In-process, keep_checkpoints=1: orbax deletes the previous step once a new one is complete, and
    already leaves it out of its own list while the new one is written. A save that finds the disk
    full must keep it on disk, and the error must say so, naming the step and the file system."""
    from orbax.checkpoint._src.serialization import type_handlers

    ckpt = checkpointing.Checkpointer(tmp_path, keep=1)
    state = lambda step: {"w": np.arange(6, dtype=np.float32) * step, "step": np.array(step, np.int32)}   # noqa: E731
    for step in (1, 2):
        ckpt.save(step, state(step), {"step": step})
    ckpt.wait()

    async def full(self, value, tspec, ts_context):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "checkpoint array")
    monkeypatch.setattr(type_handlers.NumpyHandler, "_open_and_write", full)
    ckpt.save(3, state(3), {"step": 3})          # written in the background: the error comes with the next save
    with pytest.raises(checkpointing.CheckpointError,
                       match=rf"^Could not write the checkpoint of step 3 to {re.escape(str(tmp_path))}/checkpoints: "
                             r"the disk is full \(No space left on device; [\d.]+ MB free on the file system mounted "
                             r"at /\S*\)\. The run stopped; the checkpoints written before \(steps 2\) are intact, "
                             r"and the partial step 3 is deleted by the next launch\. Free space on that disk, then "
                             r"run the same command again: it resumes from step 2\.$"):
        ckpt.save(4, state(4), {"step": 4})
    ckpt.close()
    monkeypatch.undo()                             # space freed
    assert _steps(tmp_path) == [2] and _tmp_dirs(tmp_path) == ["3.orbax-checkpoint-tmp"]
    relaunch = checkpointing.Checkpointer(tmp_path, keep=1)
    step, restored, _ = relaunch.restore_latest_good(state(0))
    relaunch.close()
    assert step == 2 and int(restored["step"]) == 2 and _tmp_dirs(tmp_path) == []


def _truncate(workdir: Path, step: int) -> None:
    """Cuts the largest data file of a step in half: damage that orbax notices when it reads it."""
    files = [p for p in (workdir / "checkpoints" / str(step) / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    target = max(files, key=lambda p: p.stat().st_size)
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])


def _flip_a_bit(workdir: Path, step: int) -> str:
    """Rewrites a step's state through orbax with one bit of one array changed and its old meta kept:
    consistent files that orbax reads without complaint (as after silent corruption that still
    decompresses), which only the checksums catch. Returns the array's name."""
    state, _ = _state(workdir, step)
    flat, tree = jax.tree_util.tree_flatten_with_path(state)
    i = next(i for i, (_, leaf) in enumerate(flat) if np.asarray(leaf).dtype == np.float32 and np.size(leaf) > 1)
    bits = np.array(flat[i][1], np.float32).view(np.uint32)
    bits.flat[bits.size // 2] ^= np.uint32(1 << 22)
    leaves = [leaf for _, leaf in flat]
    leaves[i] = bits.view(np.float32)
    path = workdir / "checkpoints" / str(step) / "state"
    shutil.rmtree(path)
    with ocp.StandardCheckpointer() as writer:
        writer.save(path, jax.tree_util.tree_unflatten(tree, leaves))
    return checkpointing._leaf_name(flat[i][0])


def _config(flags):
    """The ConfigDict of fvsbn.py:tiny with flags' --config.section.field=value overrides."""
    import ast
    from experiments.configs import fvsbn
    config = fvsbn.get_config("tiny")
    for flag in flags[1:]:
        key, value = flag[len("--config."):].split("=", 1)
        section, field = key.split(".")
        config[section][field] = ast.literal_eval(value)
    return config


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # orbax's loop after a failed read
def test_damaged_checkpoints_fall_back_to_the_last_good_one(tmp_path, server, reference):
    wd = tmp_path / "run"
    shutil.copytree(reference, wd)
    *_, third, second, newest = _steps(wd)
    assert newest == STEPS
    changed = _flip_a_bit(wd, newest)
    _truncate(wd, second)
    run = server.launch(wd)
    assert run.finish() == 0, run.stderr()[-3000:]
    err = run.stderr()
    assert re.search(rf"step {newest} in .*checksum mismatch: the bytes of {re.escape(changed)} differ", err), \
        err[-3000:]
    assert re.search(rf"step {second} in .*(OUT_OF_RANGE|DATA_LOSS)", err), err[-3000:]
    assert f"Restored step {third} after skipping damaged checkpoints" in err
    assert len(list((wd / "checkpoints_damaged").iterdir())) == 2
    _assert_same_state(wd, reference, STEPS)          # retrained from `third`, exactly as before

    # Every checkpoint damaged: an error, never a silent fresh start over them.
    for step in _steps(wd):
        _truncate(wd, step)
    before = sorted(p.name for p in (wd / "checkpoints").iterdir())
    with pytest.raises(checkpointing.CheckpointError, match="could be restored; refusing to start over"):
        dgm_jax.train_and_evaluate(_config(FAST), wd)
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
