"""What every figure shares: the record of a figure, norm styles, splitting jobs into
figures, titles, and saving. Matplotlib runs on the Agg backend; nothing is shown."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from igb import PLACEMENTS  # noqa: E402
from igb.jobs.files import atomic_write  # noqa: E402
from igb.theory.gaussian import NEUTRAL_TOL  # noqa: E402
from multirun_analysis.choices import config_order, label_value, varying_columns  # noqa: E402
from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.folders import FINISHED  # noqa: E402
from multirun_analysis.results import missing  # noqa: E402

DPI = 90

#: file formats every figure is written in besides PNG (``--format``; the report embeds the
#: PNG) and the raster resolution (``--dpi``), set by :func:`output`
FORMATS: tuple[str, ...] = ()
#: the formats ``--format`` takes
ALLOWED_FORMATS = ("png", "pdf", "svg")

KIND_COLOR = {
    "none": "black",
    "batch": "tab:blue",
    "layer": "tab:orange",
    "rms": "tab:green",
    "group": "tab:purple",
    "instance": "tab:brown",
}

#: a line style per placement, in igb's order of placements
PLACEMENT_STYLE = dict(zip(PLACEMENTS, (":", "--", "-"), strict=True))

#: choice columns never used to split figures (the norm is on the panels, seeds pooled)
POOLED = {"seed", "norm", "norm_placement", "norm_kind", "norm_variant", "n_inits"}


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


#: how far a pre-activation norm's colour is mixed with white: the placements of one kind
#: differ in colour (pale: pre, full: post), not only in dash (a dash is lost in a small
#: print and a legend's short sample)
PRE_TINT = 0.5


def norm_style(label: str) -> dict[str, Any]:
    """Colour by norm kind, shade and dash by placement (``batch-pre``: pale blue, dashed)."""
    kind, _, placement = str(label).partition("-")
    color = np.array(matplotlib.colors.to_rgb(KIND_COLOR.get(kind, "grey")))
    if placement == "pre":
        color = color + (1.0 - color) * PRE_TINT
    return {
        "color": tuple(float(c) for c in color),
        "linestyle": PLACEMENT_STYLE.get(placement or "none", "-"),
    }


def sorted_values(values: Iterable[Any]) -> list[Any]:
    vals = list(dict.fromkeys(v for v in values if not missing(v)))
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_") or "all"


def split_groups(
    jobs: pd.DataFrame, varying: Sequence[str], exclude: Iterable[str]
) -> list[tuple[str, str, pd.DataFrame]]:
    """Split jobs by the varying choices not shown inside one figure -> (file-name suffix,
    title, jobs): ``("activation-relu_width-64", "activation=relu, width=64", jobs)``.
    A job without a choice (None) shows nothing for it; paths show their file name."""
    skip = set(exclude) | POOLED
    # only what varies among these jobs (a mixed folder's other kind varies in more)
    keys = varying_columns(jobs, [c for c in varying if c not in skip and c in jobs])
    if not keys:
        return [("", "", jobs)]
    labels = pd.DataFrame({k: jobs[k].map(label_value) for k in keys}, index=jobs.index)
    out = []
    for values, g in jobs.groupby([labels[k].fillna("") for k in keys], sort=True):
        values = values if isinstance(values, tuple) else (values,)
        named = [(k.rsplit(".", 1)[-1], v) for k, v in zip(keys, values) if v != ""]
        suffix = "_".join(f"{k}-{v}" for k, v in named)
        out.append((short_name(suffix), ", ".join(f"{k}={v}" for k, v in named), g))
    return out


#: longest file-name suffix spelled out; a longer one becomes a digest (the title says it)
MAX_SUFFIX = 48


def short_name(text: str) -> str:
    """``text`` as a file-name part: :func:`slug`, or, past :data:`MAX_SUFFIX` characters,
    ``group-<8 hex digits>`` of it (the same text always gives the same name)."""
    if not text:
        return ""
    name = slug(text)
    if len(name) <= MAX_SUFFIX:
        return name
    return f"group-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def grid_shape(n: int, most: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels, at most ``most`` to a row, the rows as full as
    they can be (5 panels at most 4 to a row: 2 x 3, not 2 x 4 with a near-empty row)."""
    rows = max(1, math.ceil(n / most))
    return rows, max(1, math.ceil(n / rows))


def output(formats: Sequence[str] = ("png",), dpi: int = 90) -> None:
    """Write the figures from now on in ``formats`` (PNG always) at ``dpi``."""
    global FORMATS, DPI
    FORMATS = tuple(f for f in formats if f != "png")
    DPI = dpi


