"""PixelSNAIL beyond the family's shared tests (tests/test_models.py proves its order by Jacobian and
its normalization by enumeration; tests/test_sampling.py its cached sampler against the naive one):
the attention's reach and mask, the config's checks, dropout, cached completion, the CIFAR-10 config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dgm_jax
from conftest import assert_learns_on_random_bytes, cifar10_tiny_on_random_bytes
from dgm_jax import config_schema, models, sampling
from dgm_jax.models import pixelsnail
from test_models import build, jacobian, random_binary, random_params


def test_masked_attention_matches_the_softmax_over_earlier_positions():
    """Row i is the softmax over keys j < i (checked in float64 numpy); row 0 has no key and is 0,
    with zero derivative; the future's keys and values have exactly zero derivative."""
    rng = np.random.default_rng(0)
    n, g, h, dk, dv = 5, 2, 3, 4, 2
    q, k, v = (jnp.asarray(rng.standard_normal(s), jnp.float32)
               for s in ((1, n, g, h, dk), (1, n, h, dk), (1, n, h, dv)))
    mask = jnp.asarray(np.tril(np.ones((n, n), bool), k=-1))
    out = np.asarray(pixelsnail.masked_attention(q, k, v, mask))
    qn, kn, vn = (np.asarray(a, np.float64) for a in (q, k, v))
    for i in range(1, n):
        logits = np.einsum("ghd,jhd->ghj", qn[0, i], kn[0, :i]) / np.sqrt(dk)
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        np.testing.assert_allclose(out[0, i], np.einsum("ghj,jhd->ghd", w, vn[0, :i]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[0, 0], 0.0)
    i = 2                                                   # row 2 reads keys 0, 1 only
    dk_, dv_ = jax.grad(lambda k, v: pixelsnail.masked_attention(q, k, v, mask)[0, i].sum(), argnums=(0, 1))(k, v)
    assert np.all(np.asarray(dk_)[0, i:] == 0) and np.all(np.asarray(dv_)[0, i:] == 0)
    assert np.any(np.asarray(dv_)[0, :i] != 0)
    d0 = jax.grad(lambda q: pixelsnail.masked_attention(q, k, v, mask)[0, 0].sum())(q)
    assert np.all(np.asarray(d0) == 0)


@pytest.mark.parametrize("n,chunks", [(13, 4), (3, 4), (8, 1)])
def test_causal_attention_by_blocks_is_the_masked_attention(n, chunks):
    """The network's attention by query blocks (only the keys a block can read) equals masked_attention
    with the full j < i mask, values and gradients, to float32 rounding: uneven blocks (13 = 3+3+4+3),
    more blocks than positions, one block."""
    rng = np.random.default_rng(1)
    q, k, v = (jnp.asarray(rng.standard_normal(s), jnp.float32)
               for s in ((2, n, 2, 3, 4), (2, n, 3, 4), (2, n, 3, 5)))
    mask = jnp.arange(n)[:, None] > jnp.arange(n)[None, :]
    cot = jnp.asarray(rng.standard_normal((2, n, 2, 3, 5)), jnp.float32)
    full = lambda q, k, v: (pixelsnail.masked_attention(q, k, v, mask) * cot).sum()          # noqa: E731
    blocks = lambda q, k, v: (pixelsnail.causal_attention(q, k, v, chunks) * cot).sum()      # noqa: E731
    # Each side compiled once (op by op, the blocks' slices and their gradients cost seconds of dispatch).
    by_blocks = jax.jit(lambda q, k, v: (pixelsnail.causal_attention(q, k, v, chunks),
                                         jax.grad(blocks, argnums=(0, 1, 2))(q, k, v)))
    by_mask = jax.jit(lambda q, k, v: (pixelsnail.masked_attention(q, k, v, mask),
                                       jax.grad(full, argnums=(0, 1, 2))(q, k, v)))
    (out_b, grads_b), (out_m, grads_m) = by_blocks(q, k, v), by_mask(q, k, v)
    np.testing.assert_allclose(out_b, out_m, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads_b, grads_m):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2])
