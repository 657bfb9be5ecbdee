"""The autoregressive model family: causality (by Jacobian), normalization, the known
pitfalls of masked / gated convolutions, and closed-form checks.

All models are tiny and all images small (5x5 for Jacobians, 3x3 = 512 images for exact
normalization), with every parameter replaced by random values so that no zero
initialisation can hide a leak.
"""
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dgm_jax import config_schema, likelihood, models
from dgm_jax.observations.bernoulli import Bernoulli
from dgm_jax.models import count_params
from dgm_jax.models.gated_pixelcnn import down_shift, gate_half_indices
from dgm_jax.models.made import hidden_degrees

NUM_CLASSES = 3
TINY = {  # per model: the smallest sizes that still exercise every code path
    "bernoulli": {},
    "fvsbn": {},
    "nade": {"num_hidden": 6},
    "made": {"num_hidden": 12, "num_hidden_layers": 2, "num_masks": 3, "num_eval_masks": 3,
             "direct_connection": True, "ordering": "random"},     # raster masks: test_made_orderings
    "eonade": {"num_hidden": 6, "num_hidden_layers": 2, "num_eval_orderings": 3},
    "pixelcnn": {"num_features": 4, "num_layers": 2, "kernel_size": 3, "first_kernel_size": 3,
                 "head_features": 4},
    "gated_pixelcnn": {"num_features": 4, "num_layers": 2, "kernel_size": 3, "first_kernel_size": 3,
                       "head_features": 4},
    "pixelsnail": {"num_features": 4, "num_blocks": 2, "num_res_per_block": 1, "num_heads": 2, "key_features": 2,
                   "value_features": 2, "key_value_unit": True},
    "pixelcnn_pp": {"num_features": 4, "num_resnet": 0},
}


def test_registry_covers_the_family():
    assert set(models.MODEL_NAMES) == set(TINY)
    with pytest.raises(ValueError, match="Unknown model"):
        models.get_spec("pixelcnnn")
    with pytest.raises(config_schema.ConfigError, match="pixelcnnn"):
        config_schema.model_config("pixelcnnn")


def build(name, image_shape, conditional=False, likelihood="auto", num_levels=2, **overrides):
    cfg = config_schema.model_config(name, likelihood, conditional=conditional, **{**TINY[name], **overrides})
    return models.build_model(cfg, image_shape, NUM_CLASSES, num_levels=num_levels)


def param_shapes(model):
    """The parameter tree as ShapeDtypeStructs (init traced, never compiled or run)."""
    x = np.zeros((1,) + tuple(model.image_shape), np.float32)
    y = np.zeros((1, NUM_CLASSES), np.float32) if model.conditional else None
    return jax.eval_shape(lambda: model.init(jax.random.key(0), x, y)["params"])


def random_params(model, seed=0, scale=0.5):
    """EVERY leaf (biases, masked taps, conditioning) drawn from N(0, scale^2), so that no zero
    initialisation can hide a dependency or a leak."""
    rng = np.random.default_rng(seed)
    # device_put of host float32 arrays: jnp.asarray(host array) compiles a program per shape.
    return jax.tree.map(lambda s: jax.device_put((scale * rng.standard_normal(s.shape)).astype(np.float32)),
                        param_shapes(model))


def one_hot(labels):
    return jax.device_put(np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels)])


def random_binary(seed, shape):
    return jax.random.bernoulli(jax.random.key(seed), 0.5, shape).astype(jnp.float32)


@functools.lru_cache(maxsize=None)
def jacobian_fn(model):
    """jit(x [B,H,W,C], y, mask_index -> J [B, D, D]) with J[b, i, j] = d logit_i / d x_j (raster order)."""
    def one(params, x, y, mask_index):
        f = lambda v: model.apply({"params": params}, v.reshape((1,) + x.shape), y, mask_index=mask_index).reshape(-1)
        return jax.jacfwd(f)(x.reshape(-1))
    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0 if model.conditional else None, None)))


def jacobian(model, params, x, y=None, mask_index=0):
    y = None if y is None else y[:, None, :]      # vmapped per example: [B, 1, D]
    return np.asarray(jacobian_fn(model)(params, x, y, jnp.int32(mask_index)))


