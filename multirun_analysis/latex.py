"""A report table as a LaTeX ``tabular`` in booktabs style (``\\usepackage{booktabs}``).

Cells are formatted as in the report (3 significant digits, empty for missing values),
LaTeX's special characters escaped; numeric columns are right-aligned, others left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "γ": r"$\gamma$",
    "−": "$-$",
}


def escape(text: str) -> str:
    """``text`` as LaTeX source: special characters escaped, ± and γ in math mode."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def booktabs(df: pd.DataFrame, fmt: Callable[[Any], str]) -> str:
    """``df`` as ``\\begin{tabular}...\\end{tabular}`` with top, mid and bottom rules;
    ``fmt`` turns a cell into text (the report's own formatting)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [f"\\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(escape(str(c)) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    for row in df.itertuples(index=False):
        lines.append(" & ".join(escape(fmt(v).replace("\n", " ")) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
