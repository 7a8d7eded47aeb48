"""Predictions to hold measurements against: the Gaussian model of f (:mod:`.gaussian`) and
the infinite-width kernel walk of the MLP (:mod:`.nngp`).

Imports only ``igb.nn``, ``igb.metrics``, ``igb.data`` and ``igb.errors``, never Lightning,
so the theory CLI starts as fast as torch.
"""
