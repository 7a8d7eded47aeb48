"""From the command line to jobs: pre-flight, config checks, Hydra's end-of-grid report.

Everything that runs before a job folder exists (compose every job of a grid, check each
value, refuse with one line and exit 2) and after the last job (the multirun report).
May import every other package of igb; nothing imports it but the entry scripts.
"""
