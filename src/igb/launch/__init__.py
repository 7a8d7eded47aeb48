"""From the command line to jobs: pre-flight, config checks, Hydra's end-of-grid report.

Everything that runs before a job folder exists (compose every job of a grid, check each
value, refuse with one line and exit 2) and after the last job (the multirun report).
It also builds each job's typed specs from its composed configuration (job_spec, train_job,
eval_job, ensemble_job): below it, nothing reads a config object. May import every other
package of igb; nothing imports it but the entry scripts (and the training benchmarks, which
build the default run as ``train.py`` does: ``tests/test_layout.py``).
"""
