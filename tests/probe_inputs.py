"""Probe: malformed inputs against the real entry points; counts the escapes.

An input escapes the promise when the entry point does not answer with exit 2, exactly one
line on stderr starting ``error: ``, and nothing written in its working folder (besides the
files the case set up). Run: ``python tests/probe_inputs.py [substring]``, or with
``--preflight`` every case through the entry points' pre-flight in one process (fast).
Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODELS = """
import os, sys, time, torch
from torch import nn

class Ok(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(192, num_classes))
    def forward(self, x):
        return self.fc(x)

class Exits(Ok):
    def __init__(self, num_classes):
        sys.exit(3)

class HardExit(Ok):
    def __init__(self, num_classes):
        os._exit(0)

class Hangs(Ok):
    def __init__(self, num_classes):
        while True:
            time.sleep(0.1)

class NanLogits(Ok):
    def forward(self, x):
        return self.fc(x) * float("nan")

class WrongShape(Ok):
    def forward(self, x):
        return self.fc(x)[:, :1]

class WrongDtype(Ok):
    def forward(self, x):
        return self.fc(x).long()

class Huge(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(192, 10**6),
                                nn.Linear(10**6, 10**6), nn.Linear(10**6, num_classes))
    def forward(self, x):
        return self.fc(x)

class Raises(Ok):
    def __init__(self, num_classes):
        raise RuntimeError("boom\\nsecond line")
