"""Start-up of the ensemble and theory entries against ``import torch`` (goal: <= 1.2x).

Each case is a fresh interpreter, timed end to end, best of ``--repeat``; the ratio to
``import torch`` in the same run is what to compare (the machine is shared and noisy).

    python bench/bench_startup.py --repeat 3
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import parse_args  # bench/: on sys.path

CASES = {
    "import torch": "import torch",
    "ensemble entry": (
        "import igb.launch.preflight, igb.launch.validate_ensemble, igb.ensemble\n"
        "from igb.data import GaussianBlobsDataModule\n"
        "GaussianBlobsDataModule(num_samples=64, num_classes=2, shape=[4]).setup()"
    ),
    "theory entry": "import igb.launch.theory_cli, igb.theory.nngp",
    "training entry (for reference)": "import igb.training.run",
}


def best_of(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    args = parse_args(__doc__, repeat=3)
    base = best_of(CASES["import torch"], args.repeat)
    print(f"{'case':34s} {'seconds':>8s} {'x import torch':>15s}")
    for name, code in CASES.items():
        t = base if name == "import torch" else best_of(code, args.repeat)
        print(f"{name:34s} {t:8.2f} {t / base:15.2f}")


if __name__ == "__main__":
    main()
