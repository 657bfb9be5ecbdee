"""PixelCNN++ beyond the family's shared tests (tests/test_models.py proves its order by Jacobian and
its normalization by enumeration with no up-pass blocks, num_resnet = 0): the up pass and the
resolution changes, dropout, weight norm's data-dependent init, the config's checks, the CIFAR-10
config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_learns_on_random_bytes, cifar10_tiny_on_random_bytes
from dgm_jax import assembly, config_schema, likelihood, steps
from dgm_jax.models import pixelcnn_pp
from test_models import build, jacobian, one_hot, random_levels, random_params


def test_coarse_blocks_hold_only_what_the_coarse_position_may_read():
    """On odd sizes (5 x 3): block (i, j) of the shifted u holds rows 2i-1, 2i (zeros outside the
    image), of the shifted ul rows 2i-1..2i and columns 2j-1..2j; depth_to_space inverts
    space_to_depth."""
    h, w = 5, 3
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ids = jnp.asarray((1 + rows * w + cols)[None, :, :, None], jnp.float32)   # pixel id + 1 (0 = padding)
    for shift_right in (False, True):
        blocks = np.asarray(pixelcnn_pp.coarse_blocks(ids, shift_right))[0]     # [3, 2, 4]
        assert blocks.shape == (3, 2, 4)
        for i in range(3):
            for j in range(2):
                col0 = 2 * j - 1 if shift_right else 2 * j
                want = [1 + r * w + c if 0 <= r < h and 0 <= c < w else 0
                        for r in (2 * i - 1, 2 * i) for c in (col0, col0 + 1)]
                np.testing.assert_array_equal(blocks[i, j], want)
    x = jax.random.normal(jax.random.key(0), (2, 6, 4, 5))
    np.testing.assert_array_equal(pixelcnn_pp.depth_to_space(pixelcnn_pp.space_to_depth(x)), x)


def test_up_pass_blocks_are_causal_and_reach_every_earlier_subpixel():
    """num_resnet = 1 (every block of both passes), class-conditional, RGB categorical on 4 x 5:
    no output reads its own or a later sub-pixel, and every earlier one reaches it (the u stream
    sees the rows above without a blind spot, the sub-pixel head reads R for G, R and G for B)."""
    model = build("pixelcnn_pp", (4, 5, 3), True, likelihood="categorical", num_levels=4,
                  num_features=6, num_resnet=1)
    assert model.reads_own_subpixels
    x = random_levels(1, (4, 4, 5, 3))
    jac = jacobian(model, random_params(model), x, one_hot([0, 1, 2, 0]))
    d, p = 60, model.params_per_subpixel
    reads = np.any(jac != 0, axis=0).reshape(d, p, d).any(axis=1)
    np.testing.assert_array_equal(reads, np.tril(np.ones((d, d), bool), k=-1))


def test_dropout_in_training_only():
    """With dropout_rate > 0 the outputs are random only when the apply is given a 'dropout' rng,
    as steps.loss_fn does: its loss changes with the step's key; evaluation (no rng) is the
    dropout-free network."""
    model = build("pixelcnn_pp", (4, 4, 1), likelihood="categorical", num_levels=4, dropout_rate=0.5)
    plain = build("pixelcnn_pp", (4, 4, 1), likelihood="categorical", num_levels=4)
    params = random_params(model)
    x = random_levels(2, (3, 4, 4, 1))
    apply = jax.jit(lambda m, rngs: m.apply({"params": params}, x, rngs=rngs), static_argnums=0)
    np.testing.assert_array_equal(apply(model, {}), apply(plain, {}))
    a, b = (apply(model, {"dropout": jax.random.key(k)}) for k in (0, 1))
    assert not np.allclose(a, b) and not np.allclose(a, apply(plain, {}))
    loss_fn = jax.jit(lambda k: steps.loss_fn(params, {"x": x}, jax.random.key(k), 0, model=model)[0])
    loss = lambda k: float(loss_fn(k))  # noqa: E731
    assert loss(0) == loss(0) and loss(0) != loss(1)
    np.testing.assert_array_equal(jax.jit(lambda: likelihood.model_log_prob(model, params, x))(),
                                  jax.jit(lambda: likelihood.model_log_prob(plain, params, x))())


def first_layer_outputs(params, x):
    """u_in, the first weight-normalized convolution, recomputed here: [N * H * W, F]."""
    x_in = jnp.concatenate([2 * x - 1, jnp.ones_like(x[..., :1])], axis=-1)
    kernel = params["v"] * params["g"] / jnp.sqrt(jnp.sum(params["v"] ** 2, axis=(0, 1, 2)))
    out = jax.lax.conv_general_dilated(x_in, kernel, (1, 1), ((1, 0), (1, 1)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["bias"]
    return np.asarray(out).reshape(-1, kernel.shape[-1])


def test_weight_norm_without_data_init_starts_at_g_equal_norm_v():
    """Without data init, g = ||v||: the layer starts at v's own scale (with it: the CIFAR-10 test
    below); data_init_examples = 0 asks the runner for no init images."""
    x = random_levels(3, (2, 6, 6, 1))
    standard = pixelcnn_pp.ShiftedConv(4, (2, 3), weight_norm=True, data_init=False)
    p = jax.jit(standard.init)(jax.random.key(0), x)["params"]
    assert set(p) == {"v", "g", "bias"}
    np.testing.assert_allclose(p["g"], np.sqrt((np.asarray(p["v"]) ** 2).sum(axis=(0, 1, 2))), rtol=1e-6)
    assert not build("pixelcnn_pp", (6, 6, 1), weight_norm=True, data_init_examples=0).init_examples


def test_config_checks_name_the_field():
    with pytest.raises(config_schema.ConfigError, match="num_resnet=-1"):
        config_schema.model_config("pixelcnn_pp", num_resnet=-1)
    with pytest.raises(config_schema.ConfigError, match="dropout_rate=1.0"):
        config_schema.model_config("pixelcnn_pp", dropout_rate=1.0)
    model = build("pixelcnn_pp", (2, 2, 3), likelihood="categorical", num_levels=4, num_features=4)
    with pytest.raises(ValueError, match=r"num_features=4 must be a multiple of the 3 sub-pixels.*3, 6"):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 3))))
    # The logistic mixture couples the sub-pixels itself: any width, and the head reads none of them.
    mixture = build("pixelcnn_pp", (2, 2, 3), likelihood="discretized_logistic_mixture", num_levels=4,
                    num_features=4, num_mixtures=2)
    assert not mixture.reads_own_subpixels
    jax.eval_shape(lambda: mixture.init(jax.random.key(0), jnp.zeros((1, 2, 2, 3))))


def test_cifar10_config_has_the_paper_sizes_and_its_tiny_form_trains_on_8bit_rgb(tmp_path):
    """The cifar10 variant builds the paper's network (traced, never run): 160 maps, 5 blocks per
    scale (5 + 6 + 6 in the down pass), weight norm, dropout 0.5, 10 logistic components. Its
    cifar10_tiny form (weight norm initialized from the data) trains on random 8-bit 32x32x3
    images through the library entry point of launch.py, and learns: its training NLL falls on
    its 4 training images (one batch, so every step sees the same images). This is the model's
    learning check (tests/test_model_training.py leaves it out)."""
    from dgm_jax import models
    from experiments.configs import pixelcnn_pp as cfg_file
    cfg = config_schema.from_config_dict(cfg_file.get_config("cifar10"))
    model = models.build_model(cfg.model, (32, 32, 3), 10, num_levels=256)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"])
    assert sum(k.startswith("up_") and k.endswith("_u") for k in shapes) == 15
    assert sum(k.startswith("dn_") and k.endswith("_ul") for k in shapes) == 17
    assert shapes["dn_0_5_ul"]["conv_out"]["v"].shape == (2, 2, 320, 320)
    assert shapes["dn_0_5_ul"]["skip"]["v"].shape == (1, 1, 640, 160)               # concat_elu([u, ul skip])
    assert shapes["upsample_1_u"]["v"].shape == (1, 3, 160, 640)                 # 4F maps, then depth-to-space
    assert shapes["head_out"]["v"].shape == (1, 1, 320, 3 * model.params_per_subpixel)
    assert model.dropout_rate == 0.5 and model.obs.num_mixtures == 10 and model.init_examples == 100
    assert cfg.optim.b1 == 0.95 and cfg.optim.b2 == 0.9995 and cfg.optim.ema_decay == 0.9995

    config = cifar10_tiny_on_random_bytes(cfg_file, tmp_path)
    run = assembly.build_run(config)
    assert run.ds.num_levels == 256 and run.likelihood == "discretized_logistic_mixture"
    host_state = run.init_state()
    x_init, _ = run.init_inputs(run.model.init_examples)                    # the first 4 training images
    np.testing.assert_array_equal(x_init, run.ds.eval_images("train")[:4])
    # Weight norm's data-dependent init: on those images every weight-normalized layer starts with
    # outputs of mean 0 and std init_scale (1 for the input convolutions and the output layer, 0.1
    # for a block's second convolution). u_in is recomputed here from (v, g, b); the others are read.
    u_in = first_layer_outputs(host_state.params["u_in"], x_init)
    np.testing.assert_allclose(u_in.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(u_in.std(0), 1.0, rtol=1e-3)
    _, acts = jax.jit(lambda p, x: run.model.apply({"params": p}, x, capture_intermediates=True))(
        host_state.params, x_init)
    acts = acts["intermediates"]
    for name, scale in (("ul_in_left", 1.0), ("head_out", 1.0), ("dn_0_0_u", 0.1)):
        t = acts[name]["conv_out"] if name.startswith("dn_") else acts[name]
        t = np.asarray(t["__call__"][0])
        t = t.reshape(-1, t.shape[-1])
        if scale == 1.0:
            np.testing.assert_allclose(t.mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(t.std(0), scale, rtol=1e-3)
    config.train.num_steps = config.train.eval_every = config.train.checkpoint_every = 3
    assert_learns_on_random_bytes(config, tmp_path / "run")     # three Adam steps (with dropout)
