"""Sample grids and completions from a saved run, as PNGs.

    python experiments/sample_checkpoint.py --workdir=runs/quickstart [--checkpoint=best|latest|STEP] \
        [--num_samples=64] [--seed=0] [--temperature=1.0] [--method=auto|naive|fast] [--output_dir=DIR]

Writes into --output_dir (default WORKDIR/samples_step<step>/):
  samples.png           unconditional model: --num_samples samples, --ncols per row
  samples_by_class.png  class-conditional model: one row per class, num_samples // num_classes each
                        (a model conditioned on vectors draws with the test set's own vectors)
  completions.png       --num_images test images, one per row: the original, the given top rows
                        (the rest grey), then --num_completions samples of the remaining rows
                        (conditional models: given the image's true label)
A workdir without checkpoints, or one whose checkpoint does not fit the model,
is refused with a message and exit code 1.
"""
import sys
from pathlib import Path

from absl import app, flags, logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for dgm_jax

flags.DEFINE_string("workdir", None, "The run's directory (as given to launch.py).", required=True)
flags.DEFINE_string("checkpoint", "best", "best (best validation NLL) | latest | a step number.")
flags.DEFINE_integer("num_samples", 64, "Samples in the grid (class-conditional: spread over the classes).")
flags.DEFINE_integer("ncols", 8, "Images per row of the unconditional grid.")
flags.DEFINE_integer("seed", 0, "Seed of the samples and of the choice of test images to complete.")
flags.DEFINE_float("temperature", 1.0, "Divides the logits (< 1: sharper, > 1: noisier).")
flags.DEFINE_enum("method", "auto", ["auto", "naive", "fast"], "Sampler (see dgm_jax.sampling).")
flags.DEFINE_string("output_dir", None, "Directory for the PNGs (default: WORKDIR/samples_step<step>).")
flags.DEFINE_list("outputs", ["samples", "completions"], "What to draw: samples, completions.")
flags.DEFINE_integer("num_images", 8, "Test images to complete.")
flags.DEFINE_integer("num_completions", 6, "Completions per test image.")
flags.DEFINE_integer("num_given_rows", -1, "Rows given to the completions (default: the top half).")
FLAGS = flags.FLAGS


def fail(message: str) -> None:
    print(f"sample_checkpoint: error: {message}", file=sys.stderr)
    sys.exit(1)


def sample_grid(run, rng, test_labels, out_dir: Path, sample_kw: dict) -> Path:
    """samples.png, or samples_by_class.png (one row per class) for a class-conditional model."""
    import numpy as np

    import dgm_jax
    from dgm_jax import plots

    n = FLAGS.num_samples
    y, ncols, name = None, FLAGS.ncols, "samples.png"
    if run.config.model.conditional and test_labels.ndim == 1:
        per_class = max(1, n // run.num_classes)
        y = np.repeat(np.arange(run.num_classes, dtype=np.int32), per_class)
        ncols, name = per_class, "samples_by_class.png"
    elif run.config.model.conditional:
        n = min(n, len(test_labels))
        y = test_labels[:n]
    x = dgm_jax.sample(run.model, run.params, rng, len(y) if y is not None else n, y=y, **sample_kw)
    plots.image_grid(np.asarray(x), out_dir / name, ncols=ncols)
    return out_dir / name


def completion_grid(run, rng, test_images, test_labels, out_dir: Path, sample_kw: dict) -> Path:
    """completions.png: per row the original, the given rows (rest grey) and the completions."""
    import numpy as np

    from dgm_jax import api, plots

    h = run.image_shape[0]
    given = h // 2 if FLAGS.num_given_rows < 0 else FLAGS.num_given_rows
    if not 0 <= given <= h:
        raise ValueError(f"--num_given_rows={given} must be in [0, {h}]")
    k = FLAGS.num_completions
    pick = np.random.default_rng(FLAGS.seed).choice(len(test_images), min(FLAGS.num_images, len(test_images)),
                                                    replace=False)
    originals = np.asarray(test_images[pick], np.float32)
    y = None if test_labels is None or not run.config.model.conditional else np.repeat(test_labels[pick], k, axis=0)
    done = np.asarray(api.complete(run.model, run.params, rng, np.repeat(originals, k, axis=0), given, y=y,
                                   **sample_kw)).reshape((len(pick), k) + run.image_shape)
    shown = originals.copy()
    shown[:, given:] = 0.5                      # grey: what the model has to fill in
    rows = np.concatenate([originals[:, None], shown[:, None], done], axis=1)
    path = out_dir / "completions.png"
    plots.image_grid(rows.reshape((-1,) + run.image_shape), path, ncols=k + 2)
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)      # orbax reports every restore at INFO
    import jax

    import dgm_jax
    from dgm_jax import checkpointing, data, rundir

    unknown = set(FLAGS.outputs) - {"samples", "completions"}
    if unknown:
        fail(f"--outputs: unknown {sorted(unknown)}; valid: samples, completions")
    try:
        run = dgm_jax.load(FLAGS.workdir, FLAGS.checkpoint)
        ds = data.load_dataset(run.config.data, seed=run.config.seed)
        # The test images and labels fed to the model must be of the run's layout (image shape, levels,
        # classes, condition width), as recorded in run_info.json.
        try:
            rundir.check_run_identity(run.workdir, rundir.run_info(run.config, ds, run.likelihood))
        except checkpointing.CheckpointError as e:
            raise checkpointing.CheckpointError(f"the data set {ds.name!r} no longer matches the run: {e}") from None
        out_dir = Path(FLAGS.output_dir) if FLAGS.output_dir else run.workdir / f"samples_step{run.step}"
        out_dir.mkdir(parents=True, exist_ok=True)
        sample_kw = {"temperature": FLAGS.temperature, "method": FLAGS.method}
        rng = jax.random.key(FLAGS.seed)
        test_labels = ds.labels.get("test")
        written = []
        if "samples" in FLAGS.outputs:
            written.append(sample_grid(run, jax.random.fold_in(rng, 0), test_labels, out_dir, sample_kw))
        if "completions" in FLAGS.outputs:
            written.append(completion_grid(run, jax.random.fold_in(rng, 1), ds.eval_images("test"), test_labels,
                                           out_dir, sample_kw))
    except (checkpointing.CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    print(f"{run.config.model.name} step {run.step} ({FLAGS.checkpoint}): wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)
