"""Exact NLL of a saved run on a whole split.

    python experiments/evaluate_checkpoint.py --workdir=runs/quickstart --split=test \
        [--checkpoint=best|latest|STEP] [--output=FILE.json]

Loads the run's own config and checkpoint, scores every image of the split
(the same fixed binarization as in training) on all local devices, prints
the result and writes it as JSON (default: WORKDIR/eval_<split>_step<step>.json):
nll_nats (mean -log p(x) per image; for a conditional model -log p(x | true
label)), nll_stderr (sample std / sqrt(n)), bits_per_dim, num_examples, split,
step, checkpoint. A workdir without checkpoints, an unknown split or a
checkpoint that does not fit the model is refused with a message and exit code 1.
"""
import json
import sys
from pathlib import Path

from absl import app, flags, logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for dgm_jax

flags.DEFINE_string("workdir", None, "The run's directory (as given to launch.py).", required=True)
flags.DEFINE_string("split", "test", "train | validation | test.")
flags.DEFINE_string("checkpoint", "best", "best (best validation NLL) | latest | a step number.")
flags.DEFINE_string("output", None, "JSON file for the result (default: in the workdir).")
flags.DEFINE_integer("batch_size", 0, "Images per evaluation batch (default: the run's train.eval_batch_size).")
flags.DEFINE_enum("parallelism", None, ["pmap", "shard_map"], "Default: the run's train.parallelism.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
FLAGS = flags.FLAGS


def fail(message: str) -> None:
    print(f"evaluate_checkpoint: error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)      # orbax reports every restore at INFO
    from dgm_jax import checkpointing, evaluation  # after flag parsing, so --help stays fast

    try:
        result = evaluation.evaluate_checkpoint(FLAGS.workdir, FLAGS.split, FLAGS.checkpoint,
                                                batch_size=FLAGS.batch_size or None,
                                                parallelism=FLAGS.parallelism, progress=FLAGS.progress)
    except (checkpointing.CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    output = Path(FLAGS.output) if FLAGS.output else \
        Path(result["workdir"]) / f"eval_{result['split']}_step{result['step']}.json"
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    except OSError as e:
        fail(f"cannot write {output}: {e}")
    given = " | true label" if result["conditional"] else ""
    print(f"{result['split']} NLL -log p(x{given}) = {result['nll_nats']:.4f} ± {result['nll_stderr']:.4f} nats "
          f"({result['bits_per_dim']:.5f} bits/dim) over {result['num_examples']} images; "
          f"{result['model']} step {result['step']} ({result['checkpoint']}); written to {output}")
    if "marginal_nll_nats" in result:
        print(f"marginal NLL -log sum_y p(y) p(x | y) (p(y): training label frequencies) = "
              f"{result['marginal_nll_nats']:.4f} ± {result['marginal_nll_stderr']:.4f} nats "
              f"({result['marginal_bits_per_dim']:.5f} bits/dim)")


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)
