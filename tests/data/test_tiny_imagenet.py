"""TinyImageNet read from a small tree in the real tiny-imagenet-200 layout (real JPEGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igb.data import DatasetCorruptedError, DatasetNotFoundError, TinyImageNetDataModule

WNIDS = [f"n{k:08d}" for k in range(200)]
PER_CLASS_TRAIN = 2
VAL_CLASSES = (0, 1, 199)


def _colour(label: int, i: int) -> tuple[int, int, int]:
    """A flat colour that identifies (class, image): JPEG keeps flat colours within +-2."""
    return (label, 40 * i + 20, 255 - label)


def write_tiny_imagenet(root: Path) -> Path:
    """The official folder layout with flat-colour 64x64 JPEGs; val images of 3 classes."""
    top = root / "tiny-imagenet-200"
    (top / "val" / "images").mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (top / "words.txt").write_text("n00000000\tgoldfish, Carassius auratus\n")
    for label, wnid in enumerate(WNIDS):
        folder = top / "train" / wnid / "images"
        folder.mkdir(parents=True)
        (top / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(PER_CLASS_TRAIN):
            Image.new("RGB", (64, 64), _colour(label, i)).save(folder / f"{wnid}_{i}.JPEG")
    lines = []
    for n, label in enumerate(VAL_CLASSES):
        name = f"val_{n}.JPEG"
        img = Image.new("L" if n == 2 else "RGB", (64, 64), 77 if n == 2 else _colour(label, 3))
        img.save(top / "val" / "images" / name)
        lines.append(f"{name}\t{WNIDS[label]}\t0\t0\t63\t63")
    (top / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return top


def test_reads_the_official_layout(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path)
    dm = TinyImageNetDataModule(data_dir=str(tmp_path), standardize=False, val_fraction=0.0)
    dm.setup()
    x, y = dm.split_tensors("train")
    assert x.shape == (400, 3, 64, 64) and x.dtype == torch.float32
    assert torch.bincount(y, minlength=200).tolist() == [PER_CLASS_TRAIN] * 200
    # every image decodes to its own flat colour: label and index read back from pixels
    centre = (x[:, :, 32, 32] * 255).round()
    assert torch.allclose(centre[:, 0], y.float(), atol=3)
    assert torch.allclose(centre[:, 2], 255 - y.float(), atol=3)
    xt, yt = dm.split_tensors("test")
    assert yt.tolist() == list(VAL_CLASSES)  # annotation order (sorted file names)
    assert torch.allclose(xt[2] * 255, torch.full((3, 64, 64), 77.0), atol=2)  # greyscale->RGB
    assert dm.class_names[0] == "goldfish" and dm.class_names[1] == WNIDS[1]
    assert dm.num_classes == 200


def test_classes_selection_and_val_split(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path)
    dm = TinyImageNetDataModule(data_dir=str(tmp_path), classes=[199, 0], val_fraction=0.25)
    dm.setup()
    sizes = {s: dm.split_tensors(s)[1].numel() for s in ("train", "val", "test")}
    assert sizes == {"train": 3, "val": 1, "test": 2}
    assert sorted(dm.split_tensors("test")[1].tolist()) == [0, 1]  # 199 -> 0, 0 -> 1


def test_missing_folder_is_one_line_and_nothing_downloads(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    dm = TinyImageNetDataModule(data_dir=str(missing))
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup()
    msg = str(info.value)
    assert "\n" not in msg and "tiny-imagenet-200/wnids.txt" in msg
    assert "dataset.download=true" in msg
    assert not missing.exists()


def test_incomplete_tree_names_the_problem(tmp_path: Path) -> None:
    top = write_tiny_imagenet(tmp_path)
    (top / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(DatasetCorruptedError, match="val_1.JPEG"):
        TinyImageNetDataModule(data_dir=str(tmp_path)).setup()
    for f in (top / "train" / WNIDS[5] / "images").iterdir():
        f.unlink()
    with pytest.raises(DatasetCorruptedError, match=WNIDS[5]):
        TinyImageNetDataModule(data_dir=str(tmp_path)).setup()


def test_wrong_image_size_is_reported(tmp_path: Path) -> None:
    top = write_tiny_imagenet(tmp_path)
    bad = top / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(bad, format="JPEG")
    with pytest.raises(DatasetCorruptedError, match="32x32"):
        TinyImageNetDataModule(data_dir=str(tmp_path)).setup()
