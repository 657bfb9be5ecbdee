"""Runs an ablation sweep: python experiments/run_sweep.py --sweep=experiments/sweeps/capacity.py --workdir=runs/capacity

    [--smoke]          the sweep's small variant (minutes on a 2-core CPU)
    [--parallel=N]     train N members at once, in separate processes
    [--only=a,b]       train only these members (the report still lists all)
    [--report_only]    train nothing; rewrite results.csv / results.md / plots

Each member trains in <workdir>/<member> (its own log in train.log). Running
the same command again skips finished members and resumes interrupted ones.
The sweep file format is documented in dgm_jax/sweeps.py.
"""
import sys
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # sweep files import experiments.configs
    sys.path.insert(0, str(REPO))

flags.DEFINE_string("sweep", None, "Sweep file (experiments/sweeps/*.py) defining get_sweep(smoke).", required=True)
flags.DEFINE_string("workdir", None, "Directory of the sweep; member <name> trains in <workdir>/<name>.",
                    required=True)
flags.DEFINE_bool("smoke", False, "Run the sweep's small variant.")
flags.DEFINE_integer("parallel", 1, "Members trained at once (separate processes).")
flags.DEFINE_list("only", [], "Train only these members.")
flags.DEFINE_bool("report_only", False, "Train nothing; rewrite the report from what the workdir holds.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from dgm_jax import sweeps  # after flag parsing, so --help stays fast

    # The console gets one line per member and warnings; each member's full
    # log (INFO, orbax's included) goes to <workdir>/<member>/train.log.
    sweeps.quiet_console()

    if FLAGS.report_only:
        _, members = sweeps.load_sweep(FLAGS.sweep, FLAGS.smoke)
        rows = sweeps.collect_rows(Path(FLAGS.workdir).absolute(), members)
        sweeps.write_report(rows, FLAGS.workdir)
    else:
        from dgm_jax import distributed
        from dgm_jax.train import Preempted
        try:
            rows = sweeps.run_sweep(FLAGS.sweep, FLAGS.workdir, smoke=FLAGS.smoke, parallel=FLAGS.parallel,
                                    only=FLAGS.only)
        except Preempted as e:   # SIGTERM: the member saved a checkpoint; the same command resumes it
            print(f"run_sweep: {e}", file=sys.stderr)
            sys.exit(distributed.PREEMPTED_EXIT_CODE)
    print((Path(FLAGS.workdir) / "results.md").read_text())
    failed = [r["member"] for r in rows if r["status"] != "done" and (not FLAGS.only or r["member"] in FLAGS.only)]
    if failed:
        print(f"Members not finished: {', '.join(failed)} (see <workdir>/<member>/train.log)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)
