"""Turn a multirun folder into the paper's tables and figures."""
