"""igb: initial guessing bias under normalization placement."""

__version__ = "0.1.0"

#: the dataset splits, in the order every table and log line names them (one definition:
#: the data modules, the bias callback, ensembles, summaries and the analysis use it)
SPLITS = ("train", "val", "test")

#: where the normalization sits in a hidden block, in the order tables, figures and the
#: analysis show them (one definition: the norm-act tables, the theory and the analysis)
PLACEMENTS = ("none", "pre", "post")
