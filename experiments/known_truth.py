"""Maximum likelihood when the truth is known: the seed's three examples, reproduced.

    python experiments/known_truth.py --output_dir=runs/known_truth [--smoke] [--parts=coin,estimator,capacity]

Writes PNG plots and summary.md into --output_dir:

  coin.png       (a) the coin H,H,H,T,H,T,H,H: the log-likelihood curve and its
                 closed-form maximum theta* = 6/8 = 3/4, against gradient ascent
                 (all 8 flips a step), stochastic gradient (one flip a step,
                 Robbins-Monro step sizes) and mini-batch gradient (4 flips).
  estimator.png  (b) l_hat = (1/n) sum_i log p_theta(x_i) over many resampled data
                 sets of n = 10 ... 10,000 images of a synthetic p_data, p_theta the
                 independent-pixel model with p_data's exact marginals: its mean
                 against the exact l = E_p[log p_theta], its variance against
                 Var_p[log p_theta] / n.
  capacity.png   (c) bias and variance with the truth known: bernoulli < fvsbn <
                 MADEs of growing width, trained by dgm_jax.train_and_evaluate on
                 n = 100 ... 10,000 samples of the 4x4 mixture teacher; the exact
                 KL(p_data || p_theta) of the best-validation parameters on the y-axis.

--smoke shrinks (b) and (c) to a few minutes on a 2-core CPU. The training runs
live in --output_dir/runs/<model>_n<n>[_smoke]; running the command again
resumes them (a finished run is only re-scored).
"""
import json
import math
import sys
import time
from pathlib import Path

from absl import app, flags, logging

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # for dgm_jax and experiments.configs
    sys.path.insert(0, str(REPO))

flags.DEFINE_string("output_dir", None, "Directory for the plots, summary.md and the training runs.", required=True)
flags.DEFINE_bool("smoke", False, "Small version: a few minutes on a 2-core CPU.")
flags.DEFINE_list("parts", ["coin", "estimator", "capacity"], "Which examples to run.")
FLAGS = flags.FLAGS

COIN = (1, 1, 1, 0, 1, 0, 1, 1)          # H,H,H,T,H,T,H,H with H = 1
SIZES = (10, 100, 1_000, 10_000)         # (b): data set sizes n


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# ---------------------------------------------------------------- (a) the coin

