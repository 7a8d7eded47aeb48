"""How long a typo takes to be reported: ``python train.py <bad input>`` until exit code 2.

The preflight composes every job with Hydra alone and reports a bad key or option before
torch and Lightning are imported; semantic checks (sizes, norm kinds per layer) build
the model on the meta device and need torch. Each case runs ``--repeats`` times in a
fresh interpreter (imports are the cost); printed: median and range of the wall time,
and whether torch was imported before the error (``-X importtime``).

    python bench/bench_preflight.py [--repeats 5]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import parse_args  # bench/: on sys.path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "unknown key": ["model.dept=3"],
    "unknown option": ["model=mlpp"],
    "grid without -m": ["model=mlp,cnn"],
    "bad value (semantic, needs torch)": ["model.width=0"],
}


def run_once(argv: list[str], cwd: str) -> tuple[float, int, bool]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    torch_loaded = any(
        line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == "torch"
        for line in proc.stderr.splitlines()
    )
    return wall, proc.returncode, torch_loaded


def main() -> None:
    args = parse_args(__doc__, repeats=5)
    with tempfile.TemporaryDirectory() as cwd:
        for name, argv in CASES.items():
            runs = [run_once(argv, cwd) for _ in range(args.repeats)]
            walls = [w for w, _, _ in runs]
            codes = {c for _, c, _ in runs}
            torch_loaded = any(t for _, _, t in runs)
            print(
                f"{name:<36} {' '.join(argv):<16} median {statistics.median(walls):5.2f} s "
                f"(min {min(walls):.2f}, max {max(walls):.2f})  exit {sorted(codes)}  "
                f"torch imported: {'yes' if torch_loaded else 'no'}"
            )


if __name__ == "__main__":
    main()
