"""Shared fixtures: paths to the data beside the repository, and tiny configs."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BINARIZED_MNIST = SHARED_DATA / "binarized_mnist"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The suite compiles hundreds of tiny programs and runs each for milliseconds, so most of its
# time is XLA's CPU backend optimizing code (LLVM). The tests check properties (causality,
# normalization, equalities between runs), not speed: they compile with backend optimization
# off, about half the compile time, and with XLA:CPU's older elemental emitter for fusions
# instead of its fusion emitters (a tiny PixelCNN++'s gradient compiled in 1.2 s instead of
# 2.9 s; test_model_training + test_sampling took 102 s instead of 161 s, one A/B under load).
# Every program of a comparison
# (resume == uninterrupted, 2 devices == 1, fast sampler == naive) is compiled the same way,
# in-process and in the subprocesses (xla_flags() below). DGM_JAX_TEST_FULL_OPT=1 runs the
# suite at XLA's defaults.
TEST_XLA_FLAGS = ("" if os.environ.get("DGM_JAX_TEST_FULL_OPT") == "1"
                  else "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")
# The device count is explicit everywhere in the suite (1 unless a test asks for more), so that a
# config's train.cpu_devices (dgm_jax/xla_cpu.py) never changes the devices of a test worker.
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def xla_flags(devices: int | None = None) -> str:
    """XLA_FLAGS for a test subprocess: the suite's flags, plus `devices` (default 1) fake CPU devices."""
    flags = [TEST_XLA_FLAGS, f"{DEVICE_COUNT_FLAG}={devices or 1}"]
    return " ".join(f for f in flags if f)


if DEVICE_COUNT_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + xla_flags()).strip()

# glibc's transparent huge pages for XLA's large buffers (dgm_jax/huge_pages.py), as the entry
# scripts run: set here, in the controller, before xdist starts the workers, which inherit it
# with every subprocess (the controller computes nothing itself).
from dgm_jax import huge_pages  # noqa: E402

if huge_pages.needed():
    os.environ["GLIBC_TUNABLES"] = huge_pages.tunables_with_setting(os.environ.get("GLIBC_TUNABLES", ""))

# One persistent XLA compilation cache for this test session, shared by the xdist workers and
# every subprocess (they inherit the environment): the many tiny runs compile the same
# programs, and a cached executable is the same program, so results are unchanged. It is a
# fresh directory per session (made by the controller, which imports this file first), so a
# run never depends on what an earlier one left behind.
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import tempfile
    _OWN_CACHE = tempfile.mkdtemp(prefix="dgm_jax_test_xla_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """The process that made the session's cache removes it at the end. An xdist worker then leaves
    by os._exit: it has sent the controller every result and its 'finished' message by now, and the
    interpreter's own shutdown of a worker that has compiled hundreds of XLA programs kept the
    controller waiting for ~10 s."""
    if _OWN_CACHE is not None:
        import shutil
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
    if hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def cifar10_tiny_on_random_bytes(cfg_file, tmp_path):
    """A model's cifar10_tiny config on an npz of random 8-bit 32x32x3 images: 4 training images (its
    batch: every step sees them all), 2 validation, 2 test."""
    import numpy as np
    rng = np.random.default_rng(0)
    images = lambda n: rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)   # noqa: E731
    np.savez(tmp_path / "rgb.npz", train=images(4), validation=images(2), test=images(2))
    config = cfg_file.get_config("cifar10_tiny")
    config.data.name, config.data.path = "npz", str(tmp_path / "rgb.npz")
    return config


def assert_learns_on_random_bytes(config, workdir):
    """Trains `config` (from cifar10_tiny_on_random_bytes) through dgm_jax.train_and_evaluate, the
    entry point of launch.py: the training NLL, logged every step, starts near 8 bits/dim (uniform
    bytes) and falls on the one batch; the validation and test records are finite."""
    import numpy as np
    import dgm_jax
    from dgm_jax.metric_writers import read_metrics
    dgm_jax.train_and_evaluate(config, workdir)
    records = read_metrics(workdir / "metrics.jsonl")
    nll = [r["nll"] for r in records if r["split"] == "train"]
    assert len(nll) == config.train.num_steps and np.all(np.isfinite(nll)) and nll[-1] < nll[0], nll
    assert 7.0 < nll[0] / (32 * 32 * 3 * np.log(2)) < 12.0
    assert [np.isfinite(r["nll"]) for r in records if r["split"] in ("validation", "test")] == [True, True]


@pytest.fixture
def tiny_config():
    """A seconds-long unconditional PixelCNN on sklearn digits (8x8, dynamic binarization):
    8 maps, 2 layers, 40 steps, Adam with cosine decay, EMA 0.99."""
    from experiments.configs import pixelcnn
    config = pixelcnn.get_config("tiny")
    config.optim.ema_decay = 0.99          # an EMA that moves within 40 steps
    config.train.eval_batch_size = 256
    return config


class FreshPython:
    """Fresh interpreters for the tests: `python -c CODE` or `python SCRIPT ARGS` run from the
    repository with `devices` fake CPU devices and the suite's XLA flags, forked from a server that
    has already imported JAX and dgm_jax (tests/interpreters.py: the same run, without ~4 s of imports)."""

    def __init__(self, pool):
        self.pool = pool

    @staticmethod
    def env(devices: int = 1, env_extra=None) -> dict:
        env = dict(os.environ)
        env["XLA_FLAGS"] = xla_flags(devices)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env.update(env_extra or {})
        return env

    def script(self, script: str, *args: str, devices: int = 1, timeout: int = 300, env_extra=None):
        """`python script *args` (script relative to the repository); its CompletedProcess (returncode, stdout, stderr)."""
        return self.pool.run([script, *args], env=self.env(devices, env_extra), cwd=REPO, timeout=timeout)

    def code(self, code: str, *, devices: int = 1, timeout: int = 300, env_extra=None) -> str:
        """`python -c code`, which must succeed; its stdout."""
        proc = self.pool.run(["-c"], code=code, env=self.env(devices, env_extra), cwd=REPO, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        return proc.stdout


@pytest.fixture(scope="session")
def fresh_python(tmp_path_factory):
    """This test worker's fork servers (one per XLA_FLAGS value), each started at its first use."""
    from interpreters import Interpreters
    pool = Interpreters(REPO, tmp_path_factory.mktemp("interpreters"))
    yield FreshPython(pool)
    pool.close()


# The longest files start first. The xdist workers (pytest.ini: -n 2 --dist=worksteal) each
# take half of this order and take tests from the other's remaining queue when theirs is done,
# so they finish together (with --dist=loadfile, whole files per worker, the longest file kept
# one worker busy after the other had finished: 452 s against 433 s, one A/B under load).
LONGEST_FIRST = ("test_sampling.py", "test_models.py", "test_model_training.py", "test_evaluate_checkpoint.py",
                 "test_pixelcnn_pp.py", "test_multiprocess.py", "test_nade.py", "test_train.py",
                 "test_pixelsnail.py", "test_faults.py", "test_eonade.py", "test_observations.py",
                 "test_parallel.py", "test_xla_cpu.py", "test_data.py", "test_levels_table.py", "test_sweeps.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))
