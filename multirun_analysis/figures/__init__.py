"""The paper's figures from a :class:`~multirun_analysis.collect.Collection`, as PNG files.

Each ``fig_*`` function draws one kind of figure when the collection holds the data
it needs and returns ``[Figure(path, caption)]`` (or ``[]``):

- ``fig_ensemble_histograms`` (:mod:`.histograms`): f_0 (binary) / f_max histograms over
  initializations, one panel per norm placement (x depth), with the Gaussian-model law
  for the measured gamma (:mod:`igb.theory.gaussian`);
- ``fig_gamma_vs_depth`` (:mod:`.gamma`): gamma against depth, one line per norm kind
  and placement;
- ``fig_gamma_compare`` (:mod:`.compare`): gamma of every ensemble on one log axis with
  its interval, over the regimes' bands (at least two ensembles);
- ``fig_profiles`` (:mod:`.profiles`): gamma_l along the forward path of every ensemble
  that wrote a ``profile.csv`` (at least two);
- ``fig_step0_f_max`` (:mod:`.histograms`): the step-0 f_max of training runs over seeds;
- ``fig_dynamics_f_max`` (:mod:`.dynamics`): f_max, prediction entropy and (where the
  runs logged it) the weight overlap over log-scaled steps, mean and spread (one
  standard deviation) over seeds;
- ``fig_dynamics_acc_rank`` (:mod:`.dynamics`): accuracy of the class favoured at step 0
  (rank 1) against the mean accuracy of the other classes over log-scaled steps;
- ``fig_time_to_neutrality`` (:mod:`.dynamics`): steps until no class is predicted more
  than tol above its share of the split (1/C for runs that did not record the shares),
  per configuration and seed;
- ``fig_class_speed`` (:mod:`.speed`): per seed, when the favoured class and the others
  reach a share of their final accuracy, and the difference over seeds.
"""

from __future__ import annotations

from pathlib import Path

from multirun_analysis.collect import Collection
from multirun_analysis.figures.common import Figure
from multirun_analysis.figures.compare import fig_gamma_compare
from multirun_analysis.figures.dynamics import (
    fig_dynamics_acc_rank,
    fig_dynamics_f_max,
    fig_time_to_neutrality,
)
from multirun_analysis.figures.gamma import fig_gamma_vs_depth
from multirun_analysis.figures.histograms import fig_ensemble_histograms, fig_step0_f_max
from multirun_analysis.figures.profiles import fig_profiles
from multirun_analysis.figures.speed import fig_class_speed

__all__ = ["ALL", "Figure", "draw_all"]

ALL = (
    fig_ensemble_histograms,
    fig_gamma_vs_depth,
    fig_gamma_compare,
    fig_profiles,
    fig_step0_f_max,
    fig_dynamics_f_max,
    fig_dynamics_acc_rank,
    fig_time_to_neutrality,
    fig_class_speed,
)


def draw_all(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    """Every figure the collection has data for, under ``out``."""
    figures: list[Figure] = []
    for fn in ALL:
        kwargs = {"split": split} if "split" in fn.__code__.co_varnames else {}
        figures += fn(col, out, **kwargs)
    return figures
