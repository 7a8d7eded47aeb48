"""Datamodules and the in-memory loader: real on-disk formats (tiny files written here),
seeded splits, train-only standardisation, deterministic rank-sharded batches.

Nothing here touches the network: torchvision's download helpers are replaced by fakes
that fail (or write the tiny files), and every real dataset is read with download off.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from helpers.dataset_files import (
    N_TEST,
    N_TRAIN,
    cifar_rows,
    mnist_label,
    sample_ids,
    write_cifar10,
    write_cifar100,
    write_mnist,
)
from omegaconf import OmegaConf
from torchvision import datasets

from igb.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DatasetCorruptedError,
    DatasetNotFoundError,
    DigitsDataModule,
    FashionMNISTDataModule,
    GaussianBlobsDataModule,
    InMemoryDataModule,
    InMemoryLoader,
    MNISTDataModule,
)
from igb.errors import ConfigError
from igb.logging.quiet import quiet_lightning
from igb.training.datamodule import as_lightning


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt of torchvision to download fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to download: {args} {kwargs}")

    for module in (datasets.mnist, datasets.cifar, datasets.utils):
        monkeypatch.setattr(module, "download_and_extract_archive", refuse, raising=False)
    monkeypatch.setattr(datasets.utils, "download_url", refuse)


# -- real formats round-trip ------------------------------------------------------------------


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_mnist_idx_files_round_trip(tmp_path: Path, cls: type) -> None:
    arrays = write_mnist(tmp_path, cls.DATASET.__name__)
    dm = cls(data_dir=str(tmp_path), standardize=False, val_fraction=0.2, seed=3)
    dm.check_available()
    dm.setup()
    (xtr, ytr), (xva, yva), (xte, yte) = (dm.split_tensors(s) for s in ("train", "val", "test"))
    assert xtr.shape == (24, 1, 28, 28) and xva.shape == (6, 1, 28, 28)
    assert xte.shape == (N_TEST, 1, 28, 28)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.long
    assert dm.input_shape == (1, 28, 28) and dm.num_classes == 10
    assert dm.class_names == list(cls.DATASET.classes)
    # official test split in file order, every pixel as written
    assert torch.equal(xte[:, 0], torch.from_numpy(arrays["t10k"]).float() / 255)
    assert yte.tolist() == [mnist_label(i) for i in range(100, 100 + N_TEST)]
    # train + val: the train file, shuffled, each sample once, labels travel with images
    ids = sample_ids(xtr) + sample_ids(xva)
    assert sorted(ids) == list(range(N_TRAIN))
    assert torch.cat([ytr, yva]).tolist() == [mnist_label(i) for i in ids]
    k = sample_ids(xtr)[0]
    assert torch.equal(xtr[0, 0], torch.from_numpy(arrays["train"][k]).float() / 255)


def test_cifar10_pickles_round_trip(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")  # what the official Python 2 pickles give
    assert set(batch) == {b"batch_label", b"data", b"labels"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (6, 3072)
    dm = CIFAR10DataModule(
        data_dir=str(tmp_path), standardize=False, val_fraction=0.1, verify=False
    )
    dm.setup()
    (xtr, ytr), (xva, yva), (xte, yte) = (dm.split_tensors(s) for s in ("train", "val", "test"))
    assert (len(xtr), len(xva), len(xte)) == (27, 3, N_TEST)
    assert xtr.shape[1:] == (3, 32, 32) and dm.input_shape == (3, 32, 32)
    assert dm.class_names == [f"c10_{i}" for i in range(10)]
    # channel-first layout: the G plane's pixel (1, 2) is where it was written
    assert sample_ids(xte) == list(range(100, 100 + N_TEST))
    assert torch.round(xte[:, 1, 1, 2] * 255).long().tolist() == [
        200 + i % 50 for i in range(100, 110)
    ]
    assert yte.tolist() == [i % 10 for i in range(100, 110)]
    ids = sample_ids(xtr) + sample_ids(xva)
    assert sorted(ids) == list(range(N_TRAIN))
    assert torch.cat([ytr, yva]).tolist() == [i % 10 for i in ids]
    expected = torch.from_numpy(cifar_rows(N_TEST, 100).reshape(-1, 3, 32, 32)).float() / 255
    assert torch.equal(xte, expected)


def test_cifar_md5_verification_names_the_file(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path))  # verify=True: md5 of the real release
    dm.check_available()  # the files are there
    with pytest.raises(DatasetCorruptedError) as info:
        dm.setup()
    msg = str(info.value)
    assert "\n" not in msg and "data_batch_1" in msg and "dataset.verify=false" in msg


def test_cifar100_fine_labels_and_names(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    dm = CIFAR100DataModule(
        data_dir=str(tmp_path), standardize=False, val_fraction=0.0, verify=False
    )
    assert dm.num_classes == 100
    dm.setup()
    x, y = dm.split_tensors("train")
    assert len(x) == N_TRAIN and len(dm.split_tensors("val")[0]) == 0
    assert dm.class_names == [f"fine{i}" for i in range(100)]
    assert y.tolist() == [(i * 3) % 100 for i in sample_ids(x)]
    xt, yt = dm.split_tensors("test")
    assert yt.tolist() == [(i * 3) % 100 for i in range(100, 100 + N_TEST)]
    assert sample_ids(xt) == list(range(100, 100 + N_TEST))


def test_subset_slices_the_shuffled_train_pool_only(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    kw = dict(data_dir=str(tmp_path), standardize=False, verify=False, val_fraction=0.25)
    dm = CIFAR10DataModule(subset=12, seed=1, **kw)
    sizes = dm.describe()["sizes"]
    assert sizes == {"train": 9, "val": 3, "test": N_TEST}
    ids = sample_ids(dm.split_tensors("train")[0]) + sample_ids(dm.split_tensors("val")[0])
    assert len(set(ids)) == 12 and ids != list(range(12))  # a seeded shuffle, not the head
    other = CIFAR10DataModule(subset=12, seed=2, **kw)
    assert set(sample_ids(other.split_tensors("train")[0])) != set(
        sample_ids(dm.split_tensors("train")[0])
    )


def test_per_channel_standardisation_uses_train_statistics(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    kw = dict(data_dir=str(tmp_path), verify=False, val_fraction=0.2, seed=5)
    raw = CIFAR10DataModule(standardize=False, **kw)
    std = CIFAR10DataModule(**kw)
    xr = raw.split_tensors("train")[0]
    assert xr.mean(dim=(0, 2, 3)).diff().abs().min() > 0.15  # channels really differ
    xs = std.split_tensors("train")[0]
    assert torch.allclose(xs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(xs.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    assert std.x_mean is not None and std.x_mean.shape == (1, 3, 1, 1)
    mean = xr.mean(dim=(0, 2, 3), keepdim=True)
    sd = xr.std(dim=(0, 2, 3), keepdim=True)
    for split in ("val", "test"):
        expected = (raw.split_tensors(split)[0] - mean) / sd
        got = std.split_tensors(split)[0]
        assert torch.allclose(got, expected, atol=1e-5)
        assert got.mean(dim=(0, 2, 3)).abs().max() > 1e-3  # not its own statistics
    assert len(std.describe()["standardization"]["mean"]) == 3


# -- missing data: one line, no network ---------------------------------------------------------

MISSING = [
    (MNISTDataModule, "MNIST/raw/train-images-idx3-ubyte"),
    (FashionMNISTDataModule, "FashionMNIST/raw/t10k-labels-idx1-ubyte"),
    (CIFAR10DataModule, "cifar-10-batches-py/data_batch_1"),
    (CIFAR100DataModule, "cifar-100-python/meta"),
]


@pytest.mark.parametrize(("cls", "expected_file"), MISSING)
def test_missing_dataset_is_one_line_naming_the_key(
    tmp_path: Path, cls: type, expected_file: str
) -> None:
    missing = tmp_path / "no-data-here"
    dm = cls(data_dir=str(missing), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.check_available()
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "\n" not in msg
    for part in ("dataset.data_dir", str(missing), expected_file, "set dataset.download=true"):
        assert part in msg, (part, msg)
    with pytest.raises(DatasetNotFoundError):
        dm.setup()
    assert not missing.exists()  # nothing written, nothing fetched


def test_partial_download_is_reported_missing(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetNotFoundError, match="test_batch"):
        CIFAR10DataModule(data_dir=str(tmp_path), verify=False).check_available()


def test_relative_data_dir_is_shown_resolved(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError) as info:
        MNISTDataModule(data_dir="data").check_available()
    assert "dataset.data_dir=data" in str(info.value) and str(tmp_path / "data") in str(info.value)


def test_download_goes_through_torchvision_into_data_dir(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "mirror"
    arrays = write_mnist(source, "MNIST")
    fetched: list[str] = []

    def fake_fetch(url, download_root, filename=None, md5=None, **kwargs):
        name = Path(filename).stem  # the .gz archive unpacks to the IDX file
        fetched.append(name)
        Path(download_root, name).write_bytes((source / "MNIST" / "raw" / name).read_bytes())

    monkeypatch.setattr(datasets.mnist, "download_and_extract_archive", fake_fetch)
    root = tmp_path / "data"
    dm = MNISTDataModule(data_dir=str(root), download=True, standardize=False)
    dm.check_available()  # download on: nothing to complain about yet
    dm.prepare_data()
    assert sorted(fetched) == sorted(p.name for p in dm.expected_files())
    dm.setup()
    assert torch.equal(dm.split_tensors("test")[0][:, 0], torch.from_numpy(arrays["t10k"]) / 255)
    n = len(fetched)
    dm.prepare_data()  # present now: not fetched again
    assert len(fetched) == n


@pytest.mark.parametrize("cls", [GaussianBlobsDataModule, DigitsDataModule])
def test_generated_and_bundled_data_need_no_files(tmp_path: Path, cls: type) -> None:
    cls(data_dir=str(tmp_path / "nowhere")).check_available()


# -- Gaussian blobs ----------------------------------------------------------------------------


def _all(dm: InMemoryDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [dm.split_tensors(s) for s in ("train", "val", "test")]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def test_blobs_are_seeded() -> None:
    kw = dict(num_classes=4, num_samples=200, shape=(2, 5))
    a, b, c = (GaussianBlobsDataModule(seed=s, **kw) for s in (7, 7, 8))
    for split in ("train", "val", "test"):
        assert torch.equal(a.split_tensors(split)[0], b.split_tensors(split)[0])
        assert torch.equal(a.split_tensors(split)[1], b.split_tensors(split)[1])
    assert not torch.allclose(a.split_tensors("train")[0][:10], c.split_tensors("train")[0][:10])
    assert a.split_tensors("train")[0].shape[1:] == (2, 5) and a.input_shape == (2, 5)


def test_blobs_balanced_classes_and_names() -> None:
    dm = GaussianBlobsDataModule(num_classes=7, num_samples=700, shape=[4])
    _, y = _all(dm)
    assert torch.bincount(y, minlength=7).tolist() == [100] * 7
    assert dm.class_names == [f"blob{i}" for i in range(7)] and dm.num_classes == 7


def test_blobs_shape_from_listconfig_and_per_feature_standardisation() -> None:
    dm = GaussianBlobsDataModule(
        num_classes=3, num_samples=300, shape=OmegaConf.create([20]), separation=3.0
    )
    assert dm.expected_input_shape() == (20,)
    x, _ = dm.split_tensors("train")
    assert x.shape == (240, 20)
    assert torch.allclose(x.mean(0), torch.zeros(20), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(20), atol=1e-5)
    assert dm.x_std is not None and dm.x_std.shape == (1, 20)
    assert dm.split_tensors("val")[0].mean(0).abs().max() > 1e-3


def _nearest_mean_accuracy(dm: InMemoryDataModule) -> tuple[float, float]:
    x, y = dm.split_tensors("train")
    means = torch.stack([x[y == c].mean(0) for c in range(dm.num_classes)])
    xt, yt = dm.split_tensors("test")
    pred = torch.cdist(xt, means).argmin(1)
    spread = (means - means.mean(0)).norm(dim=1).mean().item()
    return (pred == yt).float().mean().item(), spread


def test_blobs_separation_controls_class_structure() -> None:
    kw = dict(num_classes=10, num_samples=2000, shape=[100], seed=0)
    acc0, spread0 = _nearest_mean_accuracy(GaussianBlobsDataModule(separation=0.0, **kw))
    acc5, spread5 = _nearest_mean_accuracy(GaussianBlobsDataModule(separation=5.0, **kw))
    assert acc0 < 0.2  # chance is 0.1: labels carry no information
    assert acc5 > 0.95
    # with separation 0 the class means are only sampling noise, sqrt(D / n_c) ~ 0.8
    assert spread0 < 1.2 and spread5 > 3.0


def test_splits_are_disjoint_and_cover_the_pool() -> None:
    dm = GaussianBlobsDataModule(num_classes=5, num_samples=500, shape=[6], seed=4)
    rows = {
        s: {tuple(r) for r in dm.split_tensors(s)[0].tolist()} for s in ("train", "val", "test")
    }
    assert [len(rows[s]) for s in ("train", "val", "test")] == [400, 50, 50]
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"]
    assert not rows["val"] & rows["test"]


def test_digits_offline() -> None:
    dm = DigitsDataModule(val_fraction=0.1, test_fraction=0.1)
    sizes = dm.describe()["sizes"]
    assert sum(sizes.values()) == 1797
    assert sizes == {"train": 1439, "val": 179, "test": 179}
    assert dm.input_shape == (1, 8, 8) and dm.num_classes == 10
    assert dm.class_names == [str(i) for i in range(10)]
    raw = DigitsDataModule(standardize=False)
    x, _ = _all(raw)
    assert x.min() == 0.0 and x.max() == 1.0


def test_shipped_digits_equal_scikit_learns() -> None:
    """The shipped file read with numpy gives scikit-learn's load_digits, image for image
    (scikit-learn is a dev dependency only, for this check)."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from igb.data.digits import load_digits_table

    table = load_digits_table()
    bunch = sklearn_datasets.load_digits()
    assert np.array_equal(table[:, :64].reshape(-1, 8, 8), bunch.images)
    assert np.array_equal(table[:, 64], bunch.target)


