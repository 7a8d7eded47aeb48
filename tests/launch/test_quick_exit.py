"""The entry points' quicker exit keeps what an exit must do: exit handlers and log files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, logging, sys
from igb.launch.quick_exit import skip_final_collection
skip_final_collection()
handler = logging.FileHandler(sys.argv[1])
logging.getLogger("job").addHandler(handler)
logging.getLogger("job").warning("last line")
atexit.register(lambda: open(sys.argv[2], "w").write("handler ran"))
"""


def test_exit_handlers_and_log_files_complete_after_a_quick_exit(tmp_path: Path) -> None:
    log, marker = tmp_path / "job.log", tmp_path / "marker"
    subprocess.run([sys.executable, "-c", SCRIPT, str(log), str(marker)], check=True)
    assert log.read_text() == "last line\n"
    assert marker.read_text() == "handler ran"


def test_the_final_collection_skips_what_lived_to_the_end() -> None:
    """gc.freeze is what runs last: after it, the objects alive then are not walked again."""
    code = (
        "import atexit, gc\n"
        "from igb.launch.quick_exit import skip_final_collection\n"
        "skip_final_collection()\n"
        "atexit.register(lambda: print(gc.get_freeze_count()))\n"  # runs before the freeze
        "import atexit as a; a._run_exitfuncs(); print(gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True"]
