"""Data parallelism: 2 devices (pmap or shard_map) give the update of 1 device on the same global batch."""
import json


SCRIPT = r"""
import json, jax, jax.numpy as jnp, numpy as np
from dgm_jax import models, optim, parallel, train_state
from dgm_jax.config_schema import OptimConfig, model_config

assert jax.local_device_count() == 2, jax.devices()
model = models.build_model(model_config("pixelcnn", num_features=8, num_layers=2, first_kernel_size=3,
                                        conditional=True), (6, 6, 1), num_classes=3)
ocfg = OptimConfig(name="adam", learning_rate=1e-2, warmup_steps=0, ema_decay=0.9, grad_clip_norm=1.0)
tx, sched = optim.make_optimizer(ocfg, 10), optim.make_schedule(ocfg, 10)
rng = np.random.default_rng(0)
x = (rng.random((2, 8, 6, 6, 1)) < 0.4).astype(np.float32)     # k=2 steps, global batch 8
y = rng.integers(0, 3, size=(2, 8)).astype(np.int32)
params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 6, 6, 1)), jnp.zeros((1, 3)))["params"]
state0 = jax.device_get(train_state.create(params, tx, jax.random.key(1)))

out = {}
for name, par, devs in [("pmap2", "pmap", jax.devices()), ("pmap1", "pmap", jax.devices()[:1]),
                        ("shard2", "shard_map", jax.devices())]:
    r = parallel.make_runner(par, model=model, tx=tx, schedule=sched, ema_decay=0.9, penalty_fn=None,
                             num_dims=36, devices=devs)
    s, m = r.train(r.put_state(state0), r.put_batch({"x": x, "y": y}, batch_axis=1))
    h = r.get_state(s)
    ev = r.eval(r.params_for_eval(s, True), r.put_batch({"x": x[0], "y": y[0]}))
    out[name] = {"leaves": [np.asarray(l).ravel().tolist() for l in jax.tree.leaves((h.params, h.ema_params))],
                 "loss": r.host_metrics(m)["loss"], "step": int(h.step), "eval": np.asarray(ev).tolist()}
out["init"] = [np.asarray(l).ravel().tolist() for l in jax.tree.leaves(state0.params)]
print("JSON" + json.dumps(out))
"""


def test_pmap_and_shard_map_match_single_device(fresh_python):
    out = json.loads(fresh_python.code(SCRIPT, devices=2).split("JSON", 1)[1])
    ref = out["pmap1"]
    assert ref["step"] == 2
    for name in ("pmap2", "shard2"):
        got = out[name]
        assert got["step"] == 2
        assert abs(got["loss"] - ref["loss"]) < 1e-5, name
        for a, b in zip(got["leaves"], ref["leaves"]):
            assert max(abs(u - v) for u, v in zip(a, b)) < 1e-5, name
        assert max(abs(u - v) for u, v in zip(got["eval"], ref["eval"])) < 1e-4, name
    # The two steps moved the parameters, so agreeing is not vacuous.
    moved = max(max(abs(u - v) for u, v in zip(a, b)) for a, b in zip(ref["leaves"], out["init"]))
    assert moved > 1e-3