# -- datamodule behaviour ------------------------------------------------------------------------


def test_setup_is_idempotent_and_cheap(monkeypatch) -> None:
    dm = GaussianBlobsDataModule(num_classes=3, num_samples=90, shape=[4])
    dm.setup("fit")
    first = dm.split_tensors("train")

    def boom(*a, **k):
        raise AssertionError("loaded twice")

    monkeypatch.setattr(dm, "_load", boom)
    dm.setup("fit")
    dm.setup("test")
    assert dm.split_tensors("train")[0] is first[0]


def test_unknown_split_names_allowed_values() -> None:
    dm = GaussianBlobsDataModule(num_classes=2, num_samples=20, shape=[2])
    with pytest.raises(ValueError, match="train, val, test"):
        dm.split_tensors("validation")


def test_describe_reports_sizes_shape_and_stats() -> None:
    dm = GaussianBlobsDataModule(num_classes=4, num_samples=100, shape=(3, 2, 2))
    d = dm.describe()
    assert d["sizes"] == {"train": 80, "val": 10, "test": 10}
    assert d["input_shape"] == [3, 2, 2] and d["num_classes"] == 4
    assert set(d["standardization"]) == {"mean", "std"} and len(d["standardization"]["std"]) == 3
    flat = GaussianBlobsDataModule(num_classes=4, num_samples=100, shape=[40]).describe()
    assert flat["standardization"]["features"] == 40
    assert (
        GaussianBlobsDataModule(standardize=False, num_samples=20).describe()["standardization"]
        is None
    )