"""


def _custom(cls: str) -> list[str]:
    return ["model=custom", f"model.cls=probe_models.{cls}", "norm=native"]


def _mnist(cwd: Path, damage: str) -> None:
    from helpers.dataset_files import write_mnist

    write_mnist(cwd / "data", "MNIST")
    raw = cwd / "data" / "MNIST" / "raw"
    f = raw / "train-images-idx3-ubyte"
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:1000])
    elif damage == "magic":
        f.write_bytes(b"\0\0\0\0" + f.read_bytes()[4:])
    elif damage == "labels":
        lab = raw / "train-labels-idx1-ubyte"
        data = bytearray(lab.read_bytes())
        data[10] = 77
        lab.write_bytes(bytes(data))
    elif damage == "garbage":
        f.write_bytes(os.urandom(5000))


def _cifar(cwd: Path, damage: str) -> None:
    import pickle

    from helpers.dataset_files import write_cifar10

    write_cifar10(cwd / "data")
    folder = cwd / "data" / "cifar-10-batches-py"
    batch = folder / "data_batch_1"
    if damage == "garbage":
        batch.write_bytes(os.urandom(3000))
    elif damage == "truncate":
        batch.write_bytes(batch.read_bytes()[:500])
    elif damage == "shape":
        obj = pickle.loads(batch.read_bytes(), encoding="latin1")
        obj["data"] = obj["data"][:, :100]
        batch.write_bytes(pickle.dumps(obj))
    elif damage == "labels":
        obj = pickle.loads(batch.read_bytes(), encoding="latin1")
        obj["labels"] = [99] * len(obj["labels"])
        batch.write_bytes(pickle.dumps(obj))
    elif damage == "missing_key":
        obj = pickle.loads(batch.read_bytes(), encoding="latin1")
        del obj["labels"]
        batch.write_bytes(pickle.dumps(obj))
    elif damage == "dir_as_file":
        batch.unlink()
        batch.mkdir()


def _weights(cwd: Path, damage: str) -> None:
    (cwd / "w.pt").write_bytes(os.urandom(200) if damage != "empty" else b"")


T = "train.py"
TV = ["model=torchvision", "model.arch=resnet18", "norm=native"]
C10 = ["dataset=cifar10", "dataset.data_dir=data"]
MN = ["dataset=mnist", "dataset.data_dir=data"]
E = "ensemble.py"
#: malformed inputs that need no files set up (name, entry script, overrides): data, in
#: probe_inputs.yaml; the cases below write damaged files into the case's folder first
PLAIN_CASES = [
    (case["name"], case["entry"], case["argv"], None)
    for case in yaml.safe_load((ROOT / "tests" / "probe_inputs.yaml").read_text())
]
CASES: list[tuple[str, str, list[str], object]] = [
    *PLAIN_CASES,
    # data files
    ("m-truncate", T, MN, lambda c: _mnist(c, "truncate")),
    ("m-magic", T, MN, lambda c: _mnist(c, "magic")),
    ("m-labels", T, MN, lambda c: _mnist(c, "labels")),
    ("m-garbage", T, MN, lambda c: _mnist(c, "garbage")),
    ("c-garbage", T, C10, lambda c: _cifar(c, "garbage")),
    ("c-truncate", T, C10, lambda c: _cifar(c, "truncate")),
    ("c-shape", T, C10, lambda c: _cifar(c, "shape")),
    ("c-labels", T, C10, lambda c: _cifar(c, "labels")),
    ("c-missing", T, C10, lambda c: _cifar(c, "missing_key")),
    ("c-dir", T, C10, lambda c: _cifar(c, "dir_as_file")),
    ("c-garbage-ens", E, C10, lambda c: _cifar(c, "garbage")),
    ("weights-garbage", T, [*_custom("Ok"), "model.weights=w.pt"], lambda c: _weights(c, "x")),
    ("weights-empty", T, [*_custom("Ok"), "model.weights=w.pt"], lambda c: _weights(c, "empty")),
    ("tv-weights", T, [*TV, "model.weights=w.pt"], lambda c: _weights(c, "garbage")),
]

MODULES = [  # python -m <module> argv, from a folder that is not the repository
    ("m-analysis-missing", ["-m", "multirun_analysis", "/nonexistent/folder"]),
    ("m-analysis-tol", ["-m", "multirun_analysis", ".", "--tol", "-1"]),
    ("m-analysis-tol2", ["-m", "multirun_analysis", ".", "--tol", "nan"]),
    ("m-analysis-group", ["-m", "multirun_analysis", ".", "--group-by", "nope"]),
    ("m-analysis-empty", ["-m", "multirun_analysis", "."]),
    ("m-dashboard-missing", ["-m", "multirun_analysis.dashboard", "/nonexistent/folder"]),
    ("m-dashboard-group", ["-m", "multirun_analysis.dashboard", ".", "--group-by", "nope"]),
    ("m-nngp-bad", ["-m", "igb.theory.nngp", "--depth", "-3"]),
    ("m-nngp-bad2", ["-m", "igb.theory.nngp", "--nope"]),
    ("m-nngp-twice", ["-m", "igb.theory.nngp", "model.depth=2", "model.depth=3"]),
    ("m-meanfield-twice", ["-m", "igb.theory.meanfield", "norm=pre", "norm=post"]),
]
BENCH = [  # bench scripts with a bad argument
    (f"bench-{p.stem}", [str(p), "--nope-not-an-option"])
    for p in sorted((ROOT / "bench").glob("bench_*.py"))
]


def verdict(proc: subprocess.CompletedProcess[str], cwd: Path, before: set[str]) -> str | None:
    after = {str(p.relative_to(cwd)) for p in cwd.rglob("*")} - before
    after = {a for a in after if "__pycache__" not in a}
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 2:
        return f"exit {proc.returncode}"
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"{len(lines)} lines on stderr"
    if after:
        return f"wrote {sorted(after)[:3]}"
    return None


def run_one(name: str, cmd: list[str], setup: object, timeout: int = 150) -> tuple[str | None, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "probe_models.py").write_text(MODELS)
        if callable(setup):
            setup(cwd)
        before = {str(p.relative_to(cwd)) for p in cwd.rglob("*")}
        env = {**os.environ, "IGB_ROOT": str(cwd), "WANDB_MODE": "offline",
               "PYTHONPATH": str(cwd), "HYDRA_FULL_ERROR": "0"}  # fmt: skip
        try:
            proc = subprocess.run([sys.executable, *cmd], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return f"no answer in {timeout} s", ""
        bad = verdict(proc, cwd, before)
        tail = proc.stderr.strip().splitlines()
        return bad, (tail[-1] if tail else "")[:220]


def preflight_only(name: str, script: str, argv: list[str], setup: object) -> str | None:
    """The entry point's pre-flight in this process (what ``train.py`` runs before Hydra):
    an escape when it lets the input through or answers with more than one line."""
    from igb.launch.preflight import check
    from igb.launch.validate import validate
    from igb.launch.validate_ensemble import validate_ensemble

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "probe_models.py").write_text(MODELS)
        if callable(setup):
            setup(cwd)
        old = os.getcwd()
        os.chdir(cwd)
        sys.path.insert(0, str(cwd))
        os.environ["IGB_ROOT"] = str(cwd)
        try:
            entry = script.removesuffix(".py")
            error = check(entry, argv, validate if entry == "train" else validate_ensemble)
        except BaseException as exc:  # noqa: BLE001 - an escape of its own kind
            error = f"\n{type(exc).__name__}: {exc}"
        finally:
            os.chdir(old)
            sys.path.remove(str(cwd))
            sys.modules.pop("probe_models", None)
    if error is None:
        return "passes the pre-flight"
    return "several lines" if "\n" in error else None


def main() -> int:
    if "--preflight" in sys.argv:  # fast: the entry points' pre-flight in this process
        escapes = 0
        for name, script, argv, setup in CASES:
            start = time.time()
            bad = preflight_only(name, script, argv, setup)
            escapes += bad is not None
            print(f"{name:22s} {time.time() - start:5.1f}s {'ESCAPE ' + bad if bad else 'ok'}",
                  flush=True)  # fmt: skip
        print(f"{len(CASES)} inputs tried at the pre-flight, {escapes} escape")
        return 0
    pick = sys.argv[1] if len(sys.argv) > 1 else ""
    todo = [(n, [str(ROOT / s), *a], f) for n, s, a, f in CASES]
    todo += [(n, a, None) for n, a in MODULES] + [(n, a, None) for n, a in BENCH]
    todo = [t for t in todo if pick in t[0]]
    escapes = 0
    for name, cmd, setup in todo:
        start = time.time()
        bad, line = run_one(name, cmd, setup)
        escapes += bad is not None
        mark = "ESCAPE " + bad if bad else "ok"
        print(f"{name:22s} {time.time() - start:5.1f}s {mark}: {line}", flush=True)
    print(f"{len(todo)} inputs tried, {escapes} escape")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
