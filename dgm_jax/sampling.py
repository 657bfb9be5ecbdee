"""Ancestral sampling in raster order, jit-compiled end to end and split over the devices.

x is filled one dimension i = (row, col, channel) at a time:

    x_i ~ Bernoulli(sigmoid(logit_i(x_<i, y) / T)),   T = temperature,

as x_{s,i} = [u_{s,i} < p_{s,i}] with the uniforms of sample s drawn from its
own key, u_s = U(fold_in(key_pixels, s)) [H*W*C]. Hence two methods that
compute the same logits give the same samples for the same key, and sample s
is the same whether it is drawn on one device or several: the samples are
split over the local devices (jax.shard_map on a 1-D mesh) and each device
folds in the indices of its own samples. The loop over the dimensions is a
``lax.fori_loop`` inside one compiled program.

Completion (``complete``) starts the loop after the given rows, so those
pixels are kept exactly and the rest is drawn from p(x_rest | x_given, y).

Methods (``method='auto'`` takes ``fast`` when the model has one):
* ``naive``: the whole network on the whole image for every dimension
  (H*W*C full passes).
* ``fast``, window (models exposing ``receptive_field_rows``, e.g. pixelcnn):
  the logits of row r depend on rows r - R .. r only, R the receptive field
  height, so each step runs the network on a window of R + 1 rows. The window
  starts at max(0, r - R) (clipped so it fits), which keeps the zero padding
  seen by row r identical to the full image's.
* ``fast``, incremental (gated_pixelcnn): every layer is computed one row
  (vertical stack) or one pixel (horizontal stack) at a time, caching the
  activations already computed, so that a whole image costs about one
  forward pass of the network instead of H*W*C. See ``_gated_incremental``.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dgm_jax import models
from dgm_jax.models.conditioning import model_condition
from dgm_jax.models.gated_pixelcnn import GatedPixelCNN, gate

METHODS = ("auto", "naive", "fast")
AXIS = "samples"


# ----------------------------------------------------------------------------- public API

def fast_method_name(model) -> str | None:
    """'incremental' (gated_pixelcnn), 'window' (a receptive field shorter than the image) or None."""
    if isinstance(model, GatedPixelCNN):
        return "incremental"
    rows = getattr(model, "receptive_field_rows", None)
    if rows is not None and rows + 1 < model.image_shape[0]:
        return "window"
    return None


def has_fast_method(model) -> bool:
    """Whether method='fast' is available (and is what 'auto' picks)."""
    return fast_method_name(model) is not None


def resolve_method(model, method: str) -> str:
    """auto | naive | fast -> the algorithm run: 'naive', 'window' or 'incremental'."""
    if method not in METHODS:
        raise ValueError(f"Unknown sampling method {method!r}. Valid names: {', '.join(METHODS)}.")
    fast = fast_method_name(model)
    if method == "fast" and fast is None:
        raise ValueError(f"model {type(model).__name__} has no fast sampling method; use method='naive'")
    if method == "naive" or fast is None:
        return "naive"
    return fast


def sample(model, params, rng, num_samples: int, y=None, *, temperature: float = 1.0,
           method: str = "auto", devices=None) -> jax.Array:
    """Draws `num_samples` binary images [N, H, W, C] (float32 0/1) from p(x | y).

    y: None, int labels [N] or condition vectors [N, D]. method: auto | naive | fast.
    devices: where to split the samples (default: all local devices); the
    samples do not depend on it.
    """
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    x0 = np.zeros((int(num_samples),) + tuple(model.image_shape), np.float32)
    return _draw(model, params, rng, x0, 0, y, temperature, method, devices)


def complete(model, params, rng, x, num_given_rows: int, y=None, *, temperature: float = 1.0,
             method: str = "auto", devices=None) -> jax.Array:
    """Completes images: rows < num_given_rows of x [B, H, W, C] (binary) are kept exactly,
    the other rows are drawn from p(x_rest | x_given, y). Returns [B, H, W, C] float32 0/1.

    For several completions of one image, repeat it (np.repeat(x, k, axis=0)): each
    copy is a different sample s and gets its own draws.
    """
    from dgm_jax.likelihood import check_binary

    x = np.asarray(x, np.float32)
    h = model.image_shape[0]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"x must be shaped [B, {', '.join(map(str, model.image_shape))}], got {x.shape}")
    if not 0 <= int(num_given_rows) <= h:
        raise ValueError(f"num_given_rows must be in [0, {h}], got {num_given_rows}")
    check_binary(x, "complete: x")
    x0 = x.copy()
    x0[:, int(num_given_rows):] = 0.0
    return _draw(model, params, rng, x0, int(num_given_rows), y, temperature, method, devices)


# ----------------------------------------------------------------------------- host side: split over devices

def _draw(model, params, rng, x0: np.ndarray, start_row: int, y, temperature, method, devices) -> jax.Array:
    fn, args, n = prepare(model, params, rng, x0, start_row, y, temperature, method, devices)
    out = fn(*args)
    return out[:n] if out.shape[0] > n else out


def prepare(model, params, rng, x0: np.ndarray, start_row: int, y, temperature, method, devices=None):
    """The compiled sampler and its device-placed arguments: (fn, args, n); fn(*args)[:n] are the samples.

    Exposed so that benchmarks can compile ahead of time (fn.lower(*args).compile()).
    """
    algorithm = resolve_method(model, method)
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = x0.shape[0]
    cond = model_condition(model, y)
    if cond is not None and cond.shape[0] != n:
        raise ValueError(f"y has {cond.shape[0]} rows for {n} samples")
    cond = np.zeros((n, 0), np.float32) if cond is None else np.asarray(cond, np.float32)
    devices = tuple(devices or jax.local_devices())
    # Pad to a multiple of the device count; the extra samples (ids >= n) are dropped.
    n_pad = -(-n // len(devices)) * len(devices)
    pad = lambda a: np.concatenate([a, np.zeros((n_pad - n,) + a.shape[1:], a.dtype)]) if n_pad > n else a
    fn, mesh = _compiled_sampler(model, algorithm, start_row, devices)
    rep, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS))
    args = (jax.device_put(params, rep), jax.device_put(rng, rep),
            jax.device_put(np.arange(n_pad, dtype=np.int32), split), jax.device_put(pad(cond), split),
            jax.device_put(pad(x0), split), jax.device_put(np.float32(temperature), rep))
    return fn, args, n


@functools.lru_cache(maxsize=32)
def _compiled_sampler(model, algorithm: str, start_row: int, devices: tuple):
    """jit(shard_map(per-device sampler)): params, key, temperature replicated; samples split."""
    mesh = Mesh(np.array(devices), (AXIS,))
    body = functools.partial(_draw_shard, model=model, algorithm=algorithm, start_row=start_row)
    mapped = jax.shard_map(body, mesh=mesh, in_specs=(P(), P(), P(AXIS), P(AXIS), P(AXIS), P()),
                           out_specs=P(AXIS), check_vma=False)
    return jax.jit(mapped), mesh


# ----------------------------------------------------------------------------- per device

def _draw_shard(params, rng, sample_ids, cond, x0, temperature, *, model, algorithm, start_row):
    """This device's samples: ids [n], cond [n, D], x0 [n, H, W, C] -> [n, H, W, C]."""
    h, w, c = model.image_shape
    key_mask, key_pix = jax.random.split(rng)
    u = jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(key_pix, s), (h * w * c,)))(sample_ids)
    cond = cond if getattr(model, "conditional", False) else None
    k = models.num_eval_masks(model)
    # Sampling from the equal mixture of K masks: pick a mask per sample, then
    # sample exactly from that mask's autoregressive distribution.
    mask_idx = jax.vmap(lambda s: jax.random.randint(jax.random.fold_in(key_mask, s), (), 0, k))(sample_ids) \
        if k > 1 else None
    if algorithm == "incremental":
        return _gated_incremental(model, params, x0, cond, u, temperature, start_row)
    window = model.receptive_field_rows + 1 if algorithm == "window" else h
    return _window_loop(model, params, x0, cond, u, temperature, mask_idx, start_row, window)


