"""Penalties: values by hand, masks, schedules, the combinator's gradient, from_config errors."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgm_jax.observations.bernoulli import Bernoulli
from dgm_jax import config_schema, models, penalties, steps

PARAMS = {"conv": {"kernel": jnp.array([[1.0, -2.0], [3.0, 4.0]]), "bias": jnp.array([1.0, -1.0])},
          "head": {"kernel": jnp.array([[[0.5]]]), "bias": jnp.array([2.0])}}


def test_l2_and_l1_match_hand_computation():
    # 1/2 (1 + 4 + 9 + 16 + 1 + 1 + 0.25 + 4) and |.| summed.
    assert float(penalties.l2(PARAMS)) == pytest.approx(0.5 * 36.25)
    assert float(penalties.l1(PARAMS)) == pytest.approx(10 + 2 + 0.5 + 2)
    assert float(penalties.masked(penalties.l2, "kernels")(PARAMS)) == pytest.approx(0.5 * (30 + 0.25))
    assert float(penalties.masked(penalties.l1, "biases")(PARAMS)) == pytest.approx(4.0)


BERNOULLI = Bernoulli()


def confidence(params, logits, **kw):
    """The confidence penalty of Bernoulli sub-pixels with logits [B, H, W, C] (outputs with P = 1)."""
    return penalties.confidence(params, outputs=logits[..., None], observation=BERNOULLI, **kw)


def test_confidence_is_the_negative_entropy_of_the_conditionals():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 4, 1)) * 3
    p = 1 / (1 + np.exp(-logits))
    by_hand = np.mean(np.sum(p * np.log(p) + (1 - p) * np.log1p(-p), axis=(1, 2, 3)))
    got = confidence(None, jnp.asarray(logits, jnp.float32))
    assert float(got) == pytest.approx(by_hand, rel=1e-5)
    # Uniform conditionals: -D log 2 (the minimum); saturated ones: 0 and finite, gradient finite too.
    assert float(confidence(None, jnp.zeros((2, 4, 4, 1)))) == pytest.approx(-16 * math.log(2))
    big = jnp.full((2, 4, 4, 1), 200.0)
    assert float(confidence(None, big)) == pytest.approx(0.0, abs=1e-6)
    g = jax.grad(lambda l: confidence(None, l))(jnp.array([[100.0, -100.0, 0.3]]))
    assert np.all(np.isfinite(g))
    # batch['mask'] weights examples: padding rows do not count.
    masked = confidence(None, jnp.asarray(logits, jnp.float32), batch={"mask": jnp.array([1.0, 1.0, 0.0])})
    by_hand2 = np.mean(np.sum(p * np.log(p) + (1 - p) * np.log1p(-p), axis=(1, 2, 3))[:2])
    assert float(masked) == pytest.approx(by_hand2, rel=1e-5)


def _selected_paths(params, mask):
    flags = penalties.mask_fn(mask)(params)
    return sorted(penalties.path_str(p) for p, m in jax.tree_util.tree_leaves_with_path(flags) if m)


def test_masks_select_the_right_leaves_of_a_real_model():
    cfg = config_schema.model_config("pixelcnn", num_features=4, num_layers=1, first_kernel_size=3)
    model = models.build_model(cfg, (8, 8, 1), 10)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 1)), None)["params"]
    params = jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), shapes)   # no compile needed
    paths = sorted(penalties.path_str(p) for p, _ in jax.tree_util.tree_leaves_with_path(params))
    kernels = _selected_paths(params, "kernels")
    biases = _selected_paths(params, "biases")
    assert kernels and biases and sorted(kernels + biases) == paths
    assert all(p.endswith("/kernel") for p in kernels) and all(p.endswith("/bias") for p in biases)
    assert _selected_paths(params, "all") == paths
    assert _selected_paths(params, "re:^input_conv/") == ["input_conv/bias", "input_conv/kernel"]
    assert _selected_paths(params, lambda path, x: path.startswith("res_conv") and x.ndim > 1) == \
        ["res_conv_0/kernel"]
    # The masked penalty is the penalty of exactly the selected leaves.
    leaves = dict((penalties.path_str(p), x) for p, x in jax.tree_util.tree_leaves_with_path(params))
    expect = 0.5 * sum(float(jnp.sum(leaves[k] ** 2)) for k in kernels)
    assert float(penalties.masked(penalties.l2, "kernels")(params)) == pytest.approx(expect, rel=1e-5)


def test_bad_masks_are_errors():
    with pytest.raises(ValueError, match="Valid masks: all, kernels, biases"):
        penalties.masked(penalties.l2, "kernel")
    with pytest.raises(ValueError, match="selects no parameter"):
        penalties.masked(penalties.l2, "re:nothing_matches")(PARAMS)
    with pytest.raises(ValueError, match="regular expression"):
        penalties.masked(penalties.l2, "re:(")


def test_schedules():
    assert float(penalties.constant(0.3)(jnp.int32(7))) == pytest.approx(0.3)
    ramp = penalties.linear_warmup(2.0, 10)
    assert [float(ramp(jnp.int32(s))) for s in (0, 5, 10, 50)] == pytest.approx([0.0, 1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="warmup_steps > 0"):
        penalties.linear_warmup(1.0, 0)
    # Through from_config, under jit with a traced step: the total follows the schedule.
    fn = jax.jit(penalties.from_config([("l1", 2.0, "all", "linear_warmup", 10)], num_steps=100))
    for step, w in ((0, 0.0), (4, 0.8), (10, 2.0), (99, 2.0)):
        total, terms = fn(PARAMS, batch={}, outputs=None, step=jnp.int32(step), rng=jax.random.key(0))
        assert float(terms["l1"]) == pytest.approx(14.5)              # logged unweighted
        assert float(total) == pytest.approx(w * 14.5, rel=1e-6)


def test_combined_value_and_gradient_are_the_weighted_sums_of_the_parts():
    logits = jax.random.normal(jax.random.key(1), (2, 3, 3, 1))
    cfgs = config_schema.from_config_dict(
        {"penalties": [("l2", 0.1, "kernels"), ("l1", 0.01), ("confidence", 0.5), ("l2", 0.0, "biases")]}).penalties
    fn = penalties.from_config(cfgs, num_steps=10)

    def combined(p, lg):
        return fn(p, batch={}, outputs=lg[..., None], observation=BERNOULLI, step=0, rng=jax.random.key(0))[0]

    total, terms = fn(PARAMS, batch={}, outputs=logits[..., None], observation=BERNOULLI, step=0, rng=jax.random.key(0))
    assert set(terms) == {"l2_kernels", "l1", "confidence", "l2_biases"}
    parts = [(0.1, lambda p, lg: penalties.masked(penalties.l2, "kernels")(p)),
             (0.01, lambda p, lg: penalties.l1(p)),
             (0.5, lambda p, lg: confidence(p, lg))]
    assert float(total) == pytest.approx(sum(w * float(f(PARAMS, logits)) for w, f in parts), rel=1e-6)
    assert float(terms["l2_biases"]) == pytest.approx(0.5 * 6)        # weight 0: logged, not added
    g = jax.jit(jax.grad(combined, argnums=(0, 1)))(PARAMS, logits)
    want = jax.jit(lambda p, lg: jax.tree.map(lambda *xs: sum(xs), *[
        jax.tree.map(lambda x, w=w: w * x, jax.grad(f, argnums=(0, 1))(p, lg)) for w, f in parts]))(PARAMS, logits)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_loss_gradient_is_nll_gradient_plus_penalty_gradients():
    """Through steps.loss_fn: grad(nll + sum lambda R) = grad nll + sum lambda grad R (a real model, MADE)."""
    cfg = config_schema.model_config("made", num_hidden=8)
    model = models.build_model(cfg, (4, 4, 1), 10)
    x = (jax.random.uniform(jax.random.key(2), (3, 4, 4, 1)) > 0.5).astype(jnp.float32)
    params = jax.jit(model.init)(jax.random.key(0), x, None)["params"]
    pen = penalties.from_config([("l2", 0.05, "kernels"), ("confidence", 0.2)], num_steps=10)
    rng, step = jax.random.key(3), jnp.int32(0)

    @jax.jit
    def all_grads(p):
        grad = lambda f: jax.grad(lambda q: steps.loss_fn(q, {"x": x}, rng, step, model=model, penalty_fn=f)[0])(p)
        g_l2 = jax.grad(lambda q: penalties.masked(penalties.l2, "kernels")(q))(p)
        g_conf = jax.grad(lambda q: penalties.confidence(q, outputs=model.apply({"params": q}, x, None),
                                                                observation=model.obs))(p)
        return grad(pen), grad(None), g_l2, g_conf

    g_all, g_nll, g_l2, g_conf = all_grads(params)
    for a, b, c, d in zip(*(jax.tree.leaves(t) for t in (g_all, g_nll, g_l2, g_conf))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b + 0.05 * c + 0.2 * d), rtol=2e-5, atol=1e-6)
    _, aux = steps.loss_fn(params, {"x": x}, rng, step, model=model, penalty_fn=pen)
    assert float(aux["loss"]) == pytest.approx(float(aux["nll"] + aux["penalty/total"]), rel=1e-6)
    assert float(aux["penalty/total"]) == pytest.approx(
        0.05 * float(aux["penalty/l2_kernels"]) + 0.2 * float(aux["penalty/confidence"]), rel=1e-5)


def test_from_config_rejects_unknown_names_masks_schedules_and_bad_weights():
    with pytest.raises(ValueError, match=r"unknown penalty 'l3'. Valid names: l2, l1, confidence"):
        penalties.from_config([("l3", 1.0)], num_steps=10)
    with pytest.raises(ValueError, match=r"penalties\[0\].*Valid masks: all, kernels, biases"):
        penalties.from_config([config_schema.PenaltyConfig("l2", 1.0, "weights")], num_steps=10)
    with pytest.raises(ValueError, match="Valid schedules: constant, linear_warmup"):
        penalties.from_config([("l2", 1.0, "all", "cosine")], num_steps=10)
    with pytest.raises(ValueError, match="mask must be 'all'"):
        penalties.from_config([("confidence", 1.0, "kernels")], num_steps=10)
    with pytest.raises(ValueError, match=">= 0"):
        penalties.from_config([("l2", -1.0)], num_steps=10)
    with pytest.raises(ValueError, match="warmup_steps > 0"):
        penalties.from_config([("l2", 1.0, "all", "linear_warmup", 0)], num_steps=10)
    # Two terms of the same name and mask get distinct logged names.
    fn = penalties.from_config([("l2", 1.0), ("l2", 2.0)], num_steps=10)
    total, terms = fn(PARAMS, batch={}, outputs=None, step=0, rng=jax.random.key(0))
    assert set(terms) == {"l2", "l2_2"} and float(total) == pytest.approx(3 * 18.125)
