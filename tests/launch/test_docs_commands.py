"""Every shell command that README.md and docs/*.md show runs as written.

The commands are read from the documents' ```bash blocks (continuation lines joined,
comments dropped). :data:`PLAN` says how each one runs here: as written, with small-size
overrides appended (declared below, beside the command), with a placeholder filled in,
or skipped with the reason (installs, which need the network; SLURM, GPUs, downloads, a
W&B account). A command the documents show and :data:`PLAN` does not know fails the first
test, so the documents cannot drift from what is tested.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.sizes import DOCS_DIGITS, DOCS_ENSEMBLE, DOCS_ENSEMBLE_OWN_DATA, DOCS_TRAIN, merged

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Plan:
    """How one documented command runs in the test: ``extra`` overrides appended, or
    ``skip`` (the reason). ``{sweep}`` in the command or in ``extra`` is a grid folder made
    by an earlier command."""

    extra: tuple[str, ...] = ()
    skip: str = ""


AS_WRITTEN = Plan()
INSTALL = Plan(skip="installs packages (network)")
TRAINED_JOB = Plan(
    skip="needs a trained job's folder; tests/training/test_eval.py trains one, then runs "
    "eval.py and init_from on it"
)

PLAN: dict[str, Plan] = {
    # README.md
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python train.py": Plan(
        skip="installs packages (network); its last part, `python train.py`, runs as written "
        "in tests/training/test_default_run.py"
    ),
    "python3 -m venv .venv && .venv/bin/pip install torch==2.14.1 torchvision==0.29.1 "
    "--index-url https://download.pytorch.org/whl/cpu && .venv/bin/pip install -e .": INSTALL,
    '.venv/bin/python -c "import torch, torchvision; from torchvision.ops import nms; '
    "print(torch.__version__, torchvision.__version__, nms(torch.zeros(1, 4), torch.zeros(1), "
    '0.5))"': Plan(
        skip="checks the .venv of the line above; tests/test_install.py runs the same check"
    ),
    'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest': (
        Plan(skip="installs packages (network) and runs this suite itself")
    ),
    "python train.py norm=post model=cnn -m": Plan(DOCS_TRAIN),
    "python eval.py ckpt_path=outputs/train/runs/<time>": TRAINED_JOB,
    "python train.py init_from=outputs/train/runs/<time> optimizer.lr=0.01 seed=1": TRAINED_JOB,
    "python eval.py ckpt_path=finetuned.pt model=torchvision model.arch=resnet18 norm=native "
    "dataset=cifar10": Plan(skip="needs CIFAR-10 (network) and a fine-tuned ResNet-18 file"),
    "python train.py hparams_search=placement_lr norm=post": Plan(
        (*DOCS_TRAIN, "hydra.sweeper.n_trials=2")
    ),
    "python train.py -m model=mlp,cnn,resnet,vit norm=none,pre,post": Plan(DOCS_TRAIN),
    "python ensemble.py model=mlp model.depth=10 norm=pre norm.kind=batch "
    "ensemble.n_inits=1000": Plan(DOCS_ENSEMBLE),
    "python -m igb.theory.nngp model.depth=1,5,10,20 norm=none,pre,post "
    "norm.kind=batch,layer,rms": Plan(("ensemble.eval_samples=20", "model.depth=1,5")),
    # docs/theory.md
    "python -m igb.theory.nngp model.activation=relu,gelu,tanh norm=post norm.kind=layer "
    "ensemble.eval_samples=300": Plan(("ensemble.eval_samples=20",)),
    # docs/architectures.md
    "python train.py model=torchvision model.arch=resnet50 norm=native dataset=cifar10": Plan(
        skip="downloads CIFAR-10 (network)"
    ),
    "python ensemble.py model=timm model.arch=vit_tiny_patch16_224 model.input_size=64 "
    "norm=native dataset=digits ensemble.n_inits=100": Plan(
        ("ensemble.n_inits=4", "model.input_size=32", "ensemble.eval_samples=50")
    ),
    "python ensemble.py model=torchvision model.arch=resnet50 norm=native "
    "model.weights=/path/resnet50.pth ensemble.vary=head ensemble.n_inits=1000": Plan(
        skip="needs a file of pretrained ResNet-50 weights (/path/resnet50.pth)"
    ),
    "python train.py model=custom model.cls=mypackage.nets.MyNet +model.kwargs.hidden=64 "
    "norm=native": Plan(DOCS_TRAIN),  # mypackage/nets.py: written by the test (MY_NET)
    "python train.py model=vit norm=none": AS_WRITTEN,
    "python bench/bench_architectures.py": Plan(skip="a benchmark (minutes); bench/ says how"),
    # docs/ensemble.md
    "python ensemble.py model.depth=10 model.width=100 norm=pre dataset.separation=0 "
    "ensemble.n_inits=1000": Plan(DOCS_ENSEMBLE),
    "python ensemble.py model.depth=10 model.width=100 norm=post dataset.separation=0 "
    "ensemble.n_inits=1000": Plan(DOCS_ENSEMBLE),
    "python ensemble.py dataset.num_classes=2 norm=none ensemble.n_inits=5000 logger=wandb": Plan(
        DOCS_ENSEMBLE
    ),  # W&B offline (WANDB_MODE)
    "python ensemble.py experiment=placement_ensembles -m": Plan(
        (*DOCS_ENSEMBLE, "norm_variant=none", "model.activation=relu", "model.depth=1")
    ),  # one job of its 105-job grid
    # docs/scaling.md
    "python train.py -m norm=none,pre,post seed=0,1,2": Plan(DOCS_TRAIN),
    "python train.py -m hydra/launcher=local hydra.launcher.n_jobs=4 norm=none,pre,post "
    "seed=0,1,2": Plan((*DOCS_TRAIN, "hydra.launcher.n_jobs=2")),
    "python train.py -m hydra/launcher=slurm experiment=placement_mlp_dynamics "
    "hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=1 trainer=gpu "
    "hydra.launcher.timeout_min=240 hydra.launcher.cpus_per_task=8 "
    "'hydra.launcher.setup=[\"source /path/to/venv/bin/activate\"]'": Plan(
        skip="SLURM with GPUs (tests/slurm/ runs the slurm launcher on a local cluster)"
    ),
    "python ensemble.py -m hydra/launcher=local ensemble.shards=4 ensemble.n_inits=20000": Plan(
        (
            "ensemble.shards=2",
            "ensemble.n_inits=16",
            "ensemble.eval_samples=100",
            "ensemble.batch_size=50",
        )  # fmt: skip
    ),
    "python ensemble.py -m hydra/launcher=slurm ensemble.shards=64 ensemble.n_inits=100000 "
    "model=torchvision model.arch=resnet18 norm=native hydra.launcher.cpus_per_task=4 "
    "'hydra.launcher.setup=[\"source /path/to/venv/bin/activate\"]'": Plan(
        skip="a SLURM cluster (tests/slurm/test_slurm_shards.py runs shards on a local one)"
    ),
    "python train.py trainer=ddp trainer.accelerator=cpu trainer.devices=2": Plan(DOCS_TRAIN),
    "python train.py trainer=ddp trainer.accelerator=gpu trainer.devices=4": Plan(
        skip="needs 4 GPUs"
    ),
    # README.md: where a network becomes prejudiced
    "python ensemble.py model=cnn model.depth=3 model.width=16 norm=none ensemble.n_inits=16 "
    "ensemble.eval_samples=200 ensemble.batch_size=200 ensemble.profile=true": Plan(
        DOCS_ENSEMBLE_OWN_DATA
    ),
    "python ensemble.py model=cnn model.depth=3 model.width=16 norm=none ensemble.n_inits=16 "
    "ensemble.eval_samples=200 ensemble.batch_size=200 model.neutralize=head": Plan(
        DOCS_ENSEMBLE_OWN_DATA
    ),
    "python ensemble.py model=torchvision model.arch=resnet18 norm=native "
    "model.head_init=torch_default ensemble.vary=head ensemble.n_inits=200 "
    "ensemble.eval_samples=200 ensemble.batch_size=100": Plan(DOCS_ENSEMBLE_OWN_DATA),
    # docs/architectures.md: neutralize grids, the authors' Swin and ResNet101 layouts
    "python train.py -m model=cnn model.depth=3 model.width=16 norm=none "
    "model.neutralize=none,head seed=0,1,2 dataset=digits trainer.max_epochs=5": Plan(DOCS_DIGITS),
    "python train.py -m model=torchvision model.arch=resnet18 norm=native "
    "model.neutralize=none,head seed=0,1,2 dataset=digits trainer.max_epochs=3": Plan(DOCS_DIGITS),
    "python ensemble.py experiment=authors_swin_offline -m": Plan(DOCS_ENSEMBLE),
    "python ensemble.py model=swin norm=pre,post norm.kind=layer dataset=digits "
    "ensemble.n_inits=100 ensemble.eval_samples=500 ensemble.batch_size=500 -m": Plan(
        DOCS_ENSEMBLE_OWN_DATA
    ),
    "python ensemble.py experiment=authors_resnet101_offline model.width=8,16 -m": Plan(
        (*DOCS_ENSEMBLE, "model.width=8")
    ),
    "python ensemble.py experiment=authors_resnet101_offline model.width=32,64 -m": Plan(
        skip="the same command as the widths 8,16 one above at larger widths (9 minutes)"
    ),
    # docs/theory.md: finite width
    "python -m igb.theory.nngp model.depth=20 model.width=32,100,1024 norm=none "
    "ensemble.eval_samples=200": Plan(("ensemble.eval_samples=20", "model.depth=2")),
    "OMP_NUM_THREADS=1 python bench/finite_width_grid.py --out grid.jsonl --acts relu "
    "--norms none --widths 32 --depths 5 --inits 50": Plan(
        skip="a measurement script (bench/); its pieces are tested in tests/theory"
    ),
    # docs/scaling.md
    "python -m multirun_analysis.wandb_replay outputs/train/multiruns/<time>": AS_WRITTEN,
    # docs/meanfield.md
    "python -m igb.theory.meanfield model.activation=tanh model.init=normal "
    "model.weight_var=1.0,1.76,4.0 model.bias_var=0.05": AS_WRITTEN,
    "python -m igb.theory.meanfield model.activation=tanh model.depth=10 --phase-diagram": Plan(
        ("--weight-var=0.5:3:3", "--bias-var=0:0.2:3", "--points=16")
    ),
    # docs/studies.md
    "python -m multirun_analysis outputs/<study>/multiruns/<study>_<time>": AS_WRITTEN,
    "python ensemble.py experiment=trainability_ensembles -m": Plan(
        (
            *DOCS_ENSEMBLE,
            "model.activation=tanh",
            "model.bias_var=0.05",
            "model.weight_var=2.0",
            "model.width=32",
        )
    ),  # one job of its 24-job grid, narrow
    "python train.py experiment=trainability_dynamics -m": Plan(
        (*DOCS_DIGITS, "model.weight_var=1.76", "model.width=32")
    ),  # one job of its 9-job grid, narrow
    "python ensemble.py -m model=resnet9 model.width=16 norm=post,pre norm.kind=batch,center "
    "model.global_pool=max,avg dataset.num_classes=2 dataset.shape=[3,32,32] "
    "dataset.separation=0 dataset.num_samples=1250 ensemble.n_inits=100 "
    "ensemble.eval_samples=500 ensemble.batch_size=500": Plan(
        ("ensemble.n_inits=4", "dataset.shape=[3,8,8]", "ensemble.eval_samples=64")
    ),
    "python -m multirun_analysis.dashboard --entity ME --project igb": Plan(
        skip="needs a W&B account (network)"
    ),
    "python -m multirun_analysis.dashboard --entity ME --project igb --report --group "
    "placement_mlp_dynamics-placement_mlp_dynamics_<time>": Plan(
        skip="needs a W&B account (network)"
    ),
}

#: the user's own network of docs/architectures.md's `model=custom` example (192: the
#: default 3x8x8 inputs; a lazy layer would not do: the model is built on the meta device)
MY_NET = """
from torch import nn


