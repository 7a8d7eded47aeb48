"""Loggers: W&B mode, logger factories, metrics.csv with one row per step.

May import only ``igb.errors`` and ``igb.compat``.
"""