def num_masks(model) -> int:
    """Masks (or orderings) to check: those trained and those averaged at evaluation."""
    return max(models.num_train_masks(model), models.num_eval_masks(model))


def not_before(model, mask_index) -> np.ndarray:
    """[D, D] bool, [i, j] = sub-pixel j is not before sub-pixel i in mask `mask_index`'s order
    (raster indices; j = i included): what output i must not read."""
    rank = np.argsort(model.subpixel_order(mask_index))       # rank[i] = position of sub-pixel i
    return rank[None, :] >= rank[:, None]


MODEL_CASES = [pytest.param(n, c, id=f"{n}{'-cond' if c else ''}") for n in TINY for c in (False, True)]


# ----------------------------------------------------------------------------- causality

@pytest.mark.parametrize("conditional,channels", [(False, 1), (True, 2)], ids=["grey", "cond-2ch"])
@pytest.mark.parametrize("name", list(TINY))
def test_autoregressive_by_jacobian(name, conditional, channels):
    """d logit_i / d x_j == 0 exactly for every j not before i in the mask's order (raster over
    (row, col, channel) for most models; MADE's random orders, EoNADE's orderings), every mask.
    Two cases a model: one channel unconditional, and two channels conditional (the channel
    groups and the conditioning path together; RGB: test_subpixel_autoregressive_by_jacobian_rgb)."""
    model = build(name, (5, 5, channels), conditional)
    params = random_params(model)
    x = random_binary(1, (2, 5, 5, channels))
    y = one_hot([0, 2]) if conditional else None
    for mask_index in range(num_masks(model)):
        # j >= i in the order, the diagonal included, for each of sub-pixel i's P outputs
        future = np.repeat(not_before(model, mask_index), model.params_per_subpixel, axis=0)
        jac = jacobian(model, params, x, y, mask_index)
        leaks = np.argwhere(np.any(jac[:, future] != 0, axis=0))
        assert leaks.size == 0, f"mask {mask_index}: logit depends on itself or the future"
        if name != "bernoulli":                        # and the model does use the past
            assert np.count_nonzero(jac) > 0


@pytest.mark.parametrize("channels", [1, 2])
def test_gated_pixelcnn_has_no_blind_spot(channels):
    """With S_L = k0//2 + L k//2 >= 4 on 5x5, every earlier dimension reaches every logit."""
    # Wide enough (and enough images) that no ReLU of the output head is dead everywhere.
    model = build("gated_pixelcnn", (5, 5, channels), num_layers=3, num_features=8, head_features=8)
    jac = jacobian(model, random_params(model), random_binary(2, (16, 5, 5, channels)))
    reached = np.any(jac != 0, axis=0)
    d = 25 * channels
    missing = [(i, j) for i in range(d) for j in range(i) if not reached[i, j]]
    assert not missing, f"(logit, input) pairs never connected: {missing[:10]}"


def _pixelcnn_reach(first_kernel, kernel, num_layers):
    """Offsets (dr, dc) that a mask-A k0 x k0 layer then L mask-B k x k layers can reach."""
    def taps(k, with_centre):
        c = k // 2
        out = {(dr, dc) for dr in range(-c, 1) for dc in range(-c, c + 1) if dr < 0 or dc < 0}
        return out | {(0, 0)} if with_centre else out
    reach = taps(first_kernel, False)
    for _ in range(num_layers):
        reach = {(a + b, c + d) for (a, c) in reach for (b, d) in taps(kernel, True)}
    return reach


def test_pixelcnn_blind_spot_is_exactly_the_above_right_triangle():
    """Documents the original PixelCNN's blind spot: with 3x3 kernels, pixel (r, c) never sees
    (r', c') with r' < r and c' - c > r - r', however deep the stack. Here the Jacobian of a
    4-layer model on 5x5 equals the tap-composition prediction exactly, and for pixel (4, 1)
    the missed earlier pixels are exactly (2, 4), (3, 3) and (3, 4)."""
    model = build("pixelcnn", (5, 5, 1), num_features=8, num_layers=4, head_features=8)
    jac = jacobian(model, random_params(model), random_binary(3, (8, 5, 5, 1)))
    reached = np.any(jac != 0, axis=0)
    reach = _pixelcnn_reach(3, 3, 4)
    expected = np.zeros((25, 25), bool)
    for (ri, ci), (rj, cj) in itertools.product(itertools.product(range(5), repeat=2), repeat=2):
        expected[ri * 5 + ci, rj * 5 + cj] = (rj - ri, cj - ci) in reach
    np.testing.assert_array_equal(reached, expected)
    i = 4 * 5 + 1
    missed = {divmod(j, 5) for j in range(i) if not reached[i, j]}
    assert missed == {(2, 4), (3, 3), (3, 4)}
    # The analytic description of the blind spot, checked for every pixel:
    for i in range(25):
        (ri, ci) = divmod(i, 5)
        blind = {j for j in range(i) if divmod(j, 5)[0] < ri and divmod(j, 5)[1] - ci > ri - divmod(j, 5)[0]}
        assert blind == {j for j in range(i) if not reached[i, j]}


