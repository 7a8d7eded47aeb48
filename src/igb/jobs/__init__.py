"""The life of one job in its folder, the same for training and ensembles.

Status file, lock, stop signals, the configuration as identity, checkpoint checks, DDP
twins and the end-of-run summary. Imports only ``igb.errors`` and ``igb.compat`` (and
Lightning inside :mod:`igb.jobs.checkpoint`, used by training alone).
"""
