"""igb: initial guessing bias under normalization placement."""

__version__ = "0.1.0"

#: the dataset splits, in the order every table and log line names them (one definition:
#: the data modules, the bias callback, ensembles, summaries and the analysis use it)
SPLITS = ("train", "val", "test")