def test_made_masks_are_distinct_deterministic_and_traceable():
    d = 25
    a = [hidden_degrees(d, 12, 2, k) for k in range(3)]
    b = [hidden_degrees(d, 12, 2, k) for k in range(3)]
    for k in range(3):
        for la, lb in zip(a[k], b[k]):
            np.testing.assert_array_equal(la, lb)          # same seed -> same mask
        assert a[k][0].min() >= 1 and a[k][-1].max() <= d - 1
        assert a[k][1].min() >= a[k][0].min()               # later layers start at the previous min
    assert len({tuple(np.concatenate(m)) for m in a}) == 3  # distinct masks
    model = build("made", (5, 5, 1))
    params = random_params(model)
    x = random_binary(4, (2, 5, 5, 1))
    eager = [model.apply({"params": params}, x, mask_index=k) for k in range(3)]
    traced = jax.jit(lambda k: model.apply({"params": params}, x, mask_index=k))
    for k in range(3):
        np.testing.assert_allclose(traced(jnp.int32(k)), eager[k], rtol=1e-6)
    assert not np.allclose(eager[0], eager[1])
    with pytest.raises(ValueError, match="mask_index"):
        model.apply({"params": params}, x, mask_index=3)
    with pytest.raises(ValueError, match="num_eval_masks"):
        build("made", (5, 5, 1), num_masks=2, num_eval_masks=3).init(jax.random.key(0), x)
    assert model.num_train_masks == 3 and model.num_eval_masks == 3


def test_made_orderings():
    """ordering='raster': every mask in raster order (Jacobian strictly lower-triangular in raster
    order, and live). 'random' (TINY's): each mask its own permutation, deterministic and distinct,
    not raster even with one mask, and the input degrees are the positions in it."""
    raster = build("made", (5, 5, 1), ordering="raster")
    assert raster.raster_ordered
    params = random_params(raster)
    x = random_binary(4, (2, 5, 5, 1))
    for k in range(3):
        np.testing.assert_array_equal(raster.subpixel_order(k), np.arange(25))
        jac = jacobian(raster, params, x, None, k)
        assert not np.any(jac[:, np.triu(np.ones((25, 25), bool))] != 0) and np.count_nonzero(jac) > 0
    rand = build("made", (5, 5, 1))
    assert not rand.raster_ordered
    orders = [rand.subpixel_order(k) for k in range(3)]
    table = rand.input_degree_table()
    for k, order in enumerate(orders):
        np.testing.assert_array_equal(np.sort(order), np.arange(25))
        np.testing.assert_array_equal(order, build("made", (5, 5, 1)).subpixel_order(k))   # deterministic
        np.testing.assert_array_equal(table[k, order], np.arange(1, 26))                 # m(order[t]) = t + 1
    assert len({tuple(o) for o in orders}) == 3
    one = build("made", (5, 5, 1), num_masks=1, num_eval_masks=1)
    assert not np.array_equal(one.subpixel_order(0), np.arange(25))
    with pytest.raises(config_schema.ConfigError, match=r"ordering='rasta'.*raster, random"):
        build("made", (5, 5, 1), ordering="rasta")


@pytest.mark.parametrize("name,field,smallest", [("made", "num_hidden", 1), ("made", "num_hidden_layers", 1),
                                                  ("made", "num_masks", 1), ("nade", "num_hidden", 1),
                                                  ("eonade", "num_hidden", 1), ("eonade", "num_eval_orderings", 1)])
