"""The optimizer built from the config."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dgm_jax import optim
from dgm_jax.config_schema import OptimConfig


def test_warmup_then_cosine():
    cfg = OptimConfig(learning_rate=1.0, warmup_steps=10, schedule="cosine", final_lr_fraction=0.1)
    s = optim.make_schedule(cfg, 110)
    assert float(s(0)) == pytest.approx(0.0)
    assert float(s(5)) == pytest.approx(0.5)
    assert float(s(10)) == pytest.approx(1.0)
    assert float(s(60)) == pytest.approx(0.55, abs=1e-6)   # halfway down the cosine
    assert float(s(110)) == pytest.approx(0.1, abs=1e-6)


def test_constant_after_warmup():
    s = optim.make_schedule(OptimConfig(learning_rate=0.5, warmup_steps=4, schedule="constant"), 100)
    assert [round(float(s(t)), 6) for t in (0, 2, 4, 50)] == [0.0, 0.25, 0.5, 0.5]


@pytest.mark.parametrize("name", optim.OPTIMIZER_NAMES)
def test_each_optimizer_descends(name):
    cfg = OptimConfig(name=name, learning_rate=0.05, warmup_steps=0, schedule="constant", weight_decay=1e-3)
    tx = optim.make_optimizer(cfg, 100)
    params = {"w": jnp.array([3.0, -2.0]), "b": jnp.array([1.0])}
    loss = lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"] ** 2)
    state = tx.init(params)
    start = float(loss(params))
    for _ in range(50):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    assert float(loss(params)) < 0.5 * start


def test_gradient_clipping_bounds_update():
    cfg = OptimConfig(name="sgd", learning_rate=1.0, warmup_steps=0, schedule="constant", momentum=0.0,
                      grad_clip_norm=1.0)
    tx = optim.make_optimizer(cfg, 10)
    params = {"w": jnp.zeros(4)}
    updates, _ = tx.update({"w": jnp.full(4, 100.0)}, tx.init(params), params)
    assert float(optax.global_norm(updates)) == pytest.approx(1.0, rel=1e-5)


def test_weight_decay_spares_biases():
    cfg = OptimConfig(name="sgd", learning_rate=1.0, warmup_steps=0, schedule="constant", momentum=0.0,
                      weight_decay=0.1)
    tx = optim.make_optimizer(cfg, 10)
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["kernel"]), -0.1)
    np.testing.assert_allclose(np.asarray(updates["bias"]), 0.0)


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adm'.*adam, adamw, sgd, rmsprop"):
        optim.make_optimizer(OptimConfig(name="adm"), 10)
