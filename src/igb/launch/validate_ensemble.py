"""Pre-flight of an ensemble job: the ``ensemble.*`` keys, one-line ConfigErrors."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from igb.ensemble.eval_set import split_sizes
from igb.ensemble.resolve import (
    resolve_device,
    resolve_method,
    resolve_theory_points,
    resolve_workers,
)
from igb.errors import ConfigError
from igb.launch.memory_plan import available_memory
from igb.nn.reinit import check_vary


def _int_at_least(ens: DictConfig, key: str, low: int, why: str = "") -> int:
    value = ens.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(
            f"ensemble.{key}", f"ensemble.{key}={value} must be an integer >= {low}{why}"
        )
    return value


#: bytes one initialization holds until the summary is written: f, mu, s2 (per class),
#: seed, f_max, entropy, bias degree as float64/int64, twice (the blocks, then their
#: concatenation), plus a bootstrap row (index, two resampled values)
def bytes_per_init(num_classes: int) -> int:
    return (3 * num_classes + 4) * 8 * 2 + 3 * 8


#: bytes one bootstrap resample holds: its ratio, and its copy in the quantile
BYTES_PER_RESAMPLE = 2 * 8


def check_memory_plan(
    n_inits: int, num_classes: int, available: int | None, n_boot: int = 0
) -> None:
    """Refuse, before anything is allocated, an ensemble whose per-initialization results
    or bootstrap resamples do not fit in half of the memory available (the other half:
    models, evaluation)."""
    if available is not None and n_boot * BYTES_PER_RESAMPLE > available // 2:
        raise ConfigError(
            "ensemble.n_boot",
            f"ensemble.n_boot={n_boot} needs about {n_boot * BYTES_PER_RESAMPLE / 2**30:.3g} "
            f"GiB for its resamples; this machine has {available / 2**30:.3g} GiB available: "
            f"use ensemble.n_boot<={available // 2 // BYTES_PER_RESAMPLE}",
        )
    per = bytes_per_init(num_classes)
    if available is None or n_inits * per <= available // 2:
        return
    fits = max(2, available // 2 // per)
    raise ConfigError(
        "ensemble.n_inits",
        f"ensemble.n_inits={n_inits} needs about {n_inits * per / 2**30:.3g} GiB for its "
        f"per-initialization results ({per} bytes each with {num_classes} classes); this "
        f"machine has {available / 2**30:.3g} GiB available: use ensemble.n_inits<={fits}, or "
        "several jobs with different ensemble.seed0",
    )


#: N x N float64 matrices the theory holds at once (kernel, its next layer, the centred
#: copy, a work array): an upper estimate, 16.6 GB were seen at N = 20 000 with 4 x 3.2 GB
THEORY_MATRICES = 4


def check_theory_plan(n_points: int, available: int | None, max_points: int | None = None) -> None:
    """Refuse ``ensemble.theory=true`` when its kernels do not fit in half the memory: N x N
    for N evaluation points, or ``max_points`` squared for the subsample the theory walks
    above ``ensemble.theory_points`` (:mod:`igb.theory.nngp.subsample`)."""
    walked = n_points if max_points is None else min(n_points, max_points)
    need = THEORY_MATRICES * 8 * walked**2
    if available is None or need <= available // 2:
        return
    fits = int((available // 2 / (THEORY_MATRICES * 8)) ** 0.5)
    raise ConfigError(
        "ensemble.theory_points",
        f"ensemble.theory=true walking {walked} of the {n_points} evaluation points "
        f"(ensemble.theory_points={max_points if max_points is not None else 'null'}) needs "
        f"about {need / 2**30:.3g} GiB for its kernels; this machine has "
        f"{available / 2**30:.3g} GiB available: use ensemble.theory_points<={fits} or "
        "ensemble.theory=false",
    )


def validate_ensemble(cfg: DictConfig) -> dict[str, Any]:
    """:func:`igb.launch.validate.validate` plus the ``ensemble.*`` keys; one-line ConfigErrors."""
    from igb.launch.validate import validate

    facts = validate(cfg)
    ens = cfg.ensemble
    _int_at_least(ens, "n_inits", 2, ": gamma and its interval need two initializations")
    check_memory_plan(int(ens.n_inits), facts["num_classes"], available_memory(), int(ens.n_boot))
    if ens.chunk_size != "auto":
        _int_at_least(ens, "chunk_size", 1, " or auto")
    check_vary(ens.get("vary", "all"))
    # seed0, n_boot, norm_mode, eval_split, ci_level, profile...: igb.launch.schema (validate)
    # facts["batch_norm"]: a norm with batch statistics, also inside an external architecture
    if facts["batch_norm"] and ens.norm_mode == "batch":
        _int_at_least(
            ens, "batch_size", 2,
            ": the model normalises with batch statistics (BatchNorm or a centring norm), "
            "which a batch of one cannot give",
        )  # fmt: skip
    else:
        _int_at_least(ens, "batch_size", 1)
    device = resolve_device(ens.device)
    resolve_method(ens.method, device)
    resolve_workers(ens.get("workers", "auto"), device)
    available = split_sizes(OmegaConf.to_container(cfg.dataset, resolve=True))[ens.eval_split]
    n = ens.eval_samples
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={n} must be an integer >= 2 (logit variances need two "
                "points) or null (all)",
            )
        if n > available:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={n} but the {ens.eval_split} split has {available} "
                f"points; use ensemble.eval_samples<={available} or null (all)",
            )
    elif available < 1:
        raise ConfigError(
            "ensemble.eval_split",
            f"the {ens.eval_split} split of dataset={cfg.dataset.name} is empty",
        )
    max_points = resolve_theory_points(ens)
    if bool(ens.get("theory", True)):
        check_theory_plan(n or available, available_memory(), max_points)
    return {**facts, "eval_points": n or available}
