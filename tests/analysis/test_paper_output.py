"""Paper output: figure formats and resolution, booktabs tables, figures that do not hide
what they cannot show (values below a log axis, narrow laws, placements by colour)."""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from multirun_analysis.__main__ import formats
from multirun_analysis.figures import common
from multirun_analysis.figures.histograms import bin_edges
from multirun_analysis.latex import booktabs
from multirun_analysis.report import Report, _fmt, write_tex_tables


def test_booktabs_table_exact() -> None:
    df = pd.DataFrame({"norm_kind": ["batch-pre", "a&b"], "γ": [0.4412, np.nan], "n": [3, 40]})
    assert booktabs(df, _fmt) == (
        "\\begin{tabular}{lrr}\n\\toprule\n"
        "norm\\_kind & $\\gamma$ & n \\\\\n\\midrule\n"
        "batch-pre & 0.441 & 3 \\\\\na\\&b &  & 40 \\\\\n"
        "\\bottomrule\n\\end{tabular}\n"
    )


def test_every_report_table_as_tex_named_by_its_section(tmp_path) -> None:
    report = Report("x")
    report.h2("Configurations")
    report.table(pd.DataFrame({"a": [1]}))
    report.h2("Jobs that did not finish")
    report.table(pd.DataFrame())  # "(none)" in the report: no file
    report.h2("Jobs")
    report.table(pd.DataFrame({"b": ["x"]}))
    paths = write_tex_tables(report, tmp_path)
    assert [p.name for p in paths] == ["configurations.tex", "jobs.tex"]


def test_formats_and_dpi(tmp_path) -> None:
    assert formats("pdf, SVG,png,pdf") == ("pdf", "svg", "png")
    with pytest.raises(argparse.ArgumentTypeError, match="allowed formats png, pdf, svg"):
        formats("pdf,eps")
    widths = {}
    try:
        for dpi in (90, 180):
            common.output(("pdf", "svg"), dpi)
            fig, ax = plt.subplots(figsize=(3, 2))
            ax.plot([0, 1], [0, 1])
            path = common.save(fig, tmp_path / f"d{dpi}" / "fig.png")
            widths[dpi] = imread(path).shape[1]
            assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
            assert "<svg" in path.with_suffix(".svg").read_text()
    finally:
        common.output()
    assert widths[180] == pytest.approx(2 * widths[90], abs=3)


def test_narrow_law_gets_its_own_bins() -> None:
    rng = np.random.default_rng(0)
    narrow = 0.124 + 0.001 * rng.standard_normal(500)
    edges, zoomed = bin_edges(narrow, 0.1, strip=False)
    assert zoomed and edges[0] < narrow.min() and edges[-1] > narrow.max()
    counts, _ = np.histogram(narrow, edges)
    assert (counts > 0).sum() >= 10  # resolved, not one bar
    wide = rng.uniform(0.1, 1.0, 500)
    edges, zoomed = bin_edges(wide, 0.1, strip=False)
    assert not zoomed and edges[0] == 0.1 and edges[-1] == 1.0


def test_values_below_a_log_axis_are_marked_not_drawn_at_the_floor() -> None:
    fig, ax = plt.subplots()
    assert not common.mark_below_floor(ax, np.array([1, 2]), np.array([1e-3, 1.0]), 1e-6)
    assert common.mark_below_floor(ax, np.array([1, 2, 3]), np.array([1e-14, 0.0, 0.5]), 1e-6)
    (marks,) = ax.collections
    assert marks.get_offsets().tolist() == [[1, 1e-6], [2, 1e-6]]
    plt.close(fig)


def test_placements_differ_in_colour() -> None:
    pre, post = common.norm_style("batch-pre"), common.norm_style("batch-post")
    assert pre["color"] != post["color"] and pre["linestyle"] != post["linestyle"]
    assert common.norm_style("layer-pre")["color"] != pre["color"]
