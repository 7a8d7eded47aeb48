"""Where the Hydra config tree ``conf/`` is, for the pre-flight.

``@hydra.main(config_path="conf")`` in ``train.py`` / ``ensemble.py`` reads ``conf/`` next
to the entry script; the pre-flight must compose from the same tree. It is found next to
the script being run first, so that it is right whether igb is installed from the checkout
(``pip install .``: the package then lives in site-packages, away from ``conf/``) or used
from it (``pip install -e .``, ``PYTHONPATH=src``).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: a file every igb config tree has
MARKER = "train.yaml"


def candidates() -> list[Path]:
    """Where ``conf/`` may be, in order: next to the running script, in the source
    checkout this package was imported from, in the working directory."""
    found = []
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script:
        found.append(Path(script).resolve().parent / "conf")
    found.append(Path(__file__).resolve().parents[3] / "conf")  # src/igb/launch/ -> checkout
    found.append(Path.cwd() / "conf")
    return found


def find_conf_dir() -> Path:
    """The first candidate holding a config tree (the first candidate if none does, so
    that the error names where it was looked for)."""
    options = candidates()
    for folder in options:
        if (folder / MARKER).is_file():
            return folder
    return options[0]