def test_bad_values_name_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset.num_classes=5"):
        CIFAR10DataModule(data_dir=str(tmp_path), num_classes=5)
    with pytest.raises(ConfigError, match="dataset.val_fraction"):
        GaussianBlobsDataModule(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError, match="dataset.subset"):
        MNISTDataModule(subset=0)
    with pytest.raises(ConfigError, match="dataset.batch_size"):
        DigitsDataModule(batch_size=0)
    assert CIFAR100DataModule(num_classes=100).num_classes == 100


def test_shape_and_classes_known_before_loading(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(tmp_path))
    assert dm.input_shape == (1, 28, 28) and dm.expected_num_classes() == 10
    assert dm.class_names[0] == "T-shirt/top"
    assert CIFAR100DataModule().expected_input_shape() == (3, 32, 32)


def test_datamodule_loaders_drop_single_train_batch_and_shard_by_trainer() -> None:
    # 81 train samples, batch 16: the trailing batch would hold 1 sample
    dm = GaussianBlobsDataModule(
        num_classes=3, num_samples=101, shape=[2], val_fraction=0.1, test_fraction=0.1,
        batch_size=16, eval_batch_size=9,
    )  # fmt: skip
    assert dm.describe()["sizes"]["train"] == 81
    train = dm.train_dataloader()
    assert len(train) == 5 and all(len(xb) == 16 for xb, _ in train)
    val = dm.val_dataloader()
    assert sum(len(xb) for xb, _ in val) == 10 and len(val) == 2  # eval keeps every sample
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)  # as Lightning attaches it
    shard = dm.test_dataloader()
    assert (shard.rank, shard.world_size) == (1, 2) and shard.num_samples == 5


