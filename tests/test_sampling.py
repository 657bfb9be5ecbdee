"""Samplers: binary samples of the right shape; the fast methods draw exactly the naive samples;
completions keep the given rows; the device count does not change the samples."""
import textwrap

import jax
import numpy as np
import pytest

from dgm_jax import models, sampling
from dgm_jax import config_schema


def build(name, shape, conditional=False, num_levels=2, **kw):
    # PixelSNAIL: two blocks (the cache of one block's outputs feeds the next), one residual layer each,
    # the keys' and values' gated unit on (it runs when a pixel's keys and values are stored), 2x3
    # convolutions (their caches' extra right column; test_pixelsnail.py completes with 2x2 ones).
    sizes = {**dict(num_features=8, num_layers=2, first_kernel_size=3, num_hidden=16, num_blocks=2,
                    num_res_per_block=1, key_features=4, value_features=4, key_value_unit=True, conv_width=3),
             **kw}
    keys = config_schema.model_keys(name, kw.get("likelihood", "auto"))
    cfg = config_schema.model_config(name, conditional=conditional, **{k: v for k, v in sizes.items() if k in keys})
    return models.build_model(cfg, shape, 3, num_levels=num_levels)


def init(model, scale=1.0, seed=0):
    """Random parameters; scale > 1 makes the logits depend strongly on the context."""
    x = np.zeros((1,) + model.image_shape, np.float32)
    y = np.zeros((1, 3), np.float32) if model.conditional else None
    # jitted with the scaling: one compile, not one per op or per leaf
    return jax.jit(lambda k: jax.tree.map(lambda p: p * scale, model.init(k, x, y)["params"]))(jax.random.key(seed))


def labels(n):
    return np.arange(n, dtype=np.int32) % 3


def test_samples_are_binary_images_of_the_right_shape():
    model = build("made", (6, 6, 1))            # (the PixelCNNs: in the fast == naive test below)
    xs = np.asarray(sampling.sample(model, init(model), jax.random.key(0), 3))
    assert xs.shape == (3, 6, 6, 1) and xs.dtype == np.float32
    assert set(np.unique(xs)) <= {0.0, 1.0}


# One case per fast method and shape of the problem: (name, image shape, conditional, K levels,
# likelihood). Each observation model's sample() reads the same uniforms in both methods, so
# every one of them appears once: Bernoulli (K = 2), the categorical and the logistic mixture;
# conditioning, one and several channels (raster order over (row, col, channel)) likewise.
# The random parameters are scaled by 2 (binary: the logits depend strongly on the context, so
# the samples are neither all 0 nor all 1) or 1 (levels).
FAST_CASES = [("pixelcnn", (8, 6, 3), True, 4, "categorical"),                     # window method: 3 rows of 8
              ("gated_pixelcnn", (5, 4, 2), False, 2, "auto"),                     # incremental: binary, 2 channels
              ("gated_pixelcnn", (4, 3, 3), True, 8, "discretized_logistic_mixture"),   # incremental: colour
              ("pixelsnail", (3, 2, 3), True, 8, "discretized_logistic_mixture")]  # cached (maps, keys, values)


@pytest.mark.parametrize("name,shape,conditional,k,lik", FAST_CASES)
def test_fast_method_draws_exactly_the_naive_samples(name, shape, conditional, k, lik):
    """The fast samplers draw the naive sampler's images exactly, at temperature 1 and near argmax
    (0.1: every logit's sign matters), on the K-level grid; `auto` picks the fast method."""
    extra = {"num_features": 6, "head_features": 6} if shape[2] == 3 else {}
    model = build(name, shape, conditional, num_levels=k, likelihood=lik, **extra)
    assert sampling.has_fast_method(model)
    params = init(model, 2.0 if k == 2 else 1.0)
    y = labels(6) if conditional else None
    for temperature in (1.0, 0.1):
        naive = np.asarray(sampling.sample(model, params, jax.random.key(1), 6, y, temperature=temperature,
                                           method="naive"))
        fast = np.asarray(sampling.sample(model, params, jax.random.key(1), 6, y, temperature=temperature,
                                          method="fast"))
        assert naive.shape == (6,) + shape
        levels = naive * (k - 1)
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)             # on the grid
        assert len(np.unique(levels)) > min(k - 1, 2), np.unique(levels)           # not a trivial draw
        np.testing.assert_array_equal(fast, naive)
    auto = np.asarray(sampling.sample(model, params, jax.random.key(1), 6, y, temperature=0.1))
    np.testing.assert_array_equal(auto, fast)


