"""EoNADE (dgm_jax/models/eonade.py): the ordered scan is N masked passes, the training estimator is
unbiased for the ordering-averaged log-likelihood (exact expectation by enumeration, no Monte Carlo),
and the train step uses it. (Causality per ordering by Jacobian and normalization of the ensemble by
enumeration are in tests/test_models.py; sampling from the ensemble in tests/test_sampling.py.)
"""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgm_jax import config_schema, models, steps
from dgm_jax.models import eonade
from test_models import random_params

NUM_CLASSES = 3


def build(image_shape, conditional=False, **kw):
    cfg = config_schema.model_config("eonade", conditional=conditional,
                                     **{"num_hidden": 5, "num_hidden_layers": 2, "num_eval_orderings": 2, **kw})
    model = models.build_model(cfg, image_shape, NUM_CLASSES)
    assert isinstance(model, eonade.EoNADE)
    return model


def test_ordered_scan_is_n_masked_passes():
    """Outputs of the blocked scan in an ordering (N = 20 pixels, two blocks of 16, the second padded)
    equal the t-th pixel's outputs of the pass with the first t pixels given, for every t; log_prob
    equals the observation model on them."""
    model = build((4, 5, 1), conditional=True)
    params = random_params(model, scale=1.0)
    x = jnp.asarray(np.random.default_rng(1).integers(0, 2, (3, 4, 5, 1)), jnp.float32)
    y = jax.nn.one_hot(jnp.arange(3) % NUM_CLASSES, NUM_CLASSES)
    order = model.pixel_orders()[1]
    scan = np.asarray(jax.jit(lambda p: model.apply({"params": p}, x, y, mask_index=1))(params)).reshape(3, 20, -1)
    masked = jax.jit(lambda m: model.apply({"params": params}, x, y, m, method="masked_outputs"))
    for t in range(20):
        mask = np.zeros((3, 20), np.float32)
        mask[:, order[:t]] = 1.0
        one = np.asarray(masked(jnp.asarray(mask))).reshape(3, 20, -1)
        np.testing.assert_allclose(scan[:, order[t]], one[:, order[t]], rtol=1e-5, atol=1e-5)
    log_p = jax.jit(lambda p: model.apply({"params": p}, x, y, mask_index=1, method="log_prob"))(params)
    np.testing.assert_allclose(log_p, model.obs.log_prob(jnp.asarray(scan.reshape(3, 4, 5, 1, -1)), x),
                               rtol=1e-5, atol=1e-4)


def test_training_estimator_is_unbiased_by_enumeration(image_shape=(2, 2, 1)):
    """E over d ~ U{0..N-1} and the ordering of J = N/(N-d) sum_{hidden j} log p(x_j | x_given) equals
    the mean over all N! orderings of the exact log p_pi(x): the expectation taken exactly, as the sum
    over every given set S (|S| = d uniform, S uniform among the C(N, d) sets). N = 4: 24 orderings."""
    model = build(image_shape)
    params = random_params(model, seed=2, scale=1.0)
    n = math.prod(image_shape)
    x = jnp.asarray(np.random.default_rng(3).integers(0, 2, (4,) + image_shape), jnp.float32)
    # Jitted once each (the loops below call them 24 and 16 times with arrays of one shape).
    ordered = jax.jit(lambda perm: model.apply({"params": params}, x, None, perm, False, method="ordered_scan"))
    estimate = jax.jit(lambda mask: model.apply({"params": params}, x, None, mask, method="masked_log_prob_estimate"))
    exact = np.mean([np.asarray(ordered(jnp.asarray(perm)), np.float64)
                     for perm in itertools.permutations(range(n))], axis=0)
    expectation = np.zeros(4)
    for d in range(n):
        for given in itertools.combinations(range(n), d):
            mask = np.zeros((4, n), np.float32)
            mask[:, list(given)] = 1.0
            est = estimate(jnp.asarray(mask))
            expectation += np.asarray(est, np.float64) / (n * math.comb(n, d))
    np.testing.assert_allclose(expectation, exact, rtol=1e-5, atol=1e-5)
    # The orderings really differ (else any estimator of one ordering would pass).
    per_order = [np.asarray(ordered(jnp.asarray(p))) for p in itertools.permutations(range(n))]
    assert np.ptp(np.stack(per_order), axis=0).max() > 0.1


def test_train_step_uses_the_training_estimator():
    """steps.loss_fn's nll is -mean(J) on the masks random_prefix_masks draws from the step's mask key."""
    model = build((3, 3, 1))
    params = random_params(model, scale=1.0)
    x = jnp.asarray(np.random.default_rng(4).integers(0, 2, (6, 3, 3, 1)), jnp.float32)
    rng = jax.random.key(5)
    _, aux = jax.jit(lambda p: steps.loss_fn(p, {"x": x}, rng, 0, model=model))(params)
    mask_rng, _ = jax.random.split(rng)
    masks = eonade.random_prefix_masks(mask_rng, 6, 9)
    assert set(np.unique(np.asarray(masks.sum(1)))) <= set(range(9))
    est = jax.jit(lambda p: model.apply({"params": p}, x, None, masks, method="masked_log_prob_estimate"))(params)
    np.testing.assert_allclose(float(aux["nll"]), -float(jnp.mean(est)), rtol=1e-6)
    exact = jax.jit(lambda p: model.apply({"params": p}, x, None, 0, method="log_prob"))(params)
    assert not np.allclose(float(aux["nll"]), -float(jnp.mean(exact)))       # not the exact log p


def test_bad_configs_and_mask_index():
    with pytest.raises(config_schema.ConfigError, match=r"activation='gelu'.*relu, tanh, sigmoid"):
        config_schema.model_config("eonade", activation="gelu")
    model = build((3, 3, 1))
    with pytest.raises(ValueError, match=r"mask_index=2 outside \[0, 2\)"):
        model.init(jax.random.key(0), jnp.zeros((1, 3, 3, 1)), mask_index=2)