def test_attention_reaches_every_earlier_subpixel(channels):
    """One block, no residual layer: the 3x3 input layer reaches the neighbours only, so every
    farther earlier pixel reaches the outputs through the attention alone, and it must reach all
    of them (a mask j < i - 1, or keys that lost x, would miss some). Control: with the attention's
    way into the features (mix_att) zeroed, the far pixels are out of reach."""
    model = build("pixelsnail", (4, 4, channels), num_blocks=1, num_res_per_block=0, num_features=4 * channels,
                  key_features=3, value_features=3)
    params = random_params(model, scale=1.0)
    x = random_binary(3, (6, 4, 4, channels))
    d = 16 * channels
    reached = np.any(jacobian(model, params, x) != 0, axis=0)
    missing = [(i, j) for i in range(d) for j in range(i) if not reached[i, j]]
    assert not missing, f"(output, input) pairs never connected: {missing[:10]}"
    blocked = dict(params, mix_att_0={"kernel": jnp.zeros_like(params["mix_att_0"]["kernel"])})
    reached = np.any(jacobian(model, blocked, x) != 0, axis=0)
    far = channels * (3 * 4 + 0), channels * (0 * 4 + 3)           # pixel (3, 0) and pixel (0, 3)
    assert not reached[far]


def test_positions_enter_the_attention():
    """The background maps make the attention position-aware: zeroing the query's position
    weights and the keys' position rows changes the outputs."""
    model = build("pixelsnail", (3, 3, 1), num_blocks=1, num_res_per_block=0)
    params = random_params(model, scale=1.0)
    x = random_binary(4, (2, 3, 3, 1))
    kv = np.asarray(params["keys_values_0"]["kernel"]).copy()
    kv[-2:] = 0.0                                                      # the two background rows [..., x', u, pos]
    no_pos = dict(params, query_pos_0={"kernel": jnp.zeros_like(params["query_pos_0"]["kernel"])},
                  keys_values_0={**params["keys_values_0"], "kernel": jnp.asarray(kv)})
    apply = jax.jit(lambda p: model.apply({"params": p}, x))
    assert not np.allclose(apply(params), apply(no_pos), atol=1e-6)
    np.testing.assert_array_equal(pixelsnail.background(2, 4)[:, :, 0], [[-0.5] * 4, [0.0] * 4])
    np.testing.assert_array_equal(pixelsnail.background(2, 4)[0, :, 1], [-0.5, -0.25, 0.0, 0.25])


def _conv_view(width: int, layers: int, shape=(8, 9), at=(6, 3)) -> set:
    """The input positions that output `at` of `layers` stacked DownRightConvs reads, by Jacobian."""
    convs = [pixelsnail.DownRightConv(2, 1, width) for _ in range(layers)]
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1,) + shape + (2,)), jnp.float32)
    params = [conv.init(jax.random.key(i), x) for i, conv in enumerate(convs)]

    def out(v):
        for conv, p in zip(convs, params):
            v = conv.apply(p, v)
        return v[0, at[0], at[1]].sum()
    return {tuple(int(i) for i in rc) for rc in np.argwhere(np.abs(np.asarray(jax.grad(out)(x)))[0].sum(-1) > 0)}


@pytest.mark.parametrize("width", [2, 3])
def test_causal_convolution_taps_and_their_view(width):
    """One layer reads exactly (r-1, c-1), (r-1, c), (r, c-1), (r, c) and, for width 3, (r-1, c+1);
    three layers read, in the row k above, columns up to c + k for width 3 (the triangle) and
    only up to c for width 2; never a later row or a later column of the same row."""
    r, c = 6, 3
    taps = {(r - 1, c - 1), (r - 1, c), (r, c - 1), (r, c)} | ({(r - 1, c + 1)} if width == 3 else set())
    assert _conv_view(width, 1, at=(r, c)) == taps
    view = _conv_view(width, 3, at=(r, c))
    assert all(i < r or (i == r and j <= c) for i, j in view)
    for k in range(1, 4):
        right = max(j for i, j in view if i == r - k)
        assert right == (c + k if width == 3 else c)
    assert all(i >= r - 3 and j >= c - 3 for i, j in view)


@pytest.mark.parametrize("field,value,message", [
    ("num_blocks", 0, r"config.model.num_blocks=0 is too small for model 'pixelsnail': the smallest valid value is 1"),
    ("num_res_per_block", -1, r"num_res_per_block=-1 is too small .* smallest valid value is 0"),
    ("key_features", 0, r"key_features=0 is too small .* smallest valid value is 1"),
    ("dropout_rate", 1.0, r"config.model.dropout_rate=1.0 is not valid for model 'pixelsnail': it must be in \[0, 1\)"),
    ("conv_width", 4, r"config.model.conv_width=4 is not valid for model 'pixelsnail': it must be 2 .* or 3"),
])
def test_config_refuses_bad_sizes(field, value, message):
    with pytest.raises(config_schema.ConfigError, match=message):
        config_schema.model_config("pixelsnail", **{field: value})


