"""Lightning callbacks: initial bias at step 0, per-epoch and log-spaced statistics.

Lightning callbacks; may import metrics, nn and the packages below them.
"""

from igb.callbacks.bias_stats import BiasStatsCallback, BiasStatsSpec, flatten_stats
from igb.callbacks.schedule import log_spaced_steps

__all__ = ["BiasStatsCallback", "BiasStatsSpec", "flatten_stats", "log_spaced_steps"]