def save(fig: plt.Figure, path: Path) -> Path:
    """``path`` (a PNG) and its twins in the other formats of :func:`output`
    (``x.pdf``, ``x.svg`` beside ``x.png``: vector text and lines for a paper)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # atomically: a full disk leaves the previous figure, never half a file
        for target in (path, *(path.with_suffix(f".{fmt}") for fmt in FORMATS)):
            atomic_write(target, lambda tmp: fig.savefig(tmp, dpi=DPI, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def finish(
    fig: plt.Figure,
    title: str | None,
    path: Path,
    caption: str,
    bottom: float = 0.0,
    right: float = 1.0,
) -> list[Figure]:
    """The end of every figure: its title, the layout (``bottom``, ``right``: room kept
    for a figure legend), the file, and the figure's record with its caption."""
    if title is not None:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, bottom, right, 1))
    return [Figure(save(fig, path), caption)]


def finished_jobs(col: Collection, kind: str) -> pd.DataFrame:
    jobs = col.jobs
    return jobs[(jobs["status"] == FINISHED) & (jobs["kind"] == kind)]


def numeric(frame: pd.DataFrame, key: str) -> pd.Series | None:
    """Column ``key`` of ``frame`` as numbers (NaN where a value is not one); None when
    there is no such column (``pd.to_numeric(frame.get(key))`` is then a NaN scalar,
    not None)."""
    return pd.to_numeric(frame[key], errors="coerce") if key in frame else None


def int_or_none(col: pd.Series | None) -> int | None:
    """The first number of ``col`` as an int (None: no number, or no column)."""
    vals = pd.to_numeric(col, errors="coerce").dropna() if col is not None else []
    return int(vals.iloc[0]) if len(vals) else None


def num_classes_of(jobs: pd.DataFrame) -> int:
    """The jobs' number of classes (the first job's that has one; 0: none has)."""
    return int_or_none(jobs.get("num_classes")) or 0


def config_styles(jobs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    configs = config_order(jobs)
    norms = jobs.drop_duplicates("config").set_index("config")["norm"].to_dict()
    # when only the norm varies the colour says the kind and the dash the placement
    if len(set(norms.values())) == len(configs):
        return {c: norm_style(norms[c]) for c in configs}
    cmap = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20")
    return {c: {"color": cmap(i % cmap.N)} for i, c in enumerate(configs)}


#: the regimes' bands on a gamma axis: (low, high, colour)
REGIME_BANDS = (
    ("neutral", 0.0, NEUTRAL_TOL, "tab:green"),
    ("prejudiced", NEUTRAL_TOL, 1.0, "gold"),
    ("deeply prejudiced", 1.0, math.inf, "tab:red"),
)


#: gammas below this are drawn at it on the log axis (a centred layer's gamma_l is zero up
#: to rounding)
GAMMA_FLOOR = 1e-6


def gamma_log_axis(ax: plt.Axes, values: np.ndarray, vertical: bool = True) -> None:
    """Put ``values`` (gammas) on a log axis (x when ``vertical``) from half a decade below
    the smallest (at least :data:`GAMMA_FLOOR`) to half a decade above the largest (at
    least 1, the prejudiced regime's edge), over the regimes' bands."""
    lo = 10 ** math.floor(math.log10(max(float(np.nanmin(values)), GAMMA_FLOOR)) - 0.3)
    hi = 10 ** math.ceil(math.log10(max(float(np.nanmax(values)), 1.0)) + 0.3)
    (ax.set_xscale if vertical else ax.set_yscale)("log")
    (ax.set_xlim if vertical else ax.set_ylim)(lo, hi)
    regime_bands(ax, lo, hi, vertical=vertical)


def mark_below_floor(
    ax: plt.Axes,
    at: np.ndarray,
    values: np.ndarray,
    floor: float,
    color: Any = "black",
    vertical: bool = True,
    size: float = 60,
) -> bool:
    """Draw each value below the log axis' ``floor`` as an open triangle at the floor,
    pointing off the axis (down when ``vertical``: values on y; left otherwise), so that
    it is not read as the floor's value; ``at`` are the points' other coordinates.
    Whether any was drawn (the caller then says so in the legend or caption)."""
    below = np.asarray(values, dtype=float) < floor
    if not below.any():
        return False
    where = np.asarray(at)[below]
    fl = np.full(where.shape, floor)
    xy = (where, fl) if vertical else (fl, where)
    ax.scatter(*xy, marker="v" if vertical else "<", s=size, facecolor="white",
               edgecolor=color, linewidth=1.5, zorder=5, clip_on=False)  # fmt: skip
    return True


def below_floor_handle(vertical: bool = True) -> Any:
    """A legend entry for :func:`mark_below_floor`'s triangles."""
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="none", marker="v" if vertical else "<", ms=7,
                  markerfacecolor="white", markeredgecolor="black")  # fmt: skip


def regime_bands(ax: plt.Axes, lo: float, hi: float, vertical: bool = True) -> None:
    """Shade the regimes between ``lo`` and ``hi`` on the gamma axis (x when
    ``vertical``), each named at its middle."""
    for name, a, b, color in REGIME_BANDS:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        span = ax.axvspan if vertical else ax.axhspan
        span(a, b, color=color, alpha=0.09, lw=0, zorder=0)
        mid = math.sqrt(a * b)
        if vertical:
            ax.text(mid, 1.0, name, transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=7, color="0.35")  # fmt: skip
