"""A whole small ensemble job against ``python -c "import torch"`` (goal: <= 1.5x).

Each case is a fresh interpreter timed end to end (composition, pre-flight, data, the
initializations, theory, histogram, summary: every file the job writes), the median of
``--repeats`` interleaved rounds; the ratio to ``import torch`` in the same rounds is what
to compare (the machine is shared and noisy: the load average is printed).

    python bench/bench_startup.py --repeats 3
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import interleaved, load, parse_args, python  # bench/: on sys.path

ROOT = Path(__file__).resolve().parents[1]
#: the smallest job the pre-flight accepts, on the default model and data
TINY = ["ensemble.n_inits=2", "ensemble.eval_samples=100", "ensemble.batch_size=50",
        "ensemble.progress=false"]  # fmt: skip


def main() -> None:
    args = parse_args(__doc__, repeats=3)
    with tempfile.TemporaryDirectory() as tmp:
        cases = {  # each job in its own folder: a finished one would be skipped
            "import torch": lambda r: python("-c", "import torch"),
            "tiny ensemble job": lambda r: python(
                str(ROOT / "ensemble.py"), *TINY, f"hydra.run.dir={tmp}/{r}"
            ),
        }
        print(f"before: {load()}")
        times = interleaved(cases, args.repeats, {"WANDB_MODE": "disabled"})
        print(f"after: {load()}")
    base = times["import torch"]
    print(f"{'case':24s} {'median s':>9s} {'x import torch':>15s}   ({args.repeats} rounds)")
    for name, t in times.items():
        print(f"{name:24s} {t:9.2f} {t / base:15.2f}")


if __name__ == "__main__":
    main()