def coin(out: Path, smoke: bool) -> str:
    """Closed form against three gradient methods on the mean log-likelihood of theta = P(heads)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    flips = np.array(COIN, np.float32)
    theta_star = flips.mean()                                   # d/dtheta = 0  <=>  theta = #H / n = 3/4

    def mean_log_lik(theta, x):                                 # (1/n) sum x log theta + (1 - x) log(1 - theta)
        return jnp.mean(x * jnp.log(theta) + (1 - x) * jnp.log1p(-theta))

    grad = jax.jit(jax.grad(mean_log_lik))
    rng = np.random.default_rng(0)
    steps, theta0 = 300, 0.3
    paths = {}
    for name, batch, lr in (("gradient ascent (all 8)", 8, 0.05), ("stochastic gradient (1)", 1, 0.05),
                            ("mini-batch gradient (4)", 4, 0.05)):
        theta, path = theta0, [theta0]
        for t in range(steps):
            x = flips if batch == 8 else flips[rng.choice(8, batch, replace=False)]
            step = lr if batch == 8 else lr / (1 + t / 50)     # Robbins-Monro decay for the noisy ones
            theta = float(np.clip(theta + step * float(grad(jnp.float32(theta), x)), 1e-3, 1 - 1e-3))
            path.append(theta)
        paths[name] = np.array(path)

    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(0.01, 0.99, 300)
    ax1.plot(grid, [float(mean_log_lik(g, flips)) * 8 for g in grid])
    ax1.axvline(theta_star, ls="--", c="k", label="θ* = 3/4")
    ax1.set(xlabel="θ = P(heads)", ylabel="log-likelihood of H,H,H,T,H,T,H,H", ylim=(-12, -3))
    ax1.legend()
    for name, path in paths.items():
        ax2.plot(path, label=name)
    ax2.axhline(theta_star, ls="--", c="k")
    ax2.set(xlabel="step", ylabel="θ", title=f"from θ0 = {theta0}")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "coin.png", dpi=110)
    plt.close(fig)

    rows = ["| method | θ after 300 steps | mean of the last 100 | ℓ(θ) - ℓ(θ*) |", "|---|---|---|---|"]
    for name, path in paths.items():
        gap = 8 * (float(mean_log_lik(path[-1], flips)) - float(mean_log_lik(theta_star, flips)))
        rows.append(f"| {name} | {path[-1]:.4f} | {path[-100:].mean():.4f} | {gap:.2e} |")
    return ("## (a) The coin\n\nH,H,H,T,H,T,H,H: ℓ(θ) = 6 log θ + 2 log(1 − θ), maximal at θ* = 6/8 = "
            f"**{theta_star:.2f}** (closed form). Step size 0.05 on the mean log-likelihood; the stochastic "
            "methods use 0.05 / (1 + t/50).\n\n" + "\n".join(rows) + "\n\n![coin](coin.png)\n")


# ---------------------------------------------------------------- (b) the estimator

def estimator(out: Path, smoke: bool) -> str:
    """l_hat over resampled data sets: unbiased for l, variance Var_p[log q] / n."""
    import numpy as np

    from dgm_jax import divergences
    from dgm_jax.data import synthetic

    truth = synthetic.known_distribution("mixture", 4, 0)
    states = truth.images.reshape(len(truth.images), -1).astype(np.float64)
    marg = np.exp(truth.log_probs) @ states                      # exact marginals of p_data
    log_q = states @ np.log(marg) + (1 - states) @ np.log1p(-marg)   # independent-pixel model p_theta
    l_true, var1 = divergences.mean_and_variance(truth.log_probs, log_q)
    trials = 300 if smoke else 2000
    rng = np.random.default_rng(0)
    draws = {n: divergences.resampled_means(truth.log_probs, log_q, n, trials, rng) for n in SIZES}

    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for i, n in enumerate(SIZES):
        ax1.scatter(np.full(trials, i) + rng.uniform(-0.2, 0.2, trials), draws[n], s=2, alpha=0.3)
        ax1.errorbar(i, draws[n].mean(), yerr=draws[n].std(), fmt="ko", capsize=4)
    ax1.axhline(l_true, ls="--", c="k", label=f"l = E_p[log p_θ] = {l_true:.3f}")
    ax1.set(xticks=range(len(SIZES)), xticklabels=[f"n={n:,}" for n in SIZES], ylabel="l̂ (nats)",
            title=f"{trials} resampled data sets per n")
    ax1.legend()
    sizes = np.array(SIZES, float)
    ax2.loglog(sizes, [draws[n].var(ddof=1) for n in SIZES], "o", label="variance of l̂ over the resamples")
    ax2.loglog(sizes, var1 / sizes, "k--", label="Var_p[log p_θ] / n")
    ax2.set(xlabel="n", ylabel="Var[l̂]")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "estimator.png", dpi=110)
    plt.close(fig)

    rows = ["| n | mean of l̂ | mean − l | (its stderr) | Var[l̂] | Var_p/n | ratio |", "|---" * 7 + "|"]
    for n in SIZES:
        d = draws[n]
        rows.append(f"| {n:,} | {d.mean():.4f} | {d.mean() - l_true:+.4f} | {math.sqrt(var1 / n / trials):.4f} | "
                    f"{d.var(ddof=1):.3g} | {var1 / n:.3g} | {d.var(ddof=1) / (var1 / n):.3f} |")
    return ("## (b) The empirical log-likelihood estimator\n\n"
            f"p_data: the 4x4 mixture teacher (seed 0, H = {truth.entropy:.3f} nats); p_θ: independent pixels with "
            f"p_data's exact marginals. Exact l = E_p[log p_θ] = **{l_true:.4f}**, Var_p[log p_θ] = {var1:.3f}. "
            f"{trials} data sets per n: the mean of l̂ is l within its standard error (unbiased) and the variance "
            "follows Var_p/n.\n\n" + "\n".join(rows) + "\n\n![estimator](estimator.png)\n")


# ---------------------------------------------------------------- (c) bias vs variance

def _capacity_grid(smoke: bool):
    """(models {label: model overrides}, data set sizes, num_steps, eval_every)."""
    models = {"bernoulli": {"name": "bernoulli"}, "fvsbn": {"name": "fvsbn"},
              "made-16": {"name": "made", "num_hidden": 16, "num_hidden_layers": 1},
              "made-64": {"name": "made", "num_hidden": 64, "num_hidden_layers": 1},
              "made-256x2": {"name": "made", "num_hidden": 256, "num_hidden_layers": 2}}
    # Validation every 100 steps in both: at n = 100 a large MADE overfits within a few hundred steps,
    # and early stopping can only pick among the evaluated steps.
    if smoke:
        del models["made-64"]
        return models, (100, 1_000, 10_000), 1000, 100
    return models, (100, 300, 1_000, 3_000, 10_000), 3000, 100


def _train_one(label: str, overrides: dict, n: int, num_steps: int, eval_every: int, workdir: Path) -> dict:
    """Trains one (model, n) by dgm_jax.train_and_evaluate; the exact metrics of its test record."""
    import dgm_jax
    from dgm_jax.metric_writers import read_metrics
    from experiments.configs import base, synthetic as synthetic_config

    config = synthetic_config.get_config()
    config.data.synthetic_num_eval = 2_000       # validation selects the step, test is reported
    config.data.train_subset = n                 # nested subsets of the same 10,000 samples
    base.with_model(config, overrides["name"], **{k: v for k, v in overrides.items() if k != "name"})
    config.optim.learning_rate = 1e-2 if overrides["name"] in ("bernoulli", "fvsbn") else 2e-3
    # Small sets are data-bound (grain's shuffle costs ~0.3 ms an image at n = 100): halve the batch there.
    config.train.batch_size = 100 if n >= 200 else max(10, n // 2)
    config.train.eval_batch_size = 2048
    config.train.num_steps = num_steps
    config.train.eval_every = config.train.checkpoint_every = eval_every
    config.train.log_every = eval_every
    config.train.early_stopping_patience = 5
    config.train.num_samples = 16
    config.train.progress_bar = False
    t0 = time.time()
    results = dgm_jax.train_and_evaluate(config, workdir)
    test = [r for r in read_metrics(workdir / "metrics.jsonl") if r["split"] == "test"][-1]
    return {"model": label, "n": n, "exact_kl": test["exact_kl"], "nll_minus_entropy": test["nll_minus_entropy"],
            "stderr": test["nll_minus_entropy_stderr"], "best_step": results["best_step"],
            "num_params": results["num_params"], "seconds": time.time() - t0}


def capacity(out: Path, smoke: bool) -> str:
    """Exact KL of models of growing capacity against the training-set size."""
    import numpy as np

    from dgm_jax.data import synthetic

    models, sizes, num_steps, eval_every = _capacity_grid(smoke)
    rows = []
    for label, overrides in models.items():
        for n in sizes:
            wd = out / "runs" / f"{label}_n{n}{'_smoke' if smoke else ''}"
            rows.append(_train_one(label, overrides, n, num_steps, eval_every, wd))
            r = rows[-1]
            print(f"capacity: {label:11s} n={n:6d}  exact KL {r['exact_kl']:.4f}  NLL-H {r['nll_minus_entropy']:.4f} "
                  f"± {r['stderr']:.4f}  ({r['seconds']:.0f} s)", flush=True)
    (out / "capacity.json").write_text(json.dumps(rows, indent=1))

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label in models:
        mine = [r for r in rows if r["model"] == label]
        ax.loglog([r["n"] for r in mine], [r["exact_kl"] for r in mine], "o-",
                  label=f"{label} ({mine[0]['num_params']:,} params)")
    ax.set(xlabel="training images n", ylabel="exact KL(p_data || p_θ) (nats)",
           title="4x4 mixture teacher: best-validation parameters")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "capacity.png", dpi=110)
    plt.close(fig)

    truth = synthetic.known_distribution("mixture", 4, 0)
    table = ["| model | " + " | ".join(f"n={n:,}" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for label in models:
        cells = [r for r in rows if r["model"] == label]
        table.append(f"| {label} | " + " | ".join(
            f"{r['exact_kl']:.3f} ({r['nll_minus_entropy']:+.3f} ± {r['stderr']:.3f})" for r in cells) + " |")
    best = {n: min((r for r in rows if r["n"] == n), key=lambda r: r["exact_kl"])["model"] for n in sizes}
    total = sum(r["seconds"] for r in rows)
    return ("## (c) Bias and variance with the truth known\n\n"
            f"p_data: the 4x4 mixture teacher (seed 0, H = {truth.entropy:.3f} nats of at most 11.09). Each cell: "
            "exact KL of the best-validation parameters (NLL − H on the 2,000 test images ± its standard error); "
            f"{num_steps} steps of Adam at most, validation every {eval_every}, early stopping after 5 without "
            f"improvement.\n\n" + "\n".join(table) + "\n\nLowest exact KL: "
            + ", ".join(f"n={n:,}: {m}" for n, m in best.items())
            + ". A small model is limited by its bias (its KL stops falling with n), a large one by its variance "
            "at small n; for a regular model fitted to convergence the excess over its best KL is about k / (2n) for "
            "k free parameters (bernoulli: 16 / 2n, 0.08 nats at n = 100)."
            + f" Training took {total:.0f} s in all.\n\n![capacity](capacity.png)\n")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    unknown = set(FLAGS.parts) - {"coin", "estimator", "capacity"}
    if unknown:
        raise app.UsageError(f"unknown --parts {sorted(unknown)}; valid: coin, estimator, capacity")
    logging.set_verbosity(logging.WARNING)     # orbax logs every checkpoint at INFO
    out = Path(FLAGS.output_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    import os
    import platform

    import jax
    sections, timings = [], []
    for part in ("coin", "estimator", "capacity"):
        if part in FLAGS.parts:
            t0 = time.time()
            sections.append(globals()[part](out, FLAGS.smoke))
            timings.append(f"{part} {time.time() - t0:.0f} s")
            print(f"{part}: done in {time.time() - t0:.0f} s", flush=True)
    header = ("# Maximum likelihood with a known truth\n\n"
              f"`python experiments/known_truth.py --output_dir={FLAGS.output_dir}{' --smoke' if FLAGS.smoke else ''}` "
              f"on {jax.devices()[0].platform} ({platform.machine()}, {os.cpu_count()} cores); "
              f"wall time: {', '.join(timings)}.\n\n")
    (out / "summary.md").write_text(header + "\n".join(sections))
    print(f"wrote {out / 'summary.md'}")


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)
