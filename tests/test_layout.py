"""The package layout holds: import contracts (import-linter), no flat modules, fast starts."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency"
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


#: what a benchmark may take from the launch: the spec builder of the default run, so that
#: it times the run ``python train.py`` builds (an entry point's own role), never the
#: pre-flight or the checks
BENCH_MAY_IMPORT = {"igb.launch.train_job"}


def test_bench_imports_no_launch() -> None:
    """bench/ is a folder of scripts, not a package import-linter can read: the rule that
    the benchmarks measure the subsystems without going through ``igb.launch`` (but for
    :data:`BENCH_MAY_IMPORT`) is read from their import statements here."""
    found = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[:2] == ["igb", "launch"] and n not in BENCH_MAY_IMPORT
            ]
    assert not found, found


def test_top_level_holds_only_packages_errors_and_compat() -> None:
    top = sorted(p.name for p in (ROOT / "src" / "igb").glob("*.py"))
    assert top == ["__init__.py", "compat.py", "errors.py"]


@pytest.mark.parametrize("path", ["src/igb", "multirun_analysis"])
def test_no_module_over_600_lines(path: str) -> None:
    """One concept per module: about 400 lines is the guide, 600 the limit (a concept such as
    the schema of every key is better whole than split to meet a number)."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / path).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long


def test_ensembles_and_theory_start_without_lightning() -> None:
    """The ensemble and theory entries (and the evaluation data they build) never import
    Lightning or torchmetrics: they train nothing, and those imports cost seconds."""
    code = (
        "import sys\n"
        "import igb.launch.preflight, igb.launch.validate_ensemble, igb.ensemble\n"
        "import igb.launch.theory_cli, igb.theory.nngp\n"
        "from igb.data import GaussianBlobsDataModule\n"
        "dm = GaussianBlobsDataModule(num_samples=64, num_classes=2, shape=[4])\n"
        "dm.setup()\n"
        "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'torchmetrics')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