def _draw_bits(u_i, logit, temperature):
    return (u_i < jax.nn.sigmoid(logit / temperature)).astype(jnp.float32)


def _apply(model, params, x, cond, mask_idx):
    """Logits [N, h, W, C]; with a mask ensemble each sample uses its own mask."""
    if mask_idx is None:
        return model.apply({"params": params}, x, cond)
    one = lambda xi, ci, mi: model.apply({"params": params}, xi[None], None if ci is None else ci[None],
                                         mask_index=mi)[0]
    return jax.vmap(one)(x, cond, mask_idx)


def _window_loop(model, params, x0, cond, u, temperature, mask_idx, start_row, window):
    """naive (window = H) and window methods: the network on `window` rows per dimension."""
    h, w, c = model.image_shape

    def body(i, x):
        r, col, ch = i // (w * c), (i // c) % w, i % c
        start = jnp.clip(r - (window - 1), 0, h - window)
        view = jax.lax.dynamic_slice_in_dim(x, start, window, axis=1)
        logit = _apply(model, params, view, cond, mask_idx)[:, r - start, col, ch]
        return x.at[:, r, col, ch].set(_draw_bits(u[:, i], logit, temperature))

    return jax.lax.fori_loop(start_row * w * c, h * w * c, body, x0)


# ----------------------------------------------------------------------------- gated PixelCNN, incremental
#
# The gated PixelCNN's vertical convolutions read rows r - p .. r of the layer
# below and its horizontal ones columns c - p .. c of the same row (p = k//2),
# so (see dgm_jax/models/gated_pixelcnn.py):
#   * at the start of row r, once row r - 1 of x is final, row r - 1 of every
#     vertical layer is computed from the cached rows above of the layer below:
#     the gated v_l feed the next layer (cached, [N, H, W, F]) and the
#     pre-activations v~_l[r - 1] give row r's link term Link_l(down(v~_l)),
#     a per-row bias of the horizontal stack;
#   * at pixel (r, c) every horizontal layer is computed at column c only, from
#     the cached columns c - p .. c of the layer below in the current row. These
#     features read x[r, <c] only (mask A in layer 0), so they are final when
#     computed and later columns reuse them.
# Each step evaluates a conv on a p + 1 wide slice and keeps its last position,
# with the slice clipped at the image border exactly like the window method,
# so every value equals the full network's. A whole image costs about one
# forward pass (times p + 1 for the convs) instead of H*W*C.