def test_size_fields_are_refused_below_their_smallest_value(name, field, smallest):
    with pytest.raises(config_schema.ConfigError,
                       match=rf"config\.model\.{field}={smallest - 1} .*smallest valid value is {smallest}"):
        config_schema.model_config(name, **{field: smallest - 1})


# ----------------------------------------------------------------------------- normalization

ALL_3x3 = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=9)), jnp.float32).reshape(512, 3, 3, 1)


@pytest.mark.parametrize("name,conditional", MODEL_CASES)
def test_sums_to_one_over_all_3x3_images(name, conditional):
    model = build(name, (3, 3, 1), conditional)
    params = random_params(model, seed=5, scale=1.0)
    log_p = jax.jit(lambda y, k: model.obs.log_prob(model.apply({"params": params}, ALL_3x3, y, mask_index=k),
                                                    ALL_3x3))
    classes = range(NUM_CLASSES) if conditional else [None]
    dists = []
    for c in classes:
        y = None if c is None else jnp.broadcast_to(one_hot(c), (512, NUM_CLASSES))
        per_mask = jnp.stack([log_p(y, jnp.int32(k)) for k in range(models.num_eval_masks(model))])
        for lp in per_mask:
            assert np.exp(np.asarray(lp, np.float64)).sum() == pytest.approx(1.0, abs=1e-5)
        ensemble = likelihood.log_mean_exp(per_mask, axis=0)          # MADE's mixture (K = 1: itself)
        assert np.exp(np.asarray(ensemble, np.float64)).sum() == pytest.approx(1.0, abs=1e-5)
        dists.append(np.asarray(ensemble))
    if conditional:                                                   # y really changes p(x | y)
        assert not np.allclose(dists[0], dists[1], atol=1e-4)
        with pytest.raises(ValueError, match="needs y"):
            model.apply({"params": params}, ALL_3x3[:2])


def test_unconditional_models_ignore_y():
    for name in TINY:
        model = build(name, (3, 3, 1))
        params = random_params(model)
        x = ALL_3x3[:4]
        apply = jax.jit(lambda v, y: model.apply({"params": params}, v, y))
        np.testing.assert_array_equal(apply(x, None), apply(x, one_hot([0, 1, 2, 0])))


# ----------------------------------------------------------------------------- gated PixelCNN pitfalls

def test_gated_vertical_features_reach_row_r_only_after_the_down_shift():
    """Perturbing row r of x changes the (unshifted) vertical features of row r, but not what
    the horizontal stack of row r reads: down_shift(v~)[r] is computed from rows < r."""
    model = build("gated_pixelcnn", (5, 5, 1), num_layers=2)
    params = random_params(model)
    r = 2
    x = random_binary(6, (1, 5, 5, 1))
    x2 = x.at[:, r].set(1.0 - x[:, r])
    vert = jax.jit(lambda v: model.apply({"params": params}, v, method=model.vertical_stack))
    horiz = jax.jit(lambda v, va: model.apply({"params": params}, v, va, method=model.horizontal_stack))
    v1, v2 = vert(x), vert(x2)
    for a, b in zip(v1, v2):
        np.testing.assert_array_equal(a[:, :r], b[:, :r])                      # rows above untouched
        assert not np.allclose(a[:, r], b[:, r])                               # row r itself moved...
        np.testing.assert_array_equal(down_shift(a)[:, r], down_shift(b)[:, r])  # ...but not its shift
    # Same x for the horizontal stack: only the vertical input differs, and row r does not notice.
    out1 = horiz(x, [down_shift(a) for a in v1])
    out2 = horiz(x, [down_shift(b) for b in v2])
    np.testing.assert_array_equal(out1[:, : r + 1], out2[:, : r + 1])
    assert not np.allclose(out1[:, r + 1], out2[:, r + 1])                     # row r+1 does see row r
    # Control: without the shift, row r WOULD read row r's vertical features (the leak).
    assert not np.allclose(horiz(x, list(v1))[:, r], horiz(x, list(v2))[:, r])


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_gated_first_layer_has_no_residual_pixel_never_sees_itself(num_layers):
    model = build("gated_pixelcnn", (5, 5, 1), num_layers=num_layers)
    params = random_params(model, scale=1.0)
    centre = params["h_convs_0"]["kernel"][0, -1]                  # the mask-A tap, stored non-zero
    assert np.all(np.asarray(centre) != 0)
    jac = jacobian(model, params, random_binary(7, (3, 5, 5, 1)))
    assert np.all(np.diagonal(jac, axis1=1, axis2=2) == 0.0)
    # The first layer is live: each pixel reads its left neighbour.
    assert all(np.any(jac[:, i, i - 1] != 0) for i in range(1, 25) if i % 5)


