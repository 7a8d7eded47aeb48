"""igb: initial guessing bias under normalization placement."""

__version__ = "0.1.0"