# -- the loader ------------------------------------------------------------------------------


def _order(loader: InMemoryLoader) -> list[int]:
    return torch.cat([yb for _, yb in loader]).tolist()


def _loader(n: int, **kw) -> InMemoryLoader:
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)
    return InMemoryLoader(x, torch.arange(n), **kw)


def test_loader_covers_each_index_once_per_epoch() -> None:
    loader = _loader(103, batch_size=10, shuffle=True, seed=0)
    assert len(loader) == 11
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == 11
        assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in batches)  # rows stay paired
        assert sorted(torch.cat([yb for _, yb in batches]).tolist()) == list(range(103))


def test_loader_shuffle_is_seeded_per_epoch() -> None:
    a, b = (_loader(50, batch_size=8, shuffle=True, seed=3) for _ in range(2))
    other = _loader(50, batch_size=8, shuffle=True, seed=4)
    e0 = _order(a)
    assert e0 == _order(b) and e0 != list(range(50))
    assert e0 != _order(other)
    e1 = _order(a)
    assert e1 != e0 and e1 == _order(b)
    a.set_epoch(0)
    assert _order(a) == e0 and _order(a) == e1  # set_epoch pins the next epoch, then on
    c = _loader(50, batch_size=8, shuffle=True, seed=3)
    iter(c)  # what Lightning does to check iterability: must not use up an epoch
    assert _order(c) == e0
    assert c.sampler is c  # Lightning calls dataloader.sampler.set_epoch(epoch)


