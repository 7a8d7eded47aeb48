"""The class shares of each split, as a run's datamodule built it: ``split_shares.json``.

A split need not be balanced (a random val split of a balanced source, a thinned train
split, a source that is imbalanced itself), so "no class is favoured" means each class
is predicted about as often as it occurs in that split, not ``1/C`` of the time. Every
training run records its splits' label counts once, at setup, so that the analysis can
measure the predicted fractions against them (``multirun_analysis``'s time to
neutrality).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

#: the file in a run's folder
SHARES_FILE = "split_shares.json"


def class_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    """How many labels of each class ``0 .. num_classes-1`` there are."""
    return torch.bincount(labels.reshape(-1).long().cpu(), minlength=num_classes).tolist()


def shares_record(
    counts: Mapping[str, Sequence[int]], class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """``{"num_classes", "class_names", "splits": {split: {"size", "counts", "shares"}}}``;
    an empty split has ``shares`` null (nothing to compare with)."""
    splits: dict[str, Any] = {}
    for split, c in counts.items():
        c = [int(v) for v in c]
        n = sum(c)
        splits[split] = {"size": n, "counts": c, "shares": [v / n for v in c] if n else None}
    num_classes = len(next(iter(counts.values()), []))
    names = list(class_names or [])
    return {
        "num_classes": num_classes,
        "class_names": names if len(names) == num_classes else None,
        "splits": splits,
    }
