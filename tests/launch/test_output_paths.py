"""A launch never writes into a system folder or, by its task_name, out of the output root.

Each case runs the real ``train.py``: refused in one line naming the key, exit 2, and
nothing written anywhere (the folder named does not appear).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.entry_points import run_entry
from helpers.sizes import TINY

from igb.launch.output_paths import system_folder, task_name_problem


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["hydra.run.dir=/"], "error: hydra.run.dir=/ is refused: it is a system or home folder"),
        (["hydra.run.dir=/etc/igb-run"], "hydra.run.dir=/etc/igb-run is refused: it is inside the "
                                         "system folder /etc"),
        (["-m", "seed=0,1", "hydra.sweep.dir=/usr"], "hydra.sweep.dir=/usr is refused"),
        (["task_name=../../escaped"], "error: task_name=../../escaped is not a folder name"),
    ],
)  # fmt: skip
def test_a_system_folder_or_a_climbing_task_name_is_refused(
    tmp_path: Path, argv: list[str], line: str
) -> None:
    flags = [a for a in argv if a.startswith("-")]  # -m before every override
    overrides = [a for a in argv if not a.startswith("-")]
    proc = run_entry("train.py", *flags, *TINY, *overrides, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and line in lines[0], lines
    assert not Path("/etc/igb-run").exists() and list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent.parent / "escaped").exists()


def test_which_folders_are_refused() -> None:
    home = str(Path.home())
    assert system_folder("/") and system_folder("/var") and system_folder(home)
    assert system_folder("/usr/local/share/x") == "it is inside the system folder /usr"
    assert system_folder("/tmp/a/b") is None and system_folder(f"{home}/outputs") is None
    assert task_name_problem("train") is None and task_name_problem("my.study-2") is None
    assert task_name_problem("..") and task_name_problem("a/b") and task_name_problem("")