def _causal_at(conv, inp, pos, p: int, axis: int):
    """conv (reading positions pos - p .. pos along `axis`, zero-padded before 0) at `pos` only."""
    size = inp.shape[axis]
    win = min(p + 1, size)
    start = jnp.clip(pos - p, 0, size - win)
    out = conv(jax.lax.dynamic_slice_in_dim(inp, start, win, axis=axis))
    return jax.lax.dynamic_slice_in_dim(out, pos - start, 1, axis=axis)


def _half_kernel(m, layer: int) -> int:
    return (m.first_kernel_size if layer == 0 else m.kernel_size) // 2


def _gated_vertical_row(m, x, vin, row, cond):
    """Row `row` of every vertical layer, from x and the cached gated rows <= row.

    x [N, H, W, C]; vin: L buffers [N, H, W, F] holding v_0 .. v_{L-1}.
    Returns (vin with row `row` written, the L+1 pre-activations v~_l[row] [N, 1, W, 2F]).
    """
    c = m.image_shape[-1]
    inp = 2.0 * x.astype(m.dtype) - 1.0
    vin, pres = list(vin), []
    for l in range(m.num_layers + 1):
        pre = _causal_at(m.v_convs[l], inp, row, _half_kernel(m, l), axis=1)
        if cond is not None:
            pre = pre + m.v_conds[l](cond)[:, None, None, :]
        pres.append(pre)
        if l < m.num_layers:
            vin[l] = jax.lax.dynamic_update_slice_in_dim(vin[l], gate(pre, c).astype(vin[l].dtype), row, axis=1)
            inp = vin[l]
    return tuple(vin), tuple(pres)