def test_loader_without_shuffle_slices_views_in_order() -> None:
    loader = _loader(25, batch_size=10)
    batches = list(loader)
    assert [len(yb) for _, yb in batches] == [10, 10, 5]
    assert _order(loader) == list(range(25))
    assert batches[1][0].untyped_storage().data_ptr() == loader.x.untyped_storage().data_ptr()


def test_loader_trailing_batches() -> None:
    assert len(_loader(21, batch_size=10, shuffle=True)) == 2  # a 1-sample batch is dropped
    assert sum(len(y) for _, y in _loader(21, batch_size=10, shuffle=True)) == 20
    assert len(_loader(21, batch_size=10, shuffle=True, drop_last_single=False)) == 3
    assert len(_loader(21, batch_size=10)) == 3  # evaluation keeps it
    assert len(_loader(22, batch_size=10, shuffle=True)) == 3  # 2 samples train fine
    assert len(_loader(25, batch_size=10, drop_last=True)) == 2
    assert len(_loader(0, batch_size=4)) == 0 and list(_loader(0, batch_size=4)) == []


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("n", [100, 101])
def test_loader_rank_shards(n: int, shuffle: bool) -> None:
    for epoch in (0, 1):
        shards = []
        for rank in (0, 1):
            loader = _loader(n, batch_size=16, shuffle=shuffle, seed=9, rank=rank, world_size=2)
            loader.set_epoch(epoch)
            shards.append(_order(loader))
            assert len(loader) == 4  # same number of batches on every rank
        assert len(shards[0]) == len(shards[1]) == (n + 1) // 2
        assert set(shards[0]) | set(shards[1]) == set(range(n))  # every sample seen
        assert len(set(shards[0]) & set(shards[1])) == n % 2  # only the padded repeat
        assert len(set(shards[0])) == len(shards[0])


def test_loader_under_lightning_follows_trainer_epochs(tmp_path: Path) -> None:
    dm = GaussianBlobsDataModule(
        num_classes=3, num_samples=60, shape=[4], batch_size=16, val_fraction=0.2,
        test_fraction=0.0, seed=2,
    )  # fmt: skip
    seen: list[list[int]] = []

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 3)

        def on_train_epoch_start(self) -> None:
            seen.append([])

        def training_step(self, batch, _):
            x, y = batch
            seen[-1].extend(y.tolist())
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    quiet_lightning()  # as igb.training.run.build does for every run
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Tiny(), datamodule=as_lightning(dm))
    _, y = dm.split_tensors("train")
    ref = InMemoryLoader(dm.split_tensors("train")[0], y, 16, shuffle=True, seed=2)
    expected = []
    for epoch in range(3):
        ref.set_epoch(epoch)
        expected.append(_order(ref))
    assert seen == expected and seen[0] != seen[1]