class MyNet(nn.Module):
    def __init__(self, num_classes: int, hidden: int = 32, inputs: int = 192) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.head(self.body(x))
"""


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) of every command in a ```bash block of the documents."""
    found = []
    for doc in DOCUMENTS:
        text = doc.read_text()
        for block in re.finditer(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
            line_no = text[: block.start()].count("\n") + 2
            joined = re.sub(r"\\\n\s*", " ", block.group(1))
            for line in joined.splitlines():
                command = re.sub(r" {2,}", " ", _strip_comment(line).strip())
                if command:
                    found.append((f"{doc.relative_to(ROOT)}:{line_no}", command))
    return found


def _strip_comment(line: str) -> str:
    """The line up to a ``#`` that starts a shell comment (not one inside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def test_every_documented_command_has_a_plan() -> None:
    shown = {command for _, command in documented_commands()}
    unknown = sorted(shown - PLAN.keys())
    assert not unknown, f"documented commands without a plan in {__file__}: {unknown}"
    stale = sorted(PLAN.keys() - shown)
    assert not stale, f"planned commands no document shows any more: {stale}"


def _with(argv: list[str], extra: tuple[str, ...]) -> list[str]:
    """``argv`` with each ``key=value`` of ``extra`` replacing the command's own value of
    that key, or added to the command's overrides when it has none."""
    # Hydra takes the overrides as one run of words, before or after a `-m` flag
    at = len(argv) - 1 if argv[-1] == "-m" else len(argv)
    return [*merged(argv[:at], extra), *argv[at:]]


def _argv(command: str, sweep: Path | None) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] in ("python", "python3"), command
    argv[0] = sys.executable
    if argv[1].endswith(".py"):
        argv[1] = str(ROOT / argv[1])
    if any("<" in a for a in argv) and sweep is not None:  # a placeholder: a grid made above
        argv = [str(sweep) if "<" in a else a for a in argv]
    return argv


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path: Path) -> None:
    (tmp_path / "mypackage").mkdir()
    (tmp_path / "mypackage" / "__init__.py").write_text("")
    (tmp_path / "mypackage" / "nets.py").write_text(MY_NET)
    pythonpath = os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")])
    env = {
        **os.environ,
        "IGB_ROOT": str(tmp_path),
        "WANDB_MODE": "offline",
        "PYTHONPATH": pythonpath,
        "OMP_NUM_THREADS": "1",
    }

    def run(where: str, command: str, sweep: Path | None) -> str | None:
        """Run one command from the checkout, as the documents do; its failure, or None."""
        plan = PLAN[command]
        argv = _with(_argv(command, sweep), plan.extra)
        started = time.monotonic()
        own = {**env, "IGB_ROOT": str(tmp_path / f"cmd{abs(hash(command))}")}  # own outputs
        proc = subprocess.run(argv, cwd=ROOT, env=own, capture_output=True, text=True, timeout=600)
        print(f"{time.monotonic() - started:6.1f} s  rc {proc.returncode}  {where}: {command}")
        if proc.returncode == 0:
            return None
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        return f"{where}: {command} (+{' '.join(plan.extra)}) -> rc {proc.returncode}: {tail}"

    shown = {c: w for w, c in reversed(documented_commands())}  # each command once
    runnable = [(w, c) for c, w in shown.items() if not PLAN[c].skip]
    # two at a time (each is mostly one process starting up); those that read a grid's
    # folder (a `<placeholder>`) after the others
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = list(pool.map(lambda wc: run(*wc, None), [x for x in runnable if "<" not in x[1]]))
    grids = sorted(tmp_path.glob("*/outputs/*/multiruns/*"), key=os.path.getmtime)
    assert grids, "no documented grid made a sweep folder"
    later = [run(w, c, grids[-1]) for w, c in runnable if "<" in c]
    failures = [f for f in (*first, *later) if f]
    assert not failures, "\n".join(failures)
