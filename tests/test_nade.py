"""The blocked-prefix-sum NADE (dgm_jax/models/nade.py) is the same model as the original
cumsum implementation, kept below as _ReferenceNADE: same parameter tree and initial values,
and the same outputs and parameter gradients (to 1e-4, float32) on random parameters, for
P = 1 and P = 3, conditional or not, D a multiple of the block size or not; and its log_prob
method (value and gradient in one scan) against the outputs. (Causality and
normalization of NADE by Jacobian and enumeration are in tests/test_models.py.)
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgm_jax import config_schema, models
from dgm_jax.models import nade
from dgm_jax.models.base import AutoregressiveImageModel
from test_models import random_params

NUM_CLASSES = 3
ATOL = 1e-4


class _ReferenceNADE(AutoregressiveImageModel):
    """The original implementation (materialized [B, D, H] contributions and jnp.cumsum over D),
    copied verbatim from dgm_jax/models/nade.py before the blocked prefix sum replaced it."""
    num_hidden: int = 500

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        del mask_index
        y = self.condition(y)
        d, nh, p = math.prod(self.image_shape), self.num_hidden, self.params_per_subpixel
        w = self.param("W", nn.initializers.lecun_normal(in_axis=-2, out_axis=-1), (d, nh), jnp.float32)
        c = self.param("c", nn.initializers.zeros, (nh,), jnp.float32)
        v = self.param("V", nn.initializers.lecun_normal(in_axis=-2, out_axis=(-3, -1)), (d, nh, p), jnp.float32)
        b = self.param("b", nn.initializers.zeros, (d, p), jnp.float32)

        xf = x.reshape(x.shape[0], d).astype(self.dtype)
        hidden_bias = jnp.broadcast_to(c.astype(self.dtype), (x.shape[0], nh))
        if y is not None:
            hidden_bias = hidden_bias + nn.Dense(nh, use_bias=False, dtype=self.dtype, name="cond")(y)
        contrib = xf[:, :, None] * w.astype(self.dtype)[None]          # [B, D, H]: W_j x_j
        running = jnp.cumsum(contrib, axis=1, dtype=jnp.float32)       # sum_{j<=i}, f32 accumulation
        running = jnp.pad(running[:, :-1], ((0, 0), (1, 0), (0, 0)))
        h = jax.nn.sigmoid(hidden_bias[:, None, :] + running.astype(self.dtype))   # [B, D, H]
        out = jnp.einsum("bdh,dhp->bdp", h, v.astype(self.dtype)) + b.astype(self.dtype)
        return out.reshape(self.output_shape(x)).astype(jnp.float32)


def build(image_shape, conditional, num_levels, num_hidden=7, dtype="float32"):
    likelihood = "auto" if num_levels == 2 else "categorical"
    cfg = config_schema.model_config("nade", likelihood, conditional=conditional, num_hidden=num_hidden,
                                     dtype=dtype)
    model = models.build_model(cfg, image_shape, NUM_CLASSES, num_levels=num_levels)
    assert isinstance(model, nade.NADE)
    ref = _ReferenceNADE(image_shape=model.image_shape, observation=model.observation,
                         num_classes=model.num_classes, conditional=model.conditional, dtype=model.dtype,
                         num_hidden=model.num_hidden)
    return model, ref


def inputs(model, batch, num_levels, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    levels = jax.random.randint(kx, (batch,) + tuple(model.image_shape), 0, num_levels)
    x = levels.astype(jnp.float32) / (num_levels - 1)
    y = jax.nn.one_hot(jax.random.randint(ky, (batch,), 0, NUM_CLASSES), NUM_CLASSES) if model.conditional else None
    return x, y


CASES = [pytest.param(shape, cond, levels, id=f"{'x'.join(map(str, shape))}-P{1 if levels == 2 else levels}"
                      f"{'-cond' if cond else ''}")
         for shape, levels, cond in [((5, 5, 1), 2, True), ((3, 4, 2), 3, False)]]


@pytest.mark.parametrize("image_shape,conditional,num_levels", CASES)
def test_same_parameters_outputs_and_gradients_as_reference(image_shape, conditional, num_levels):
    model, ref = build(image_shape, conditional, num_levels)
    x, y = inputs(model, 4, num_levels)

    # Same names, shapes and initial values (same initializers).
    init_new = jax.jit(model.init)(jax.random.key(3), x, y)["params"]
    init_ref = jax.jit(ref.init)(jax.random.key(3), x, y)["params"]
    assert jax.tree.structure(init_new) == jax.tree.structure(init_ref)
    for a, b in zip(jax.tree.leaves(init_new), jax.tree.leaves(init_ref)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert set(init_new) == ({"W", "c", "V", "b", "cond"} if conditional else {"W", "c", "V", "b"})

    params = random_params(model)
    out_new = jax.jit(model.apply)({"params": params}, x, y)
    out_ref = jax.jit(ref.apply)({"params": params}, x, y)
    assert out_new.shape == out_ref.shape == tuple(x.shape) + (model.params_per_subpixel,)
    assert out_new.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out_new), np.asarray(out_ref), rtol=0, atol=ATOL)

    def loss(module):
        return lambda p: -module.obs.log_prob(module.apply({"params": p}, x, y), x).mean()
    l_new, g_new = jax.jit(jax.value_and_grad(loss(model)))(params)
    l_ref, g_ref = jax.jit(jax.value_and_grad(loss(ref)))(params)
    np.testing.assert_allclose(float(l_new), float(l_ref), rtol=1e-6, atol=ATOL)
    for path, a in jax.tree_util.tree_leaves_with_path(g_new):
        b = g_ref
        for key in path:
            b = b[key.key]
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=ATOL, err_msg=str(path))

    # A linear functional of all P outputs too (the likelihood above only reads the logits'
    # differences for the categorical case).
    wts = jax.random.normal(jax.random.key(7), out_ref.shape)
    lin = lambda module: (lambda p: jnp.sum(wts * module.apply({"params": p}, x, y)))
    g_new = jax.jit(jax.grad(lin(model)))(params)
    g_ref = jax.jit(jax.grad(lin(ref)))(params)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=ATOL)


def test_blocked_prefix_sum_many_blocks_and_shapes():
    """The bare function against a direct O(D^2) evaluation: several blocks, D not a multiple
    of the block size, block sizes 1..D+1."""
    rng = np.random.default_rng(5)
    bsz, d, nh, p = 3, 21, 6, 2
    xf = jnp.asarray(rng.random((bsz, d)), jnp.float32)
    hb = jnp.asarray(rng.normal(size=(bsz, nh)), jnp.float32)
    w = jnp.asarray(0.5 * rng.normal(size=(d, nh)), jnp.float32)
    v = jnp.asarray(0.5 * rng.normal(size=(d, nh, p)), jnp.float32)
    b = jnp.asarray(0.5 * rng.normal(size=(d, p)), jnp.float32)
    a = hb[:, None, :] + jnp.einsum("ij,bj,jh->bih", jnp.tril(jnp.ones((d, d)), -1), xf, w)
    direct = jnp.einsum("bih,ihp->bip", jax.nn.sigmoid(a), v) + b
    for block in (1, 2, 5, 8, d, d + 1):
        out = jax.jit(nade.blocked_nade_outputs, static_argnames="block")(xf, hb, w, v, b, block=block)
        np.testing.assert_allclose(np.asarray(out), np.asarray(direct), rtol=0, atol=1e-5, err_msg=f"block={block}")


@pytest.mark.parametrize("image_shape,conditional,num_levels", [((5, 5, 1), True, 2), ((3, 7, 1), False, 4)],
                         ids=["5x5-P1-cond", "3x7-P4"])
def test_log_prob_method_matches_the_outputs_and_their_gradient_for_any_image_weights(
        image_shape, conditional, num_levels):
    """model.log_prob (value and gradient from one scan, dgm_jax/models/nade.py) against the
    observation model on the outputs and autodiff through them: the mean over the batch (the
    training loss: equal image weights, the precomputed gradient) and arbitrary weights (the
    fallback); no gradient reaches x."""
    model, _ = build(image_shape, conditional, num_levels)
    x, y = inputs(model, 5, num_levels, seed=1)
    params = random_params(model, seed=2)
    via_outputs = lambda p: model.obs.log_prob(model.apply({"params": p}, x, y), x)   # noqa: E731
    via_method = lambda p: model.apply({"params": p}, x, y, method="log_prob")         # noqa: E731
    np.testing.assert_allclose(np.asarray(jax.jit(via_method)(params)), np.asarray(jax.jit(via_outputs)(params)),
                               rtol=1e-6, atol=ATOL)
    # The weights are an argument (one compiled gradient per path for both weightings); the method
    # tells equal weights apart at run time, not from a constant.
    grad_ref = jax.jit(jax.grad(lambda p, w: jnp.sum(w * via_outputs(p))))
    grad_new = jax.jit(jax.grad(lambda p, w: jnp.sum(w * via_method(p))))
    for weights in (-jnp.ones(5) / 5, jax.random.normal(jax.random.key(4), (5,))):
        g_ref, g_new = grad_ref(params, weights), grad_new(params, weights)
        assert jax.tree.structure(g_new) == jax.tree.structure(g_ref)
        for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=ATOL)
    gx = jax.grad(lambda x_: jnp.sum(model.apply({"params": params}, x_, y, method="log_prob")))(x)
    np.testing.assert_array_equal(np.asarray(gx), 0.0)