def test_gated_conditioning_reaches_both_gate_halves_in_both_stacks():
    """Keep ONE block of conditioning weights (layer l, stack v/h, half f/g) and zero all the
    others: y must still change the logits, for every block. All zero: y has no effect."""
    feats, num_layers = 4, 1
    model = build("gated_pixelcnn", (5, 5, 1), True, num_features=feats, num_layers=num_layers)
    params = random_params(model, scale=1.0)
    x = random_binary(8, (2, 5, 5, 1))
    y_a, y_b = one_hot([0, 0]), one_hot([1, 1])
    apply = jax.jit(lambda p, y: model.apply({"params": p}, x, y))
    halves = dict(zip("fg", gate_half_indices(feats, 1)))
    np.testing.assert_array_equal(halves["f"], np.arange(feats))

    def only(keep):
        p = jax.tree.map(lambda a: a, params)
        for l in range(num_layers + 1):
            for stack in ("v", "h"):
                kernel = np.zeros_like(params[f"{stack}_conds_{l}"]["kernel"])
                if keep is not None and keep[:2] == (l, stack):
                    kernel[:, halves[keep[2]]] = params[f"{stack}_conds_{l}"]["kernel"][:, halves[keep[2]]]
                p[f"{stack}_conds_{l}"] = {"kernel": jnp.asarray(kernel)}
        return p

    p0 = only(None)
    np.testing.assert_array_equal(apply(p0, y_a), apply(p0, y_b))
    for keep in itertools.product(range(num_layers + 1), ("v", "h"), "fg"):
        p = only(keep)
        assert not np.allclose(apply(p, y_a), apply(p, y_b), atol=1e-6), f"y does not act through {keep}"


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_receptive_field_rows_is_exact(name):
    """The window sampler (dgm_jax.sampling) relies on receptive_field_rows: the logits of row r
    computed on rows max(0, r - R) .. r alone equal the full-image ones, and R is tight."""
    model = build(name, (9, 5, 1), num_layers=1)
    big = model.receptive_field_rows
    params = random_params(model)
    x = random_binary(9, (2, 9, 5, 1))
    apply = jax.jit(lambda v: model.apply({"params": params}, v))
    full = apply(x)
    for r in range(9):
        start = max(0, r - big)
        window = apply(x[:, start: r + 1])
        np.testing.assert_allclose(window[:, r - start], full[:, r], rtol=1e-5, atol=1e-6)
    jac = np.any(jacobian(model, params, x) != 0, axis=0)
    rows = max(divmod(i, 5)[0] - divmod(j, 5)[0] for i in range(45) for j in range(45) if jac[i, j])
    assert rows == big


# ----------------------------------------------------------------------------- closed forms

def _fit(model, x, steps, lr):
    """Plain gradient ascent on the mean log-likelihood (optax.sgd), starting from the init.

    Bernoulli logits do not depend on x, so the model runs on one image and its logits are
    broadcast over the flattened data [N, D] (XLA on CPU is ~20x slower on [N, H, W, 1]).
    """
    params = jax.jit(model.init)(jax.random.key(0), x[:1])["params"]
    opt = optax.sgd(lr)
    flat = x.reshape(x.shape[0], -1)

    def loss(p):
        logits = model.apply({"params": p}, x[:1]).reshape(1, -1)
        return -jnp.mean(Bernoulli().log_prob(jnp.broadcast_to(logits, flat.shape)[..., None], flat))

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, -loss(params)


def test_the_coin():
    flips = "HHHTHTHH"
    x = jnp.asarray([1.0 if f == "H" else 0.0 for f in flips]).reshape(8, 1, 1, 1)
    theta = 6 / 8                                               # closed form: the fraction of heads
    params, mean_ll = jax.jit(lambda v: _fit(build("bernoulli", (1, 1, 1)), v, 300, 4.0))(x)
    assert float(jax.nn.sigmoid(params["logits"]).squeeze()) == pytest.approx(theta, abs=1e-3)
    assert float(mean_ll) == pytest.approx((6 * math.log(theta) + 2 * math.log(1 - theta)) / 8, abs=1e-6)


