"""Initialization ensembles: the law of f over many independent initializations, and gamma.

``python ensemble.py`` (conf/ensemble.yaml) evaluates initializations ``seed0 ..
seed0 + n_inits - 1`` of one configuration on a fixed evaluation set, with norm layers
in batch-statistics mode (:func:`igb.metrics.measure.batch_stat_mode`) on batches of
``ensemble.batch_size`` points and no gradients, and writes to its job folder:

- ``inits.csv``: one row per initialization: ``seed, f_0 .. f_{C-1}, f_max, entropy,
  bias_degree`` (g), and ``mu2``/``s2`` (``mean_c mu_c^2``, ``mean_c s2_c``: the two
  per-initialization terms whose means give gamma);
- ``summary.json``: gamma, its bootstrap interval, the regime, f_max / f_0 statistics,
  the configuration choices, device, method and wall time;
- ``histogram.png``: the histogram of f_0 (C = 2) or f_max (C > 2) with the theory
  curve for the measured gamma (:mod:`igb.ensemble.plot`).

Initialization ``i`` is exactly ``build_model(model, norm, ..., seed=i, device=device)``:
the model is built once and re-initialised in place with ``torch.manual_seed(i);
initialize(model, scheme)``, which is what ``build_model`` does. Two ways to evaluate:

- ``loop`` (:mod:`.loop`): one initialization at a time, as
  :func:`igb.metrics.measure.predict_logits` does it. On a CPU it runs ``workers`` Python threads,
  each with its own model replica and one intra-op thread (matmuls release the GIL);
  initialization is serialised under a lock because it draws from the global RNG. This
  beats one thread with intra-op parallelism for these small matrices, and it degrades
  gracefully when another process takes a core (OpenMP's barriers do not: see
  docs/ensemble.md).
- ``vmap`` (:mod:`.vmap`): ``chunk_size`` initializations at once, parameters stacked
  along a new leading axis, ``torch.func.functional_call`` under ``torch.func.vmap``.
  Used on GPUs.

In batch-statistics mode the private models' BatchNorm layers do not track running
statistics (``torch.func.replace_all_batch_norm_modules_``, the torch.func recipe for
BatchNorm under vmap): they would never be used, and the logits are bit-identical. Other
buffers (and BatchNorm's with ``norm_mode=eval``) are stacked along with the parameters
under vmap, so nothing a forward pass might update in place is shared.

Per-initialization statistics are :func:`igb.metrics.logit_statistics`, the one
implementation the statistics callback uses too.

The modules, one job each: :mod:`.statistics` (the result arrays),
:mod:`.resolve` (device / method / workers / chunk size), :mod:`.replica` (the model),
:mod:`.loop` and :mod:`.vmap` (the two runners), :mod:`.heads` (``vary=head`` on the
backbone's cached features), :mod:`.plan` (what an evaluation computes, one value),
:mod:`.evaluate` (their entry), :mod:`.profile`,
:mod:`.profile_report` and :mod:`.profile_plot` (``ensemble.profile=true``),
:mod:`.progress`, :mod:`.eval_set`, :mod:`.summary`, :mod:`.writers`, :mod:`.wandb_log`,
:mod:`.spec` (the job's typed description, which the launch builds from the configuration:
nothing here reads a config node) and :mod:`.run` (the job in its folder; the launch
runs it: :mod:`igb.launch.ensemble_job`).

May import theory, metrics, nn, data, jobs, logging (never Lightning: an ensemble
trains nothing, and its start-up is as fast as torch's).
"""

import importlib
from typing import Any

#: name -> the module of this package that defines it, imported on first use: a process that
#: needs only a torch-free part (the histogram of :mod:`.plot`, drawn by the analysis or in
#: a figure worker) does not load torch by importing the package
_EXPORTS = {
    "DEVICES": "resolve",
    "METHODS": "resolve",
    "OUTPUT_FILES": "run",
    "SPLITS": "eval_set",
    "EnsembleSpec": "spec",
    "EnsembleResult": "statistics",
    "EnsembleSettings": "spec",
    "EvaluationPlan": "plan",
    "empty_model": "replica",
    "eval_set": "eval_set",
    "evaluate_ensemble": "evaluate",
    "progress_bar": "progress",
    "resolve_chunk_size": "resolve",
    "resolve_device": "resolve",
    "resolve_method": "resolve",
    "resolve_workers": "resolve",
    "summarize": "summary",
    "versions": "summary",
    "write_inits_csv": "writers",
    "write_summary": "writers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