def test_mask_ensemble_completion_follows_the_mixture_conditional():
    """MADE with 2 masks is the mixture (1/2)(p_1 + p_2). Given the top row, completions must follow
    p(x_rest | x_top) = sum_k p_k(x_top, x_rest) / sum_k p_k(x_top): the mask drawn with probability
    proportional to p_k(x_top), not uniformly. Checked by enumeration of the 16 completions of a 3x2
    image, against 20,000 draws; the uniform-mask mixture is shown to be far off for these params."""
    import itertools
    from dgm_jax import likelihood
    model = build("made", (3, 2, 1), num_hidden=16, num_masks=2, num_eval_masks=2)
    params = init(model, 6.0, seed=2)          # large weights: the two masks disagree about the top row
    top = np.array([1.0, 0.0], np.float32)
    rest = np.array(list(itertools.product([0.0, 1.0], repeat=4)), np.float32)          # [16, 4]
    images = np.concatenate([np.broadcast_to(top, (16, 2)), rest], 1).reshape(16, 3, 2, 1)
    per_mask = np.stack([np.asarray(likelihood.model_log_prob(model, params, images, mask_index=k), np.float64)
                         for k in range(2)])                                                 # [2, 16]
    joint = np.exp(per_mask).mean(0)
    exact = joint / joint.sum()
    uniform_mask = (np.exp(per_mask) / np.exp(per_mask).sum(1, keepdims=True)).mean(0)
    n = 20_000
    given = np.broadcast_to(images[:1], (n, 3, 2, 1)).copy()
    done = np.asarray(sampling.complete(model, params, jax.random.key(5), given, 1, method="naive"))
    np.testing.assert_array_equal(done[:, 0], given[:, 0])
    codes = done.reshape(n, 6)[:, 2:].astype(int) @ np.array([8, 4, 2, 1])
    empirical = np.bincount(codes, minlength=16) / n
    tv = 0.5 * np.abs(empirical - exact).sum()
    assert 0.5 * np.abs(uniform_mask - exact).sum() > 0.1          # the test can tell the two apart
    assert tv < 0.03, tv


# (EoNADE naive: its images equal the fast ones below; the naive random-order loop is MADE's case.)
RANDOM_ORDER_CASES = [("eonade", "fast"), ("made", "naive")]


@pytest.mark.parametrize("name,method", RANDOM_ORDER_CASES, ids=[f"{n}-{m}" for n, m in RANDOM_ORDER_CASES])
def test_random_order_models_sample_their_ensemble(name, method):
    """EoNADE's ensemble of 3 orderings, and MADE with 3 random-order masks, on 2x2 images: 20,000
    draws (a mask per sample, then its sub-pixels in its order) follow the exact mixture (1/3) sum_k
    p_k, computed by enumerating the 16 images; ordering 0 alone is far from it, so the test can tell.
    EoNADE's fast (ordered) sampler draws exactly the naive sampler's images. Completion is refused."""
    import itertools
    from dgm_jax import likelihood
    extra = {"num_eval_orderings": 3} if name == "eonade" else {"num_masks": 3, "num_eval_masks": 3,
                                                                  "ordering": "random"}
    model = build(name, (2, 2, 1), num_hidden=16, **extra)
    assert not model.raster_ordered
    params = init(model, 3.0, seed=1)
    images = np.array(list(itertools.product([0.0, 1.0], repeat=4)), np.float32).reshape(16, 2, 2, 1)
    exact = np.exp(np.asarray(likelihood.model_log_prob(model, params, images), np.float64))
    first = np.exp(np.asarray(likelihood.model_log_prob(model, params, images, mask_index=0), np.float64))
    assert exact.sum() == pytest.approx(1.0, abs=1e-5)
    n = 20_000
    xs = np.asarray(sampling.sample(model, params, jax.random.key(6), n, method=method))
    codes = xs.reshape(n, 4).astype(int) @ np.array([8, 4, 2, 1])
    empirical = np.bincount(codes, minlength=16) / n
    assert 0.5 * np.abs(first - exact).sum() > 0.05
    assert 0.5 * np.abs(empirical - exact).sum() < 0.03
    if method == "fast":
        naive = np.asarray(sampling.sample(model, params, jax.random.key(6), 64, method="naive"))
        np.testing.assert_array_equal(xs[:64], naive)
    with pytest.raises(ValueError, match="random orders"):
        sampling.complete(model, params, jax.random.key(0), xs[:2], 1, method=method)