def test_bernoulli_mle_on_digits_matches_closed_form():
    """sklearn digits, 1,797 8x8 images thresholded at 8/16. The MLE is theta_i = mean x_i.

    Pixels that are 0 (or 1) in every image have theta_i = 0 (1): logit -inf (+inf), which
    gradient ascent only approaches like -log(t). They are compared in probability space, with
    the same 1e-3 tolerance; for them that tolerance is a clip on the logit: it must have
    passed -+logit(1 - 1e-3) = -+6.9 with the right sign. The log-likelihood, finite at the
    MLE (0 log 0 = 0), must agree too."""
    from sklearn.datasets import load_digits
    images = load_digits().images
    x = jnp.asarray((images / 16.0 >= 0.5).astype(np.float32))[..., None]      # [1797, 8, 8, 1]
    theta = np.asarray(x).mean(axis=0)
    constant = (theta == 0) | (theta == 1)
    assert constant.any() and (~constant).any()                                 # both kinds exist
    # Step 7: gradient ascent is stable below 2 / (largest curvature, 1/4 per pixel) = 8; a constant
    # pixel's logit then moves like -log(1 + 7 t), past -6.9 well before t = 400.
    params, mean_ll = jax.jit(lambda v: _fit(build("bernoulli", (8, 8, 1)), v, 400, 7.0))(x)
    logits = np.asarray(params["logits"]).reshape(theta.shape)   # [H, W, C, P=1] -> [H, W, C]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), theta, atol=1e-3)
    clip = math.log((1 - 1e-3) / 1e-3)
    assert np.all(np.where(theta[constant] == 1, logits[constant], -logits[constant]) >= clip)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.where(constant, 0.0, theta * np.log(theta) + (1 - theta) * np.log1p(-theta)).sum()
    assert float(mean_ll) == pytest.approx(ll, abs=1e-3 * theta.size)


@pytest.mark.parametrize("conditional,num_levels", [(False, 2), (True, 2), (False, 4)])
def test_bernoulli_log_prob_method_equals_the_observation_model_and_its_gradient(conditional, num_levels):
    """The coin's own log_prob (closed form X . (log sigma(a) - log sigma(-a)) + const for binary,
    unconditional data; the generic path otherwise) against obs.log_prob of its outputs: values
    and parameter gradients, with logits up to ~+-12 so that saturated pixels are included."""
    model = build("bernoulli", (4, 5, 1), conditional, num_levels=num_levels)
    params = random_params(model, seed=3, scale=4.0)
    x = jnp.asarray(np.random.default_rng(0).integers(0, num_levels, (16, 4, 5, 1)) / (num_levels - 1),
                    jnp.float32)
    y = one_hot(np.arange(16) % NUM_CLASSES) if conditional else None
    weights = jnp.linspace(0.5, 1.5, 16)

    def with_grad(log_prob):      # (log p of images v, gradient of its weighted sum), one compile per path
        return jax.jit(lambda p, v: (log_prob(p, v), jax.grad(lambda q: jnp.sum(weights * log_prob(q, v)))(p)))
    via_method = with_grad(lambda p, v: model.apply({"params": p}, v, y, method="log_prob"))
    via_outputs = with_grad(lambda p, v: model.obs.log_prob(model.apply({"params": p}, v, y), v))
    (a, ga), (b, gb) = via_method(params, x), via_outputs(params, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5), ga, gb)
    # Off-grid values (a grey level for a binary model, NaN, 1.5) poison the image's log p on both paths.
    bad = x.at[3, 0, 0, 0].set(0.5 / (num_levels - 1) if num_levels == 2 else 0.3).at[7, 1, 1, 0].set(jnp.nan)
    bad = bad.at[9, 2, 2, 0].set(1.5)
    for fn in (via_method, via_outputs):
        lp = np.asarray(fn(params, bad)[0])
        assert np.isnan(lp[[3, 7, 9]]).all() and np.isfinite(np.delete(lp, [3, 7, 9])).all()


