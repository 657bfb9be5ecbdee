"""Entry point: python launch.py --config=experiments/configs/quickstart.py --workdir=runs/quickstart

Any config field can be overridden on the command line, e.g.
--config.model.num_layers=5 or --config.train.num_steps=2000; the config is
locked, so a misspelled field is an error. Running the same command again
resumes from the latest checkpoint in --workdir.
"""
from absl import app, flags, logging
from ml_collections import config_flags

flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, plots and results.", required=True)
config_flags.DEFINE_config_file("config", None, "Experiment config file (experiments/configs/*.py[:variant]).",
                                lock_config=True)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import dgm_jax  # after flag parsing, so --help stays fast

    logging.set_verbosity(logging.INFO)
    results = dgm_jax.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(f"test NLL {results['test_nll_nats']:.3f} ± {results['test_nll_stderr']:.3f} nats "
          f"({results['test_bits_per_dim']:.4f} bits/dim); results in {FLAGS.workdir}/results.json")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
