"""`bench run EXPERIMENT.toml`: the whole benchmark as one resumable plan of jobs, on one machine or on Slurm.

    toml_lines.py  where each key of a TOML file is written (line numbers for errors)
    schema.py      the experiment file's keys, as data, and their checks
    spec.py        an experiment, typed
    parse.py       file -> Experiment; every mistake refused before anything runs, naming key and line
    plan.py        Experiment -> jobs with dependencies (dataset, extract, heads, finetune, leaderboard)
    stages/        per stage: is the result there (same identity as the pipelines'), and make it
    folder.py      experiments/<name>/ in the workdir: plan, versions, job states, logs
    tracker.py     job states during a run: ready, cached, failed, blocked
    worker.py      run one job (subprocess, torchrun or submitit job)
    local.py       --executor local: subprocesses, CPU slots, one GPU job per device
    submit.py      --executor slurm / submitit-local: submitit jobs with Slurm dependencies
    live.py        the live view and the events
    runner.py      drive a plan, then the summary
    dryrun.py      --dry-run;  status.py: --status;  estimate.py: GPU time

See docs/run.md.
"""
