"""Entry point: python launch.py --config=experiments/configs/quickstart.py --workdir=runs/quickstart

Any config field can be overridden on the command line, e.g.
--config.model.num_layers=5 or --config.train.num_steps=2000; the config is
locked, so a misspelled field is an error. --config.model.name=made switches
the file's model: the fields of the file's model that made lacks are dropped,
made's own take their defaults and may be set too (--config.model.num_hidden=
64); see dgm_jax/cli_config.py. Running the same command again resumes from
the latest checkpoint in --workdir.

Multi-process (one command per process, see dgm_jax/distributed.py): under
srun / mpirun / on a Cloud TPU pod slice the processes are detected
(--distributed=auto, or =on to insist); elsewhere pass --coordinator_address,
--num_processes and --process_id. Use --config.train.parallelism=shard_map.

Exit codes: 0 finished; 75 pre-empted (SIGTERM; a checkpoint of the current
step was saved, run the same command again); anything else is an error.
"""
import sys

from absl import app, flags, logging

from dgm_jax import cli_config

flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, plots and results.", required=True)
cli_config.define_config_file("config", None, "Experiment config file (experiments/configs/*.py[:variant]); "
                              "--config.model.name / .likelihood switch its model (dgm_jax/cli_config.py).")
flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"],
                  "Join a multi-process JAX job: auto = when SLURM / Open MPI / a TPU pod shows several "
                  "processes or the three flags below are given; on = always (jax.distributed.initialize()); "
                  "off = never.")
flags.DEFINE_string("coordinator_address", "", "host:port of process 0, for a multi-process job.")
flags.DEFINE_integer("num_processes", 0, "Number of processes of a multi-process job.")
flags.DEFINE_integer("process_id", -1, "This process's index in [0, num_processes).")
FLAGS = flags.FLAGS


def _quiet_libraries(record) -> bool:
    noisy = ("/orbax/", "/grain/", "/tensorflow_datasets/", "/etils/")
    return record.levelno >= 30 or not any(part in record.pathname for part in noisy)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from dgm_jax import distributed  # after flag parsing, so --help stays fast

    # Before anything touches the devices.
    distributed.initialize(FLAGS.distributed, coordinator_address=FLAGS.coordinator_address,
                           num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
    import dgm_jax
    from dgm_jax.train import Preempted

    logging.set_verbosity(logging.INFO)
    # Our own INFO lines (resume, early stopping, results) stay; the libraries'
    # per-save chatter (orbax, grain, tfds) is kept to warnings and above.
    logging.get_absl_handler().addFilter(_quiet_libraries)
    try:
        results = dgm_jax.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except Preempted as e:
        logging.warning("%s", e)
        sys.exit(distributed.PREEMPTED_EXIT_CODE)
    import jax
    if jax.process_index() == 0:
        print(f"test NLL {results['test_nll_nats']:.3f} ± {results['test_nll_stderr']:.3f} nats "
              f"({results['test_bits_per_dim']:.4f} bits/dim); results in {FLAGS.workdir}/results.json")


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    flags.mark_flags_as_required(["config"])
    app.run(main)
