"""Ancestral sampling in raster order, jit-compiled end to end and split over the devices.

x is filled one sub-pixel i = (row, col, channel) at a time from the model's
conditional p(x_i | x_<i, y) at temperature T, by its observation model
(dgm_jax/observations): a Bernoulli draw [u < sigmoid(logit / T)], the
inverse CDF of a softmax, a logistic-mixture draw. Each draw reads only
uniforms u_{s,i} of sample s, drawn from its own key,
u_s = U(fold_in(key_pixels, s)) [H*W*C, U]. Hence two methods that compute
the same outputs give the same samples for the same key, and sample s is the
same whether it is drawn on one device or several: the samples are split over
the local devices (jax.shard_map on a 1-D mesh) and each device folds in the
indices of its own samples. The loop over the sub-pixels is a
``lax.fori_loop`` inside one compiled program.

Completion (``complete``) starts the loop after the given rows, so those
pixels are kept exactly and the rest is drawn from p(x_rest | x_given, y).

A mask ensemble (MADE with num_eval_masks = K > 1, EoNADE's orderings) is the
mixture p(x) = (1/K) sum_k p_k(x): a sample picks a mask, then samples exactly
from that mask's autoregressive model, in that mask's order of the sub-pixels
(``subpixel_order``, dgm_jax/models/base.py; raster for most models). Completion
needs the given rows to be a prefix of every mask's order, so it is refused for
models with random orders. With rows given, the mask is drawn from its
posterior, P(k | x_given) proportional to p_k(x_given | y) (uniform when
nothing is given), so completions follow the mixture's true conditional.

Methods (``method='auto'`` takes ``fast`` when the model has one):
* ``naive``: the whole network on the whole image for every sub-pixel.
* ``fast``: the model's own sampler from its registry entry (the gated
  PixelCNN's incremental sampler, about one forward pass per image; PixelSNAIL's
  cached sampler, which keeps every layer's keys, values and convolution inputs
  of the pixels drawn so far; EoNADE's ordered sampler), or, for a
  model exposing ``receptive_field_rows`` R < H - 1 (the PixelCNN), the window
  method: the outputs of row r depend on rows r - R .. r only, so each step
  runs the network on a window of R + 1 rows starting at max(0, r - R)
  (clipped so it fits, which keeps the zero padding seen by row r identical to
  the full image's).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dgm_jax import input_checks, models
from dgm_jax.models.conditioning import model_condition

METHODS = ("auto", "naive", "fast")
AXIS = "samples"


# ----------------------------------------------------------------------------- public API

def fast_method_name(model) -> str | None:
    """The model's own fast sampler's name (e.g. 'incremental'), 'window', or None if it has none."""
    spec = models.spec_of(model)
    if spec.fast_sampler is not None:
        return spec.fast_sampler_name
    rows = getattr(model, "receptive_field_rows", None)
    if rows is not None and rows + 1 < model.image_shape[0]:
        return "window"
    return None


def has_fast_method(model) -> bool:
    """Whether method='fast' is available (and is what 'auto' picks)."""
    return fast_method_name(model) is not None


def resolve_method(model, method: str) -> str:
    """auto | naive | fast -> the algorithm run: 'naive', 'window' or the model's own (e.g. 'incremental')."""
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
    """Draws `num_samples` images [N, H, W, C] (float32 values level / (K - 1)) from p(x | y).

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
    """Completes images: rows < num_given_rows of x [B, H, W, C] are kept exactly, the other
    rows are drawn from p(x_rest | x_given, y). Returns [B, H, W, C] float32.

    For several completions of one image, repeat it (np.repeat(x, k, axis=0)): each
    copy is a different sample s and gets its own draws.
    """
    x = np.asarray(x, np.float32)
    h = model.image_shape[0]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"x must be shaped [B, {', '.join(map(str, model.image_shape))}], got {x.shape}")
    if not 0 <= int(num_given_rows) <= h:
        raise ValueError(f"num_given_rows must be in [0, {h}], got {num_given_rows}")
    model.obs.check_data(x, "complete: x")
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
    if start_row > 0 and not model.raster_ordered:
        raise ValueError(f"completion needs p(rows >= {start_row} | rows < {start_row}), which "
                         f"{type(model).__name__} has in closed form only for raster-ordered masks; its masks "
                         "follow random orders (MADE ordering='random', EoNADE): sample without given rows")
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = x0.shape[0]
    input_checks.check_condition(model, y, n, "sampling: y", params=params)   # labels in range, width
    cond = model_condition(model, y)
    if cond is not None and cond.shape[0] != n:
        raise ValueError(f"y has {cond.shape[0]} rows for {n} samples")
    cond = np.zeros((n, 0), np.float32) if cond is None else np.asarray(cond, np.float32)
    devices = tuple(devices or jax.local_devices())
    # Pad to a multiple of the device count; the extra samples (ids >= n) are dropped.
    n_pad = -(-n // len(devices)) * len(devices)
    pad = lambda a: np.concatenate([a, np.zeros((n_pad - n,) + a.shape[1:], a.dtype)]) if n_pad > n else a  # noqa: E731
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
    shape = (h * w * c, model.obs.num_uniforms)
    u = jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(key_pix, s), shape))(sample_ids)
    cond = cond if getattr(model, "conditional", False) else None
    mask_idx = None
    if models.num_eval_masks(model) > 1:
        mask_idx = _draw_masks(model, params, x0, cond, start_row, key_mask, sample_ids)
    if algorithm not in ("naive", "window"):
        extra = {} if mask_idx is None else {"mask_idx": mask_idx}     # an ensemble's sampler gets the masks
        return models.spec_of(model).fast_sampler(model, params, x0, cond, u, temperature, start_row, **extra)
    if not model.raster_ordered:
        return _ordered_loop(model, params, x0, cond, u, temperature, mask_idx)
    window = model.receptive_field_rows + 1 if algorithm == "window" else h
    return _window_loop(model, params, x0, cond, u, temperature, mask_idx, start_row, window)


def _draw_masks(model, params, x0, cond, start_row: int, key, sample_ids):
    """A mask per sample, P(k) proportional to p_k(rows < start_row | y) (uniform when none is given).

    p_k of the given rows is the product of mask k's conditionals over them (they
    are a prefix in raster order), read from one pass of mask k over x0.
    """
    k = models.num_eval_masks(model)
    n = x0.shape[0]
    if start_row == 0:
        logits = jnp.zeros((n, k), jnp.float32)
    else:
        def given_log_prob(m):
            out = model.apply({"params": params}, x0, cond, mask_index=m)
            return model.obs.log_prob_per_pixel(out, x0)[:, :start_row].sum(axis=(1, 2))
        logits = jax.lax.map(given_log_prob, jnp.arange(k)).T                       # [n, K]
    gumbel = jax.vmap(lambda s: jax.random.gumbel(jax.random.fold_in(key, s), (k,)))(sample_ids)
    return jnp.argmax(logits + gumbel, axis=-1)                                        # Gumbel-max: exact draw


def _apply(model, params, x, cond, mask_idx):
    """Outputs [N, h, W, C, P]; with a mask ensemble each sample uses its own mask."""
    if mask_idx is None:
        return model.apply({"params": params}, x, cond)
    one = lambda xi, ci, mi: model.apply({"params": params}, xi[None], None if ci is None else ci[None],  # noqa: E731
                                         mask_index=mi)[0]
    return jax.vmap(one)(x, cond, mask_idx)


def _window_loop(model, params, x0, cond, u, temperature, mask_idx, start_row, window):
    """naive (window = H) and window methods: the network on `window` rows per sub-pixel."""
    h, w, c = model.image_shape
    obs = model.obs

    def body(i, x):
        r, col, ch = i // (w * c), (i // c) % w, i % c
        start = jnp.clip(r - (window - 1), 0, h - window)
        view = jax.lax.dynamic_slice_in_dim(x, start, window, axis=1)
        out = _apply(model, params, view, cond, mask_idx)[:, r - start, col]          # [N, C, P]
        u_px = jax.lax.dynamic_slice_in_dim(u, (r * w + col) * c, c, axis=1)        # [N, C, U]
        return x.at[:, r, col, ch].set(obs.sample(out, x[:, r, col, :], ch, u_px, temperature))

    return jax.lax.fori_loop(start_row * w * c, h * w * c, body, x0)


def pixel_orders(model) -> np.ndarray:
    """int32 [K, H*W]: the pixel order of each of the K = num_eval_masks masks, from their sub-pixel
    orders (which must keep a pixel's channels together, in channel order: base.pixel_major_order)."""
    h, w, c = model.image_shape
    orders = np.stack([np.asarray(model.subpixel_order(k)) for k in range(models.num_eval_masks(model))])
    pixels = orders[:, ::c] // c
    if not np.array_equal(orders, (pixels[:, :, None] * c + np.arange(c)).reshape(orders.shape)):
        raise ValueError(f"{type(model).__name__}: a sub-pixel order splits a pixel's channels; the samplers "
                         "need each pixel's channels consecutive, in channel order")
    return pixels.astype(np.int32)


def _ordered_loop(model, params, x0, cond, u, temperature, mask_idx):
    """naive method for a model whose masks are not all raster: sample s fills its sub-pixels in its
    mask's order (pixel pixels[t // C], channel t % C at step t), reading the network's outputs on
    the whole image at every step, and the uniforms u_{s,i} of each sub-pixel i (raster index)."""
    h, w, c = model.image_shape
    n, obs = x0.shape[0], model.obs
    idx = jnp.zeros((n,), jnp.int32) if mask_idx is None else mask_idx
    pixels = jnp.take(jnp.asarray(pixel_orders(model)), idx, axis=0)                  # [n, H*W]
    rows = jnp.arange(n)
    u_pix = u.reshape(n, h * w, c, -1)

    def body(t, x):
        pix, ch = pixels[:, t // c], t % c
        out = _apply(model, params, x, cond, mask_idx).reshape(n, h * w, c, -1)[rows, pix]   # [n, C, P]
        flat = x.reshape(n, h * w, c)
        value = obs.sample(out, flat[rows, pix], ch, u_pix[rows, pix], temperature)
        return flat.at[rows, pix, ch].set(value).reshape(x.shape)

    return jax.lax.fori_loop(0, h * w * c, body, x0)