@pytest.mark.parametrize("conditional", [False, True])
def test_nade_running_sum_equals_naive_d_passes(conditional):
    model = build("nade", (3, 4, 2), conditional, num_hidden=5)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), random_params(model, scale=1.0))
    x = np.asarray(random_binary(10, (3, 3, 4, 2)))
    y = np.asarray(one_hot([0, 1, 2])) if conditional else None
    fast = np.asarray(model.apply({"params": jax.tree.map(jnp.asarray, p)}, x, y))
    sigmoid = lambda a: 1 / (1 + np.exp(-a))
    d = 24
    naive = np.zeros((3, d))
    for b in range(3):
        xb = x[b].reshape(-1)
        c = p["c"] + (y[b] @ p["cond"]["kernel"] if conditional else 0.0)
        for i in range(d):                                  # one full pass per conditional
            h = sigmoid(c + p["W"][:i].T @ xb[:i])
            naive[b, i] = p["b"][i, 0] + h @ p["V"][i, :, 0]      # P = 1 output per sub-pixel
    np.testing.assert_allclose(fast.reshape(3, d), naive, rtol=1e-5, atol=1e-5)


def test_param_counts_of_the_test_models():
    """Pins the sizes (so a silently dropped or duplicated layer shows up) and prints them."""
    counts = {}
    for name in TINY:
        model = build(name, (5, 5, 1))
        counts[name] = count_params(param_shapes(model))
    print(counts)
    d = 25
    assert counts["bernoulli"] == d
    assert counts["fvsbn"] == d * d + d
    assert counts["nade"] == 2 * d * 6 + 6 + d
    # two hidden layers of 12, the output layer, and the direct input->output path (d x d, no bias)
    assert counts["made"] == (d * 12 + 12) + (12 * 12 + 12) + (12 * d + d) + d * d
    # W_x and W_m (d x 6 each) and c, a second layer of 6, V (6 per sub-pixel) and b
    assert counts["eonade"] == (2 * d * 6 + 6) + (6 * 6 + 6) + (6 * d + d)


# ----------------------------------------------------------------------------- grey levels and colour

LEVELS = 4
RGB = {"pixelcnn": {"num_features": 6, "head_features": 6},          # widths divisible by C = 3
       # 4 maps per group: with 2, random params often turn off every head ReLU of G's group at the
       # centre pixel, and the check that G reads R fails by chance
       "gated_pixelcnn": {"num_features": 12, "head_features": 12},
       "pixelsnail": {"num_features": 6, "conv_width": 3},        # 2x3 convolutions here, 2x2 in TINY
       "pixelcnn_pp": {"num_features": 6}}
# (model, likelihood) whose network reads no sub-pixel of the current pixel: the likelihood couples
# them itself (PixelCNN++: the logistic mixture's G mean reads R, B's reads R and G).
COUPLED_BY_LIKELIHOOD = {("pixelcnn_pp", "discretized_logistic_mixture")}
MULTI_LIKELIHOODS = [("categorical", {}), ("discretized_logistic_mixture", {"num_mixtures": 2})]


def all_images(shape, k):
    """Every image of `shape` (H, W, C) with k levels per sub-pixel: [k^(HWC), H, W, C]."""
    d = int(np.prod(shape))
    levels = np.array(list(itertools.product(range(k), repeat=d)), np.float32) / (k - 1)
    return jnp.asarray(levels.reshape((-1,) + tuple(shape)))


def random_levels(seed, shape, k=LEVELS):
    return jnp.asarray(np.random.default_rng(seed).integers(0, k, shape) / (k - 1), jnp.float32)


