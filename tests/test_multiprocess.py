"""Multi-process training: 2 processes (one CPU device each, gloo collectives, a loopback coordinator)
train, are pre-empted together, resume, and end with the parameters of 1 process fed the same global batches."""
import json
import os
import signal
import socket

import pytest

from conftest import xla_flags
from test_faults import SERVER_ENV, ForkServer, _assert_same_state, _steps

BASE = ["--config=experiments/configs/pixelcnn.py:tiny", "--config.train.parallelism=shard_map",
        "--config.train.num_steps=20", "--config.train.log_every=5", "--config.train.eval_every=20",
        "--config.train.checkpoint_every=10", "--config.train.batch_size=32", "--config.train.num_samples=0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A fork server per process of the pair (each forks one launch at a time, a fresh process that skips
    the imports), and one imported with 2 devices for the 1-process reference (XLA reads part of its
    flags when JAX is imported, so a server's launches keep its XLA_FLAGS)."""
    root = tmp_path_factory.mktemp("servers")
    envs = [SERVER_ENV, SERVER_ENV, {**SERVER_ENV, "XLA_FLAGS": xla_flags(2)}]
    started = [ForkServer(env, root / f"server{i}.stderr") for i, env in enumerate(envs)]
    yield started
    for server in started:
        server.close()


def _launch_pair(servers, wd, **test_env):
    port = _free_port()
    return [server.launch(wd, BASE + [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                                      f"--process_id={i}"], **test_env) for i, server in enumerate(servers[:2])]


def test_two_processes_match_one_and_resume_after_preemption(tmp_path, servers):
    wd = tmp_path / "two"
    pair = _launch_pair(servers, wd, step_delay=0.2)
    pair[0].wait_for("LOGGED train 5")
    # Pre-emption notice to process 1 only: JAX's pre-emption service stops both at the same step.
    os.kill(pair[1].pid, signal.SIGTERM)
    codes = [r.finish(timeout=240) for r in pair]
    assert codes == [75, 75], [r.stderr()[-2000:] for r in pair]
    preempted_at = _steps(wd)[-1]
    assert 5 <= preempted_at < 20

    pair = _launch_pair(servers, wd)
    assert [r.finish(timeout=300) for r in pair] == [0, 0], [r.stderr()[-2000:] for r in pair]
    assert f"Resumed {wd} at step {preempted_at}" in pair[1].stderr()

    # Only process 0 writes: every record once (the relaunch starts after the last logged step).
    lines = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().splitlines()]
    assert sorted((r["split"], r["step"]) for r in lines) == [
        ("test", 20), ("train", 5), ("train", 10), ("train", 15), ("train", 20), ("validation", 20)], lines

    # 1 process with 2 devices, fed the same global batches (shard 0's rows, then shard 1's).
    ref = tmp_path / "one"
    one = servers[2].launch(ref, BASE, interleave_processes=2)
    assert one.finish(timeout=300) == 0, one.stderr()[-3000:]
    # The same per-device arithmetic and a 2-term all-reduce: equal to the bit on CPU.
    _assert_same_state(wd, ref, 20)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (wd, ref))
    assert ra["num_devices"] == rb["num_devices"] == 2
    assert ra["test_nll_nats"] == rb["test_nll_nats"]
