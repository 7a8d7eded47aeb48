"""Shared test helpers: real entry points, fault callbacks, a real SLURM, model configs."""