def test_fast_method_availability():
    assert sampling.fast_method_name(build("gated_pixelcnn", (3, 3, 1))) == "incremental"
    assert sampling.fast_method_name(build("pixelcnn", (8, 8, 1))) == "window"
    short = build("pixelcnn", (3, 3, 1))         # the receptive field covers the image: no window gain
    assert not sampling.has_fast_method(short)
    assert sampling.resolve_method(short, "auto") == "naive"
    with pytest.raises(ValueError, match="no fast sampling method"):
        sampling.sample(short, init(short), jax.random.key(0), 1, method="fast")
    with pytest.raises(ValueError, match="Unknown sampling method"):
        sampling.sample(short, init(short), jax.random.key(0), 1, method="quick")
    with pytest.raises(ValueError, match="temperature"):
        sampling.sample(short, init(short), jax.random.key(0), 1, temperature=0.0)


@pytest.mark.parametrize("name,method", [("gated_pixelcnn", "fast"), ("pixelcnn", "fast"), ("made", "naive")])
def test_completion_keeps_given_rows_and_continues_the_sample(name, method):
    model = build(name, (8, 6, 1), conditional=True)
    params = init(model, 2.0)
    y = labels(4)
    key = jax.random.key(3)
    full = np.asarray(sampling.sample(model, params, key, 4, y, method=method))
    given = 1.0 - full                       # any binary images will do as the given part
    done = np.asarray(sampling.complete(model, params, jax.random.key(4), np.repeat(given, 3, axis=0), 4,
                                        np.repeat(y, 3), method=method))
    np.testing.assert_array_equal(done[:, :4], np.repeat(given, 3, axis=0)[:, :4])   # given rows exact
    assert set(np.unique(done)) <= {0.0, 1.0}
    assert (done[0::3, 4:] != done[1::3, 4:]).any()                  # several completions differ
    # Same key, given rows taken from a sample: the completion is that sample, since
    # every pixel i of sample s reads the same uniform u_{s,i}.
    # (Tiled to done's batch of 12, so that it runs done's compiled program; samples 0-3 are full's.)
    again = np.asarray(sampling.complete(model, params, key, np.tile(full, (3, 1, 1, 1)), 4, np.tile(y, 3),
                                         method=method))
    np.testing.assert_array_equal(again[:4], full)
    np.testing.assert_array_equal(sampling.complete(model, params, key, given, 8, y, method=method), given)
    with pytest.raises(ValueError, match="pixel values 0/1"):
        sampling.complete(model, params, key, given * 0.5, 4, y)


def test_sample_index_not_device_decides_the_draws():
    """Sample s is the same whether drawn alone or in a larger batch (on 2 devices: the test below).
    Model-independent (sample s reads the uniforms of fold_in(key, s) in every sampler; each fast
    sampler draws the naive one's images, above): a MADE, the cheapest to compile."""
    model = build("made", (6, 6, 1))
    params = init(model, 2.0)
    five = np.asarray(sampling.sample(model, params, jax.random.key(0), 5))
    three = np.asarray(sampling.sample(model, params, jax.random.key(0), 3))
    np.testing.assert_array_equal(five[:3], three)
    assert not np.array_equal(five[0], five[1])


def test_two_devices_draw_the_same_samples_as_one(fresh_python):
    out = fresh_python.code(textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from dgm_jax import models, sampling
        from dgm_jax.config_schema import model_config
        assert jax.local_device_count() == 2
        # Model-independent (the split is _draw's; every fast sampler draws the naive one's images,
        # above): a MADE, the cheapest to compile.
        model = models.build_model(model_config("made", num_hidden=16, conditional=True), (6, 6, 1), 3)
        params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 6, 6, 1)), jnp.zeros((1, 3)))["params"]
        params = jax.tree.map(lambda p: 2 * p, params)
        y = np.arange(5, dtype=np.int32) % 3                       # 5: padded to 6 on 2 devices
        two = sampling.sample(model, params, jax.random.key(7), 5, y)
        assert len(two.sharding.device_set) == 2
        one = sampling.sample(model, params, jax.random.key(7), 5, y, devices=jax.local_devices()[:1])
        np.testing.assert_array_equal(np.asarray(two), np.asarray(one))
        # (sampling.complete splits its images over the devices by the same function, _draw.)
        print("OK")
    """), devices=2)
    assert "OK" in out
