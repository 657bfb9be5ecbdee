"""Masked convolutions: mask shapes and A/B semantics, the 1x1 pitfall, channel groups,
and masking in the forward pass (stored kernel untouched, masked taps get zero gradient)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgm_jax.models.masked_conv import MaskedConv2D, channel_groups, conv_mask


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (5, 3), (7, 7)])
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_conv_mask_shape_and_spatial_semantics_single_channel(kernel, mask_type):
    kh, kw = kernel
    m = conv_mask(kernel, 2, 3, mask_type, num_data_channels=1)
    assert m.shape == (kh, kw, 2, 3)
    assert set(np.unique(m)) <= {0.0, 1.0}
    ch, cw = kh // 2, kw // 2
    for i in range(kh):
        for j in range(kw):
            if i < ch or (i == ch and j < cw):
                expected = 1.0                                   # strictly earlier in raster order
            elif i == ch and j == cw:
                expected = 1.0 if mask_type == "B" else 0.0      # centre: B keeps, A drops
            else:
                expected = 0.0                                   # the future
            assert np.all(m[i, j] == expected), (i, j)


def test_mask_b_centre_present_mask_a_centre_absent():
    a = conv_mask((3, 3), 1, 1, "A")[..., 0, 0]
    b = conv_mask((3, 3), 1, 1, "B")[..., 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_channel_group_rule_at_the_centre(mask_type):
    c = 3
    # First layer: the 3 data channels -> 6 features (2 per group); later: 6 -> 6 features.
    for n_in, n_out in [(3, 6), (6, 6), (6, 3)]:
        m = conv_mask((3, 3), n_in, n_out, mask_type, num_data_channels=c)
        g_in, g_out = channel_groups(n_in, c), channel_groups(n_out, c)
        for i in range(n_in):
            for o in range(n_out):
                allowed = g_in[i] < g_out[o] if mask_type == "A" else g_in[i] <= g_out[o]
                assert m[1, 1, i, o] == float(allowed), (n_in, n_out, i, o)
        # Off-centre taps are purely spatial: all channels of earlier pixels are visible.
        assert np.all(m[0] == 1) and np.all(m[1, 0] == 1) and np.all(m[2] == 0) and np.all(m[1, 2] == 0)
    np.testing.assert_array_equal(channel_groups(6, 3), [0, 0, 1, 1, 2, 2])


def test_odd_kernel_and_mask_type_checked():
    with pytest.raises(ValueError, match="odd"):
        conv_mask((2, 3), 1, 1, "A")
    with pytest.raises(ValueError, match="odd"):
        conv_mask((3, 4), 1, 1, "B")
    with pytest.raises(ValueError, match="mask_type"):
        conv_mask((3, 3), 1, 1, "C")
    layer = MaskedConv2D(2, (4, 4), "B")
    with pytest.raises(ValueError, match="odd"):
        layer.init(jax.random.key(0), jnp.zeros((1, 5, 5, 1)))


def test_1x1_mask_b_is_an_ordinary_1x1_conv():
    """The pitfall: a 1x1 kernel has no rows above it; mask B must keep its only tap (C = 1)."""
    layer = MaskedConv2D(4, (1, 1), "B", num_data_channels=1)
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 3))
    params = layer.init(jax.random.key(1), x)["params"]
    params = {"kernel": params["kernel"], "bias": jax.random.normal(jax.random.key(2), (4,))}
    out = layer.apply({"params": params}, x)
    unmasked = jnp.einsum("bhwi,io->bhwo", x, params["kernel"][0, 0]) + params["bias"]
    np.testing.assert_allclose(out, unmasked, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(out[:, 0]).min()) > 0.0      # the first row is not dropped
    np.testing.assert_array_equal(conv_mask((1, 1), 3, 4, "B"), np.ones((1, 1, 3, 4)))
    np.testing.assert_array_equal(conv_mask((1, 1), 3, 4, "A"), np.zeros((1, 1, 3, 4)))


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_layer_dependencies_by_jacobian(mask_type):
    """Output pixel i depends on input pixel j iff j < i in raster order (j <= i for mask B)."""
    layer = MaskedConv2D(1, (3, 3), mask_type)
    x = jax.random.normal(jax.random.key(0), (1, 5, 5, 1))
    params = layer.init(jax.random.key(1), x)["params"]
    jac = jax.jacfwd(lambda v: layer.apply({"params": params}, v.reshape(x.shape)).reshape(-1))(x.reshape(-1))
    nz = np.asarray(jac) != 0
    for i in range(25):
        for j in range(25):
            (ri, ci), (rj, cj) = divmod(i, 5), divmod(j, 5)
            in_kernel = abs(ri - rj) <= 1 and abs(ci - cj) <= 1
            visible = j < i or (j == i and mask_type == "B")
            assert nz[i, j] == (in_kernel and visible), (i, j)


def test_mask_applied_in_forward_pass_kernel_not_mutated_and_masked_taps_get_no_gradient():
    layer = MaskedConv2D(3, (3, 3), "A")
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 2))
    params = layer.init(jax.random.key(1), x)["params"]
    before = np.array(params["kernel"])
    mask = conv_mask((3, 3), 2, 3, "A")
    assert np.all(before[mask == 0] != 0), "init must leave masked taps non-zero for this test to bite"

    loss = lambda p: jnp.sum(layer.apply({"params": p}, x) ** 2)
    grads = jax.grad(loss)(params)["kernel"]
    np.testing.assert_array_equal(np.array(params["kernel"]), before)     # stored weights untouched
    assert np.all(np.asarray(grads)[mask == 0] == 0.0)                   # exactly zero, not small
    assert np.all(np.asarray(grads)[mask == 1] != 0.0)
    # The forward pass equals the unmasked conv of the masked kernel.
    ref = jax.lax.conv_general_dilated(x, params["kernel"] * mask, (1, 1), ((1, 1), (1, 1)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["bias"]
    np.testing.assert_allclose(layer.apply({"params": params}, x), ref, rtol=1e-5, atol=1e-6)
