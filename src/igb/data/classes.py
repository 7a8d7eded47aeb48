"""Which classes a dataset keeps, merges and thins out: ``dataset.classes``,
``dataset.class_proportions``.

The paper's tasks are built from a source dataset's classes: CIFAR-10 cats vs dogs keeps
two of ten (``classes=[3, 5]``), vehicles vs animals merges eight into two
(``classes=[[0, 1, 8, 9], [3, 4, 5, 7]]``), and an imbalanced task keeps a fraction of
each class of the training split (``class_proportions=[1.0, 0.1]``). These rules live
here so that every datamodule applies them the same way, and bad input is one line
naming the key before anything is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from igb.errors import ConfigError


def _as_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"{key}: {value!r} is not a class id (an integer)")
    return int(value)


@dataclass(frozen=True)
class ClassSelection:
    """Groups of original class ids (group ``k`` becomes class ``k``) and the fraction of
    each resulting class kept in the training split."""

    groups: tuple[tuple[int, ...], ...]
    proportions: tuple[float, ...] | None = None

    @classmethod
    def from_config(
        cls,
        classes: Sequence[Any] | None,
        proportions: Sequence[Any] | None,
        source_classes: int,
    ) -> ClassSelection:
        """Validate ``dataset.classes`` / ``dataset.class_proportions`` against a source
        dataset with ``source_classes`` classes (ids ``0..source_classes-1``)."""
        allowed = f"ids 0..{source_classes - 1}"
        if classes is None:
            groups = tuple((c,) for c in range(source_classes))
        else:
            if isinstance(classes, str | bytes) or not isinstance(classes, Sequence):
                raise ConfigError(
                    "dataset.classes",
                    f"dataset.classes={classes!r} must be a list of class ids or of lists of ids",
                )
            groups = tuple(
                tuple(_as_int(i, "dataset.classes") for i in entry)
                if isinstance(entry, Sequence) and not isinstance(entry, str)
                else (_as_int(entry, "dataset.classes"),)
                for entry in classes
            )
            flat = [i for g in groups for i in g]
            bad = [i for i in flat if not 0 <= i < source_classes]
            if bad:
                raise ConfigError(
                    "dataset.classes",
                    f"dataset.classes: class id {bad[0]} does not exist; allowed: {allowed}",
                )
            twice = sorted({i for i in flat if flat.count(i) > 1})
            if twice:
                raise ConfigError(
                    "dataset.classes",
                    f"dataset.classes: class id {twice[0]} is listed twice; "
                    "each original class may go to one resulting class only",
                )
            if any(len(g) == 0 for g in groups):
                raise ConfigError("dataset.classes", "dataset.classes: an inner list is empty")
            if len(groups) < 2:
                raise ConfigError(
                    "dataset.classes",
                    f"dataset.classes={list(map(list, groups))} gives {len(groups)} class; "
                    "at least 2 are needed",
                )
        props = None
        if proportions is not None:
            if isinstance(proportions, str | bytes) or not isinstance(proportions, Sequence):
                raise ConfigError(
                    "dataset.class_proportions",
                    f"dataset.class_proportions={proportions!r} must be a list of fractions",
                )
            if len(proportions) != len(groups):
                raise ConfigError(
                    "dataset.class_proportions",
                    f"dataset.class_proportions has {len(proportions)} entries but the dataset "
                    f"has {len(groups)} classes; give one fraction in (0, 1] per class",
                )
            for p in proportions:
                ok = isinstance(p, int | float) and not isinstance(p, bool) and 0 < p <= 1
                if not ok:
                    raise ConfigError(
                        "dataset.class_proportions",
                        f"dataset.class_proportions: {p!r} is not a fraction in (0, 1]",
                    )
            props = tuple(float(p) for p in proportions)
        return cls(groups, props)

    @property
    def num_classes(self) -> int:
        return len(self.groups)

    def is_identity(self, source_classes: int) -> bool:
        return self.groups == tuple((c,) for c in range(source_classes))

    def names(self, source_names: Sequence[str]) -> list[str]:
        """Names of the resulting classes; a merged class joins its members with ``+``."""
        if not source_names:
            return []
        return ["+".join(str(source_names[i]) for i in g) for g in self.groups]

    def relabel(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the samples of the selected classes (order preserved), labels ``0..k-1``."""
        lookup = torch.full((int(y.max()) + 1 if y.numel() else 1,), -1, dtype=torch.long)
        for new, group in enumerate(self.groups):
            for old in group:
                if old < lookup.numel():
                    lookup[old] = new
        new_y = lookup[y]
        keep = new_y >= 0
        if bool(keep.all()):
            return x, new_y
        return x[keep], new_y[keep]

    def thin(self, y: torch.Tensor) -> torch.Tensor:
        """Indices of ``y`` to keep: of class ``c`` the first ``round(p_c * n_c)``
        samples (at least one), in the given order; all of them without proportions."""
        if self.proportions is None:
            return torch.arange(y.numel())
        keep = []
        for c, p in enumerate(self.proportions):
            idx = (y == c).nonzero().flatten()
            n = max(1, math.floor(p * idx.numel() + 0.5)) if idx.numel() else 0
            keep.append(idx[:n])
        return torch.cat(keep).sort().values

    def describe(self) -> dict[str, Any]:
        """What a log needs to say which original classes each class is."""
        return {
            "class_ids": [list(g) for g in self.groups],
            "class_proportions": None if self.proportions is None else list(self.proportions),
        }
