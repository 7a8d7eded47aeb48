"""The suite's named sizes: override lists that make a config small, each defined once.

A name says what the list is for; lists with different contents have different names, so a
test reads which one it runs without looking up the module it came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from igb.launch.overrides import override_key


def merged(*lists: Iterable[str]) -> list[str]:
    """The override lists as one command line: a key given again replaces the earlier value
    in its place (the entry points refuse a key given twice; Hydra's last-wins, made explicit)."""
    out: dict[str, str] = {}
    for item in (o for overrides in lists for o in overrides):
        out[override_key(item)] = item
    return list(out.values())


#: any train config tiny and fast (CPU, seconds): the default of ``make_cfg``
TINY = [
    "dataset.num_samples=240",
    "dataset.shape=[3,8,8]",
    "dataset.num_classes=4",
    "dataset.batch_size=32",
    "model.depth=2",
    "model.width=16",
    "trainer.max_epochs=2",
    # IGB_TEST_ACCELERATOR=gpu runs the suite's training on a CUDA device (the GPU check)
    f"trainer.accelerator={os.environ.get('IGB_TEST_ACCELERATOR', 'cpu')}",
    "callbacks.progress=null",
    # measurements at step 0 and epoch ends only (tests count them); tests of the
    # log-spaced schedule set it
    "callbacks.bias_stats.log_steps=0",
]

#: a small MLP ensemble on centred Gaussian points: 24 initializations, 200 points
TINY_ENSEMBLE = [
    "model.depth=2",
    "model.width=16",
    "dataset.num_samples=300",
    "dataset.shape=[10]",
    "dataset.separation=0.0",
    "ensemble.n_inits=24",
    "ensemble.eval_samples=200",
    "ensemble.batch_size=50",
    "ensemble.n_boot=100",
    "ensemble.progress=false",
]

#: training on 16x16 images, a few batches (the subprocess runs of user models)
TINY_IMAGES = [
    "dataset.num_samples=80",
    "dataset.shape=[3,16,16]",
    "dataset.num_classes=3",
    "dataset.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "callbacks.progress=null",
    "callbacks.bias_stats.log_steps=0",
]

#: an ensemble on 16x16 images: 4 initializations (the subprocess runs of user models)
TINY_IMAGES_ENSEMBLE = [
    "dataset.num_samples=80",
    "dataset.shape=[3,16,16]",
    "dataset.num_classes=3",
    "ensemble.n_inits=4",
    "ensemble.eval_samples=48",
    "ensemble.batch_size=24",
    "ensemble.n_boot=50",
    "ensemble.progress=false",
]

#: a profiled ensemble: 16 initializations on 60 points of 3 classes
SMALL_PROFILED_ENSEMBLE = ["dataset.shape=[12]", "dataset.num_classes=3",
    "dataset.num_samples=120", "ensemble.n_inits=16", "ensemble.eval_samples=60",
    "ensemble.batch_size=30", "ensemble.n_boot=50", "ensemble.progress=false",
    "ensemble.profile=true"]  # fmt: skip

#: tiny but not trivial training with CSV logs: 300 points (240 train), 4 classes, two
#: epochs of 8 steps
SMALL_CSV_TRAIN = [
    "logger=csv",
    "dataset.num_samples=300",
    "dataset.shape=[20]",
    "dataset.num_classes=4",
    "model.depth=3",
    "model.width=32",
]

#: CSV-logged training of a Post-BN MLP in batches of 30 with six log-spaced measurements
#: (the gradient-norm tests)
SMALL_CSV_TRAIN_POST = [
    "logger=csv",
    "dataset.num_samples=300",
    "dataset.shape=[20]",
    "dataset.batch_size=30",
    "model.depth=3",
    "model.width=32",
    "norm=post",
    "optimizer.lr=0.05",
    "callbacks.bias_stats.log_steps=6",
]

#: a documented training command made short (the command's own keys win where they differ)
DOCS_TRAIN = ("dataset.num_samples=240", "trainer.max_epochs=1", "callbacks.progress=null")
#: a documented ensemble command made short
DOCS_ENSEMBLE = ("ensemble.n_inits=8", "dataset.num_samples=240", "ensemble.eval_samples=100")
#: a documented ensemble command on a dataset of its own (no dataset.num_samples) made short
DOCS_ENSEMBLE_OWN_DATA = ("ensemble.n_inits=4", "ensemble.eval_samples=64",
    "ensemble.batch_size=64")  # fmt: skip
#: a documented training grid on the bundled digits: one seed, one short epoch
DOCS_DIGITS = ("seed=0", "+dataset.subset=300", "trainer.max_epochs=1", "callbacks.progress=null")
