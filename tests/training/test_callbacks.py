"""The statistics callback, through the real config tree and ``igb.launch.train_job.run``.

Each run writes metrics.csv (the CSV logger) into its job folder; the tests read the
callback's rows back from there and compare them with independent computations.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers.conf_values import bias_stats_callback
from helpers.sizes import SMALL_CSV_TRAIN
from torch import nn

from igb.callbacks import log_spaced_steps
from igb.compat import load_checkpoint
from igb.data.instantiate import instantiate_datamodule
from igb.launch.train_job import run
from igb.logging.quiet import quiet_lightning
from igb.nn import build_model
from igb.training.datamodule import as_lightning


def _run(make_cfg, *overrides: str, job: str):
    cfg = make_cfg(*SMALL_CSV_TRAIN, *overrides, job=job)
    run(cfg)
    out = Path(cfg.paths.output_dir)
    return cfg, pd.read_csv(out / "metrics.csv")


def _stat_rows(metrics: pd.DataFrame, split: str = "train") -> pd.DataFrame:
    return metrics[metrics[f"igb/{split}/f_max"].notna()].reset_index(drop=True)


def _cols(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}/{i}" for i in range(start, start + n)]


def _independent_step0_f(cfg, batch_size: int) -> torch.Tensor:
    """f of the freshly initialised model: train-mode BN with momentum 0, plain batches."""
    dm = instantiate_datamodule(cfg.dataset)
    dm.setup("fit")
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    model.train()
    x, _ = dm.split_tensors("train")
    with torch.no_grad():
        pred = torch.cat(
            [model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
        )
    return torch.bincount(pred, minlength=dm.num_classes).double() / len(x)


def test_rows_ranking_and_exact_step0_f_and_no_trace_on_training(make_cfg) -> None:
    log_steps = 6
    cfg, metrics = _run(
        make_cfg,
        "norm=post",
        "dataset.batch_size=30",
        "callbacks.bias_stats.batch_size=64",
        f"callbacks.bias_stats.log_steps={log_steps}",
        job="stats",
    )
    c = cfg.dataset.num_classes
    rows = _stat_rows(metrics)
    steps_per_epoch, epochs = 8, cfg.trainer.max_epochs
    total = steps_per_epoch * epochs

    # rows: step 0, every epoch end, the log-spaced steps; each step once, with its epoch
    epoch_ends = {steps_per_epoch * (e + 1) for e in range(epochs)}
    expected = sorted({0} | epoch_ends | set(log_spaced_steps(log_steps, total)))
    assert rows["step"].tolist() == expected
    assert rows["epoch"].tolist() == [max(s - 1, 0) // steps_per_epoch for s in expected]
    assert len(expected) > 2 + epochs  # some log-spaced steps fall inside epochs

    # f of every row and split sums to 1; val and train measured together
    for split in ("train", "val"):
        f = _stat_rows(metrics, split)[_cols(f"igb/{split}/f", c)]
        assert ((f.sum(axis=1) - 1).abs() < 1e-12).all()
    assert _stat_rows(metrics, "val")["step"].tolist() == expected

    # step-0 f equals an independent forward pass of the fresh model, exactly
    f0 = rows.loc[0, _cols("igb/train/f", c)].to_numpy(dtype="float64")
    assert f0.tolist() == _independent_step0_f(cfg, batch_size=64).tolist()

    # the ranking is fixed at step 0 (ties: lower class first) and used for every row
    order = sorted(range(c), key=lambda k: (-f0[k], k))
    for split in ("train", "val"):
        split_rows = _stat_rows(metrics, split)
        for k, cls in enumerate(order, start=1):
            assert split_rows[f"{split}/acc_rank/{k}"].equals(
                split_rows[f"{split}/acc_class/{cls}"]
            )
            assert split_rows[f"igb/{split}/f_rank/{k}"].equals(split_rows[f"igb/{split}/f/{cls}"])
    assert rows.loc[0, "igb/train/f_rank/1"] == f0.max()

    # the per-class test accuracy is measured once at the end; test/acc stays the module's
    test_rows = metrics[metrics["test/acc_class/0"].notna()]
    assert test_rows["step"].tolist() == [total]
    assert metrics["test/acc"].notna().sum() == 1

    # measurements leave no trace: same final weights AND running statistics as a run
    # without the callback (no running-stat updates, no gradients, no RNG consumed)
    plain, _ = _run(
        make_cfg, "norm=post", "dataset.batch_size=30", "callbacks.bias_stats=null", job="plain"
    )
    a = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints/last.ckpt")
    b = load_checkpoint(Path(plain.paths.output_dir) / "checkpoints/last.ckpt")
    assert any("running_mean" in k for k in a["state_dict"])
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k

    # the logged config says how f was measured
    hparams = (Path(cfg.paths.output_dir) / "hparams.yaml").read_text()
    assert "norm_mode: batch" in hparams and "batch_size: 64" in hparams


def test_resumed_run_keeps_the_step0_ranking(make_cfg) -> None:
    common = ["norm=none", "dataset.batch_size=30", "skip_finished=false"]
    cfg, metrics = _run(make_cfg, *common, "trainer.max_epochs=1", job="resume")
    c = cfg.dataset.num_classes
    f0 = _stat_rows(metrics).loc[0, _cols("igb/train/f", c)].to_numpy(dtype="float64")
    order = sorted(range(c), key=lambda k: (-f0[k], k))
    ckpt = Path(cfg.paths.output_dir) / "checkpoints/last.ckpt"
    state = load_checkpoint(ckpt)["callbacks"]
    (saved,) = [v for k, v in state.items() if k.startswith("BiasStatsCallback")]
    assert saved["rank_order"] == order and saved["last_step"] == 8

    # the same job folder again with one more epoch: resumes from last.ckpt at step 8
    cfg, metrics = _run(make_cfg, *common, "trainer.max_epochs=2", job="resume")
    # metrics.csv is appended to on resume: the first run's rows, then only step 16
    # (no second step-0 measurement), ranked by the first run's step-0 ranking
    rows = _stat_rows(metrics)
    assert rows["step"].tolist() == [0, 8, 16]
    last = rows.iloc[-1]
    for k, cls in enumerate(order, start=1):
        assert last[f"train/acc_rank/{k}"] == last[f"train/acc_class/{cls}"]
        assert last[f"igb/val/f_rank/{k}"] == last[f"igb/val/f/{cls}"]


@pytest.mark.parametrize("seeds", [(0, 1, 2)])
def test_batchnorm_post_is_neutral_and_none_is_prejudiced_at_step0(make_cfg, seeds) -> None:
    """docs/science.md: BN after the ReLU removes the shared offset (f ~ 1/C); no norm does not."""
    c = 4
    deep = ["model.depth=8", "model.width=64", "trainer.max_epochs=1"]
    deep += ["+trainer.limit_train_batches=1", "callbacks.model_checkpoint=null"]
    f_max = {}
    for norm in ("post", "none"):
        f_max[norm] = []
        for seed in seeds:
            _, metrics = _run(make_cfg, f"norm={norm}", f"seed={seed}", *deep, job=f"{norm}{seed}")
            row = _stat_rows(metrics).iloc[0]
            assert row["step"] == 0
            f_max[norm].append(row["igb/train/f_max"])
    assert max(f_max["post"]) < 1.5 / c, f_max
    assert sum(f_max["none"]) / len(seeds) > 0.5, f_max
    assert min(f_max["none"]) > max(f_max["post"]), f_max


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="norm_mode"):
        bias_stats_callback(norm_mode="running")
    with pytest.raises(ValueError, match="splits"):
        bias_stats_callback(splits=["train", "holdout"])
    with pytest.raises(ValueError, match="batch_size"):
        bias_stats_callback(batch_size=1)


def test_log_spaced_steps_are_unique_increasing_and_end_at_total() -> None:
    assert log_spaced_steps(5, 1000) == [1, 6, 32, 178, 1000]
    for n, total in [(10, 65), (30, 12), (1, 7), (50, 10_000)]:
        steps = log_spaced_steps(n, total)
        assert len(steps) == min(n, total) and steps[-1] == total and steps[0] >= 1
        assert all(a < b for a, b in zip(steps, steps[1:], strict=False))
    assert log_spaced_steps(0, 100) == []


def test_progress_bar_updates_at_most_at_its_rate_and_always_at_the_epoch_end(
    make_cfg, monkeypatch
) -> None:
    """With the clock frozen, the bar's per-batch update runs once at the first batch and
    once at each epoch's last; the bar then shows every batch of the epoch."""
    import lightning as L

    from igb.callbacks import progress
    from igb.training.module import IGBModule

    monkeypatch.setattr(progress.time, "monotonic", lambda: 1000.0)
    bar = progress.ProgressBar(refresh_rate=10)
    updates: list[int] = []
    real = progress.RichProgressBar.on_train_batch_end
    monkeypatch.setattr(
        progress.RichProgressBar,
        "on_train_batch_end",
        lambda self, trainer, *a: (updates.append(trainer.global_step), real(self, trainer, *a)),
    )
    seen: list[float] = []

    class Shown(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            seen.append(bar.progress.tasks[bar.train_progress_bar_id].completed)

    cfg = make_cfg()
    dm = instantiate_datamodule(cfg.dataset)
    dm.setup("fit")
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=0)
    module = IGBModule(model, partial(torch.optim.SGD, lr=0.1), dm.num_classes)
    quiet_lightning()  # as igb.training.run.build does for every run
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[bar, Shown()],
    )  # fmt: skip
    trainer.fit(module, datamodule=as_lightning(dm))
    steps = trainer.num_training_batches  # 6
    assert updates == [1, steps, 2 * steps]
    assert seen == [steps, steps]


def test_log_names_norm_mode_only_for_a_model_with_batchnorm(make_cfg, caplog) -> None:
    with caplog.at_level("INFO", logger="igb.callbacks.bias_stats"):
        run(make_cfg("logger=csv", "norm.kind=layer", "trainer.max_epochs=1", job="layer"))
        run(make_cfg("logger=csv", "trainer.max_epochs=1", job="batch"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("bias_stats:")]
    assert lines[0].startswith("bias_stats: no BatchNorm, batch_size=500")
    assert lines[1].startswith("bias_stats: norm_mode=batch batch_size=500")