@pytest.mark.parametrize("lik,lik_opts", MULTI_LIKELIHOODS, ids=[m[0] for m in MULTI_LIKELIHOODS])
@pytest.mark.parametrize("name", list(TINY))
def test_subpixel_autoregressive_by_jacobian_rgb(name, lik, lik_opts):
    """RGB with 4 levels: every output of sub-pixel i (all P of them) has zero derivative with
    respect to every sub-pixel j >= i in raster order over (row, col, channel). So R never reads
    G or B of its own pixel, G reads R but not B, B reads R and G; and G does read R."""
    model = build(name, (3, 3, 3), likelihood=lik, num_levels=LEVELS, **lik_opts, **RGB.get(name, {}))
    params = random_params(model)
    x = random_levels(11, (2, 3, 3, 3))
    p = model.params_per_subpixel
    d = 27
    for mask_index in range(num_masks(model)):
        future = np.repeat(not_before(model, mask_index), p, axis=0)         # [D * P, D]
        jac = jacobian(model, params, x, None, mask_index)                  # [B, D * P, D]
        assert jac.shape[1:] == (d * p, d)
        assert not np.any(jac[:, future] != 0), f"mask {mask_index}: an output reads its own or a later sub-pixel"
    if name not in ("bernoulli", "eonade"):     # (EoNADE gives a pixel's channels together: G never reads R)
        reads = np.any(jac != 0, axis=0).reshape(d, p, d).any(axis=1)       # [sub-pixel i, j]
        centre = 4 * 3                                                       # pixel (1, 1): R, G, B at 12, 13, 14
        own = [reads[centre + 1, centre], reads[centre + 2, centre], reads[centre + 2, centre + 1]]
        if (name, lik) in COUPLED_BY_LIKELIHOOD:
            assert not any(own) and reads[centre, centre - 1]                # the left pixel's B, not R
        else:
            assert all(own)


# Two RGB pixels for the convolutional models, whose channel masks order R, G, B within a pixel:
# side by side with the categorical (1x2: the left neighbour, the horizontal stack's), one above
# the other with the logistic mixture (2x1: the row above, the vertical stack's; PixelCNN++
# couples the channels inside this likelihood), 4,096 images each; their binary 3x3 images are
# enumerated above. The MLP-type models (bernoulli, fvsbn, nade, made) flatten (row, col, channel)
# into one raster order, so a pixel's 3 sub-pixels are 3 positions of that order: the grey 2x2
# case (4 positions, 256 images) covers them (their sub-pixel causality on 3x3 RGB: the Jacobian
# test above), with the categorical, and MADE's ensemble also with the logistic mixture. A model
# reads the logistic's parameters through the same output layout as the categorical's (their
# causality for every model: the RGB Jacobian test above), and each conditional's normalization
# is the observation model's own (tests/test_observations.py).
def _enumerated(name, shape, lik):
    h, w, c = shape
    return pytest.param(name, shape, *lik, id=f"{name}-{'grey' if c == 1 else 'rgb'}{h}x{w}-{lik[0]}")


MULTI_ENUMERATED = ([_enumerated(n, (2, 2, 1), MULTI_LIKELIHOODS[0]) for n in TINY if n not in RGB]
                    + [_enumerated(n, shape, lik) for n in RGB                          # the conv models
                       for shape, lik in zip(((1, 2, 3), (2, 1, 3)), MULTI_LIKELIHOODS)]
                    + [_enumerated("made", (2, 2, 1), MULTI_LIKELIHOODS[1])])


@pytest.mark.parametrize("name,shape,lik,lik_opts", MULTI_ENUMERATED)
def test_multilevel_models_sum_to_one_by_enumeration(name, shape, lik, lik_opts):
    """2x2 grey images with 4 levels (256 images) and two RGB pixels with 4 levels per channel
    (4,096 images): sum_x p(x) = 1 for every model, both observation models (the cases above),
    every mask and the MADE ensemble, with random parameters."""
    model = build(name, shape, likelihood=lik, num_levels=LEVELS, **lik_opts,
                  **(RGB.get(name, {}) if shape[2] == 3 else {}))
    params = random_params(model, seed=3, scale=1.0)
    x = all_images(shape, LEVELS)
    n_masks = models.num_eval_masks(model)
    if n_masks > 1:                             # each mask's model too (with one, the mixture is it)
        log_p = jax.jit(lambda k: model.obs.log_prob(model.apply({"params": params}, x, mask_index=k), x))
        for k in range(n_masks):
            assert np.exp(np.asarray(log_p(jnp.int32(k)), np.float64)).sum() == pytest.approx(1.0, abs=2e-5)
    mixture = np.asarray(jax.jit(lambda p: likelihood.model_log_prob(model, p, x))(params), np.float64)
    assert np.exp(mixture).sum() == pytest.approx(1.0, abs=2e-5)
    assert np.std(mixture) > 1e-3                                   # not the uniform distribution
