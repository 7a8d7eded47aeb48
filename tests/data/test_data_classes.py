"""``dataset.classes`` (keep / merge / relabel), ``dataset.class_proportions`` (train-only
imbalance) and ``dataset.shift`` on a hand-made dataset whose every sample is known, and
on CIFAR-10 files written here in the real on-disk format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.dataset_files import N_TEST, N_TRAIN, sample_ids, write_cifar10

from igb.data import CIFAR10DataModule, DigitsDataModule, GaussianBlobsDataModule
from igb.data.base import Arrays, InMemoryDataModule
from igb.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


class HandMade(InMemoryDataModule):
    """60 samples of 4 classes: sample ``i`` is the 1-d input ``[i]`` with label ``i % 4``."""

    INPUT_SHAPE = (1,)
    NUM_CLASSES = 4
    CLASS_NAMES = ("a", "b", "c", "d")

    def _load(self) -> Arrays:
        i = torch.arange(60)
        return i.float().unsqueeze(1), i % 4, None, None


def _all(dm: InMemoryDataModule) -> dict[int, int]:
    """sample id -> label over the three splits."""
    out = {}
    for split in ("train", "val", "test"):
        x, y = dm.split_tensors(split)
        out.update(zip(x[:, 0].round().long().tolist(), y.tolist(), strict=True))
    return out


def test_classes_keep_relabel_in_the_order_given() -> None:
    dm = HandMade(classes=[3, 1], standardize=False, val_fraction=0.2, test_fraction=0.2)
    assert dm.num_classes == 2 and dm.class_names == ["d", "b"]
    labels = _all(dm)
    assert sorted(labels) == [i for i in range(60) if i % 4 in (1, 3)]
    assert all(label == (0 if i % 4 == 3 else 1) for i, label in labels.items())
    assert dm.describe()["class_ids"] == [[3], [1]]


def test_classes_merge_inner_lists() -> None:
    dm = HandMade(classes=[[0, 2], [3]], standardize=False)
    assert dm.num_classes == 2 and dm.class_names == ["a+c", "d"]
    labels = _all(dm)
    assert sorted(labels) == [i for i in range(60) if i % 4 != 1]
    assert all(label == (1 if i % 4 == 3 else 0) for i, label in labels.items())
    assert dm.describe()["class_ids"] == [[0, 2], [3]]


def test_class_proportions_thin_the_train_split_only() -> None:
    full = HandMade(classes=[0, 1], standardize=False, val_fraction=0.2, test_fraction=0.2)
    thin = HandMade(
        classes=[0, 1], class_proportions=[1.0, 0.25], standardize=False, val_fraction=0.2,
        test_fraction=0.2,
    )  # fmt: skip
    counts = torch.bincount(full.split_tensors("train")[1], minlength=2).tolist()
    n1 = int(0.25 * counts[1] + 0.5)
    assert torch.bincount(thin.split_tensors("train")[1], minlength=2).tolist() == [counts[0], n1]
    assert thin.describe()["class_counts"]["train"] == [counts[0], n1]
    for split in ("val", "test"):  # evaluation splits are untouched
        assert torch.equal(thin.split_tensors(split)[0], full.split_tensors(split)[0])
    # the kept class-1 samples are the first ones of the (seeded) train order
    kept = thin.split_tensors("train")[0][thin.split_tensors("train")[1] == 1, 0].tolist()
    order = full.split_tensors("train")[0][full.split_tensors("train")[1] == 1, 0].tolist()
    assert sorted(kept) == sorted(order[:n1])


def test_shift_is_added_after_standardisation() -> None:
    plain = HandMade(classes=[0, 1])
    shifted = HandMade(classes=[0, 1], shift=3.0)
    for split in ("train", "val", "test"):
        torch.testing.assert_close(
            shifted.split_tensors(split)[0], plain.split_tensors(split)[0] + 3
        )
    assert abs(float(shifted.split_tensors("train")[0].mean()) - 3.0) < 1e-5


def test_cifar10_files_load_through_classes(tmp_path: Path) -> None:
    write_cifar10(tmp_path)  # labels are sample id % 10
    dm = CIFAR10DataModule(
        data_dir=str(tmp_path), standardize=False, verify=False, val_fraction=0.0,
        classes=[[0, 1, 8, 9], [3, 4, 5, 7]],
    )  # fmt: skip
    assert dm.num_classes == 2  # known before loading: the preflight builds the model with it
    (xtr, ytr), (xte, yte) = dm.split_tensors("train"), dm.split_tensors("test")
    assert dm.class_names == ["c10_0+c10_1+c10_8+c10_9", "c10_3+c10_4+c10_5+c10_7"]
    group = {0: 0, 1: 0, 8: 0, 9: 0, 3: 1, 4: 1, 5: 1, 7: 1}
    assert sorted(sample_ids(xtr)) == [i for i in range(N_TRAIN) if i % 10 in group]
    assert ytr.tolist() == [group[i % 10] for i in sample_ids(xtr)]
    assert sample_ids(xte) == [i for i in range(100, 100 + N_TEST) if i % 10 in group]
    assert yte.tolist() == [group[i % 10] for i in sample_ids(xte)]
    cats_dogs = CIFAR10DataModule(
        data_dir=str(tmp_path), standardize=False, verify=False, classes=[3, 5]
    )
    assert cats_dogs.num_classes == 2
    assert cats_dogs.split_tensors("test")[1].tolist() == [0, 1]  # ids 103 (cat), 105 (dog)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": [3, 12]}, "class id 12 does not exist; allowed: ids 0..9"),
        ({"classes": [[0, 3], [3, 5]]}, "class id 3 is listed twice"),
        ({"classes": [[0, 1, 2]]}, "at least 2 are needed"),
        ({"classes": [3, 5], "class_proportions": [1.0]}, "has 1 entries but the dataset has 2"),
        ({"class_proportions": [1.0] * 9 + [0.0]}, "0.0 is not a fraction in (0, 1]"),
        ({"classes": [3, 5], "class_proportions": [1.0, 1.5]}, "1.5 is not a fraction"),
        ({"shift": float("nan")}, "dataset.shift=nan must be a finite number"),
    ],
)
def test_bad_class_settings_name_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        DigitsDataModule(**kwargs)
    assert message in str(err.value)
    assert str(err.value).startswith("dataset.")


def test_blobs_select_from_generated_classes() -> None:
    dm = GaussianBlobsDataModule(num_classes=5, num_samples=100, shape=[3], classes=[4, 0])
    assert dm.num_classes == 2 and dm.class_names == ["blob4", "blob0"]
    assert torch.bincount(dm.split_tensors("train")[1]).sum() > 0


def test_cli_rejects_bad_classes_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "train.py", "dataset=digits", "dataset.classes=[1,1]",
         f"hydra.run.dir={tmp_path}/run", f"paths.log_dir={tmp_path}/logs"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset.classes" in lines[0] and "listed twice" in lines[0]
    assert not any(tmp_path.iterdir())
