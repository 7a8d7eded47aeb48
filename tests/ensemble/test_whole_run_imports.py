"""A whole ensemble job, run as a user runs it, never imports Lightning or torchmetrics (it
trains nothing) nor torchvision (the built-in MLP on generated data needs no model zoo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.entry_points import ROOT

#: run ensemble.py as ``python ensemble.py ...`` would, and list the modules loaded at exit
RUN_AND_LIST = """
import atexit, json, runpy, sys
out, argv = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = [argv[0], *argv[1:]]
runpy.run_path(argv[0], run_name="__main__")
"""
NEVER = ("lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics", "torchvision")


def test_a_whole_ensemble_run_imports_no_lightning(tmp_path: Path) -> None:
    listing, job = tmp_path / "modules.json", tmp_path / "job"
    argv = [str(ROOT / "ensemble.py"), "ensemble.n_inits=4", "ensemble.eval_samples=40",
            "ensemble.batch_size=20", "ensemble.progress=false",
            f"hydra.run.dir={job}"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, str(listing), *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        # the histogram drawn in this process, not by a figure worker (which starts only
        # where a CPU is spare), so that the listing below is the whole job's
        env={"PATH": "/usr/bin:/bin", "IGB_ROOT": str(tmp_path), "WANDB_MODE": "disabled",
             "IGB_FIGURE_WORKER": "0"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((job / "status.json").read_text())["status"] == "finished"
    assert (job / "histogram.png").is_file() and (job / "inits.csv").is_file()
    loaded = {name.split(".")[0] for name in json.loads(listing.read_text())}
    assert loaded.isdisjoint(NEVER), sorted(loaded & set(NEVER))
    assert {"torch", "hydra", "matplotlib"} <= loaded  # the listing is that of the run