def test_features_must_split_into_the_subpixel_groups():
    model = build("pixelsnail", (3, 3, 3), likelihood="categorical", num_levels=4, num_features=4)
    with pytest.raises(ValueError, match=r"num_features=4 .* multiple of the 3 sub-pixels.*nearest valid: 3 or 6"):
        model.init(jax.random.key(0), jnp.zeros((1, 3, 3, 3)))


def test_dropout_acts_only_with_a_dropout_rng_and_keeps_the_order():
    model = build("pixelsnail", (3, 3, 1), dropout_rate=0.5)
    params = random_params(model)
    x = random_binary(5, (2, 3, 3, 1))
    plain = jax.jit(lambda m: m.apply({"params": params}, x), static_argnums=0)
    np.testing.assert_array_equal(plain(model), plain(build("pixelsnail", (3, 3, 1))))
    dropped = lambda v, key: model.apply({"params": params}, v, rngs={"dropout": key})  # noqa: E731
    a, b = jax.jit(jax.vmap(lambda key: dropped(x, key)))(jax.random.split(jax.random.key(1)))
    plain = plain(model)
    assert not np.allclose(a, plain) and not np.allclose(a, b)
    # Dropout masks positions independently: with one fixed mask, the outputs are still causal.
    jac = jax.jit(jax.jacfwd(lambda v: dropped(v.reshape(1, 3, 3, 1), jax.random.key(1)).reshape(-1)))(
        x[0].reshape(-1))
    assert not np.any(np.asarray(jac)[np.triu(np.ones((9, 9), bool))] != 0)
    assert np.any(np.asarray(jac) != 0)


def test_cached_completion_draws_the_naive_completion():
    """Given rows fill the caches one pixel at a time; the completion then equals the naive one."""
    model = build("pixelsnail", (3, 3, 2), True)
    params = random_params(model, scale=1.0)
    given = np.asarray(random_binary(6, (4, 3, 3, 2)))
    y = np.arange(4, dtype=np.int32) % 3
    done = {m: np.asarray(sampling.complete(model, params, jax.random.key(7), given, 1, y, method=m))
            for m in ("naive", "fast")}
    np.testing.assert_array_equal(done["fast"], done["naive"])
    np.testing.assert_array_equal(done["fast"][:, :1], given[:, :1])
    assert (done["fast"][:, 1:] != given[:, 1:]).any()
    assert sampling.fast_method_name(model) == "cached"


def test_cifar10_config_has_the_paper_sizes_and_its_tiny_form_trains_on_8bit_rgb(tmp_path):
    """The cifar10 variant builds the paper's network (traced, never run): 12 blocks of 4 residual
    layers of 258 maps (256 rounded up to 3 sub-pixel groups), one attention of 16 key / 128 value
    channels each (its inputs through a gated unit), 10 logistic components. Its cifar10_tiny
    form trains on random 8-bit 32x32x3 images through the library entry point of launch.py, and
    learns: its training NLL falls on its 4 training images (one batch). This is the model's
    learning check (tests/test_model_training.py leaves it out)."""
    from experiments.configs import pixelsnail as cfg_file
    cfg = config_schema.from_config_dict(cfg_file.get_config("cifar10"))
    model = models.build_model(cfg.model, (32, 32, 3), 10, num_levels=256)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"])
    assert sum(k.startswith("res_in_") for k in shapes) == 48
    assert shapes["res_out_47"]["kernel"].shape == (2, 2, 258, 516)
    assert shapes["keys_values_11"]["kernel"].shape == (3 + 258 + 2, 16 + 128)
    assert shapes["kv_unit_out_11"]["kernel"].shape == (263, 2 * 263)            # the gated unit before it
    assert shapes["queries_11"]["kernel"].shape == (1, 1, 258, 3 * 16)          # one query set per sub-pixel
    assert model.dropout_rate == 0.5 and model.obs.num_mixtures == 10
    assert shapes["head_out"]["kernel"].shape == (1, 1, 258, 3 * model.params_per_subpixel)

    config = cifar10_tiny_on_random_bytes(cfg_file, tmp_path)
    config.model.dropout_rate = 0.0                          # a descent check on one batch: no dropout noise
    assert_learns_on_random_bytes(config, tmp_path / "run")     # two Adam steps
    run = dgm_jax.load(tmp_path / "run")
    assert run.config.data.name == "npz" and run.model.obs.num_levels == 256
