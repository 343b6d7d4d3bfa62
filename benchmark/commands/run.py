"""`bench run EXPERIMENT.toml`: the whole benchmark as one resumable plan of jobs.

    bench run experiments/seed-study.toml --dry-run         the jobs, which are cached, GPU need and time
    bench run experiments/seed-study.toml                   run it here (CPU jobs in parallel, one GPU job per GPU)
    bench run experiments/seed-study.toml --executor slurm  submit it to Slurm (submitit), then --status
    bench run experiments/seed-study.toml --retry-failed    run again the jobs that failed last time

Jobs whose result exists are skipped; kill it at any moment and run it again: it finishes the plan without
redoing what was done. A failed job stops only the jobs that need it. File format: docs/run.md.
"""

from __future__ import annotations

import argparse
import os

HELP = "run an experiment file: the whole benchmark as one resumable plan of jobs"


def register(subparsers, common) -> None:
    from benchmark.experiments.schema import EXECUTORS

    parser = subparsers.add_parser("run", parents=[common], help=HELP, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", metavar="EXPERIMENT.toml", help="the experiment file (see experiments/)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (jobs, cached or not, GPU need, GPU time estimate); run nothing")
    parser.add_argument("--status", action="store_true", help="where the experiment's last plan stands; run nothing")
    parser.add_argument("--executor", default="local", choices=EXECUTORS,
                        help="local (default): processes on this machine; slurm: submitit jobs on a Slurm cluster; "
                             "submitit-local: the Slurm path run here by submitit's local executor (for testing)")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="local: CPU jobs at a time (default: the number of cores); GPU jobs: one per visible GPU")
    parser.add_argument("--retry-failed", action="store_true", help="run again the jobs that failed in an earlier run")
    parser.add_argument("--wait", action="store_true", help="slurm: follow the jobs to the end instead of returning")
    parser.add_argument("--no-live", action="store_true", help="one line per job event instead of the live table")
    parser.set_defaults(func=run)


def run(args) -> int:
    from benchmark.core.workdir import Workdir
    from benchmark.experiments.parse import load_experiment
    from benchmark.ui import console

    experiment = load_experiment(args.experiment)
    workdir = Workdir.resolve(args.workdir)
    if args.status:
        from benchmark.experiments.status import show_status

        return show_status(experiment.name, workdir, console)
    return run_loaded(experiment, workdir, args)


def run_loaded(experiment, workdir, args) -> int:
    """Dry-run or run an already loaded experiment (also `bench demo`'s way in)."""
    from benchmark.core.errors import BenchError
    from benchmark.experiments.runner import plan_of, run_experiment
    from benchmark.ui import console

    if args.jobs is not None and args.jobs < 1:
        raise BenchError(f"--jobs {args.jobs}: give at least 1")
    if args.dry_run:
        from benchmark.experiments.dryrun import dry_run

        return dry_run(plan_of(experiment, args.executor), workdir, console)
    return run_experiment(experiment, workdir, executor=args.executor, jobs=args.jobs or os.cpu_count() or 1,
                          retry_failed=args.retry_failed, live=not args.no_live, wait=args.wait, console=console)