def _gated_links(m, pres_above):
    """Link_l(v~_l of the row above) [N, 1, W, 2F] for every layer."""
    return tuple(m.links[l](p.astype(m.dtype)) for l, p in enumerate(pres_above))


def _gated_pixel(m, x_row, hin, links, col, cond):
    """Logits [N, C] at column `col` of the current row x_row [N, 1, W, C].

    hin: L buffers [N, 1, W, F] holding h_0 .. h_{L-1} of this row (final left of col);
    returned with column `col` written.
    """
    c = m.image_shape[-1]
    h = 2.0 * x_row.astype(m.dtype) - 1.0
    hin, skip = list(hin), 0.0
    for l in range(m.num_layers + 1):
        pre = _causal_at(m.h_convs[l], h, col, _half_kernel(m, l), axis=2) + \
            jax.lax.dynamic_slice_in_dim(links[l], col, 1, axis=2)
        if cond is not None:
            pre = pre + m.h_conds[l](cond)[:, None, None, :]
        g = gate(pre, c)
        skip = skip + m.skips[l](g)
        if l < m.num_layers:
            # No residual around layer 0 (h_0 must not contain x itself).
            new = m.residuals[l](g) if l == 0 else jax.lax.dynamic_slice_in_dim(h, col, 1, axis=2) + m.residuals[l](g)
            hin[l] = jax.lax.dynamic_update_slice_in_dim(hin[l], new.astype(hin[l].dtype), col, axis=2)
            h = hin[l]
    out = m.head_hidden(nn.relu(skip))
    return m.head_logits(nn.relu(out)).astype(jnp.float32)[:, 0, 0], tuple(hin)


def _gated_incremental(model, params, x0, cond, u, temperature, start_row):
    h, w, c = model.image_shape
    n, feats, num_layers = x0.shape[0], model.num_features, model.num_layers
    apply = lambda fn, *args: model.apply({"params": params}, *args, method=fn)
    if start_row > 0:      # given rows: their vertical features in one pass
        vin = tuple(gate(p, c) for p in apply(GatedPixelCNN.vertical_stack, x0, cond)[:num_layers])
    else:
        vin = tuple(jnp.zeros((n, h, w, feats), model.dtype) for _ in range(num_layers))

    def row_body(r, carry):
        x, vin = carry
        vin, pres = apply(_gated_vertical_row, x, vin, jnp.maximum(r - 1, 0), cond)
        # Row 0 reads zeros from above (down_shift); the row-0 values just written
        # into vin are recomputed at r = 1 from the sampled row.
        links = apply(_gated_links, tuple(jnp.where(r > 0, p, jnp.zeros_like(p)) for p in pres))

        def pixel_body(j, carry):
            x, hin = carry
            col, ch = j // c, j % c
            logits, hin = apply(_gated_pixel, jax.lax.dynamic_slice_in_dim(x, r, 1, axis=1), hin, links, col, cond)
            i = r * (w * c) + j
            bit = _draw_bits(u[:, i], jnp.take(logits, ch, axis=1), temperature)
            return x.at[:, r, col, ch].set(bit), hin

        hin = tuple(jnp.zeros((n, 1, w, feats), model.dtype) for _ in range(num_layers))
        x, _ = jax.lax.fori_loop(0, w * c, pixel_body, (x, hin))
        return x, vin

    x, _ = jax.lax.fori_loop(start_row, h, row_body, (x0, vin))
    return x
