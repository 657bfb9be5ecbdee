"""dgm_jax.xla_cpu: config.train.cpu_devices sets how many CPU devices a run computes on."""
import json
import logging

import pytest

from conftest import TEST_XLA_FLAGS

_CODE = """
import json, jax
from experiments.configs import bernoulli
from dgm_jax import assembly
config = bernoulli.get_config("tiny")
config.train.cpu_devices = {count}
run = assembly.build_run(config)
state = run.runner.put_state(run.init_state())
x = (run.ds.images["train"][:32][None] > 0.5).astype("float32")   # binary: the tiny config binarizes
state, m = run.runner.train(state, run.runner.put_batch({{"x": x}}, batch_axis=1))
# Several CPU devices: the dispatch has finished when train returns (no deep queue of steps
# whose collectives could starve XLA's thread pool, dgm_jax/parallel.py).
ready = all(leaf.is_ready() for leaf in jax.tree.leaves((state, m)))
print("JSON" + json.dumps({{"devices": jax.device_count(), "runner": run.runner.n, "ready": ready,
                            "nll": run.runner.host_metrics(m)["nll"]}}))
"""


def _run(fresh_python, count: int, xla_flags: str) -> dict:
    out = fresh_python.code(_CODE.format(count=count), env_extra={"XLA_FLAGS": xla_flags})
    return json.loads(out.split("JSON")[-1])


def test_cpu_devices_sets_the_device_count_and_the_runner_splits_the_batch_over_them(fresh_python):
    two = _run(fresh_python, 2, TEST_XLA_FLAGS)
    assert two["devices"] == 2 and two["runner"] == 2 and two["ready"]
    # An explicit XLA flag (how the tests and multi-device experiments pick a count) wins.
    pinned = _run(fresh_python, 2, f"{TEST_XLA_FLAGS} --xla_force_host_platform_device_count=1")
    assert pinned["devices"] == 1 and pinned["runner"] == 1
    # The same first step on one device or two: the gradient mean only sums in another order.
    assert two["nll"] == pytest.approx(pinned["nll"], rel=1e-5)


def test_a_started_backend_keeps_its_devices_with_a_warning(caplog, monkeypatch):
    import jax
    from dgm_jax import xla_cpu
    jax.devices()                                   # the backend is up (one device in the suite)
    monkeypatch.setenv("XLA_FLAGS", TEST_XLA_FLAGS)  # no explicit count: the request is attempted
    assert not xla_cpu.request_cpu_devices(3)
    with caplog.at_level(logging.WARNING, logger="dgm_jax.xla_cpu"):
        assert xla_cpu.run_devices(3) == jax.local_devices()[:3]
    assert "asks for 3 CPU devices but JAX has 1" in caplog.text
    assert xla_cpu.run_devices(0) is None and not xla_cpu.request_cpu_devices(0)   # 0: every device JAX has
    assert xla_cpu.cpu_device_count(-1) == xla_cpu.available_cores() >= 1
