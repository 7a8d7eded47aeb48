"""Lightning callbacks: initial bias at step 0, per-epoch and log-spaced statistics."""

from igb.callbacks.bias_stats import BiasStatsCallback, flatten_stats
from igb.callbacks.schedule import log_spaced_steps

__all__ = ["BiasStatsCallback", "flatten_stats", "log_spaced_steps"]
