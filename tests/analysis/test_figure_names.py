"""Figure file names stay short and stable however many choices split the jobs."""

from __future__ import annotations

import pandas as pd

from multirun_analysis.figures.common import MAX_SUFFIX, split_groups


def test_group_names_short_stable_and_only_from_what_varies_among_the_jobs() -> None:
    long = {f"choice_number_{k}": [f"value_{k}_a", f"value_{k}_b"] for k in range(6)}
    jobs = pd.DataFrame({**long, "activation": ["relu", "relu"], "depth": [1, 2]})
    varying = [*long, "activation", "depth"]  # activation: varies elsewhere, not here
    groups = split_groups(jobs, varying, exclude={"depth"})
    names = [suffix for suffix, _, _ in groups]
    assert len(groups) == 2 and len(set(names)) == 2
    assert all(n.startswith("group-") and len(n) == len("group-") + 8 for n in names)
    assert names == [s for s, _, _ in split_groups(jobs, varying, exclude={"depth"})]
    titles = [title for _, title, _ in groups]
    assert titles[0].startswith("choice_number_0=value_0_a") and "activation" not in titles[0]

    short = split_groups(jobs.iloc[:, -2:].assign(width=[64, 128]), ["width"], exclude=())
    assert [s for s, _, _ in short] == ["width-128", "width-64"]
    assert all(len(s) <= MAX_SUFFIX for s, _, _ in short)
