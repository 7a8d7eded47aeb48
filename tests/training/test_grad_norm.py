"""train/grad_norm and train/step_size: logged at the measurement steps through the real
config tree and CSV logger, and equal to the gradient norm computed independently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from helpers.sizes import SMALL_CSV_TRAIN_POST

from igb.callbacks import log_spaced_steps
from igb.data.instantiate import instantiate_datamodule
from igb.launch.train_job import run
from igb.nn import build_model


def _independent_grad_norm(cfg) -> float:
    """The first training batch's gradient at initialization, by hand."""
    dm = instantiate_datamodule(cfg.dataset)
    dm.setup("fit")
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    model.train()
    x, y = next(iter(dm.train_dataloader()))
    F.cross_entropy(model(x), y).backward()
    return float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm())


def test_grad_norm_at_measurement_steps_matches_an_independent_gradient(make_cfg) -> None:
    cfg = make_cfg(*SMALL_CSV_TRAIN_POST, job="grad")
    run(cfg)
    metrics = pd.read_csv(Path(cfg.paths.output_dir) / "metrics.csv")
    rows = metrics[metrics["train/grad_norm"].notna()].reset_index(drop=True)
    steps_per_epoch, epochs = 8, cfg.trainer.max_epochs  # 240 train points / 30
    total = steps_per_epoch * epochs
    # step 0, every epoch end that a batch follows, the log-spaced steps (not the last)
    expected = {0} | {steps_per_epoch * e for e in range(1, epochs)}
    expected |= {s for s in log_spaced_steps(6, total) if s < total}
    assert rows["step"].tolist() == sorted(expected)
    step0 = rows.iloc[0]
    assert abs(step0["train/grad_norm"] - _independent_grad_norm(cfg)) < 1e-5
    assert (rows["train/step_size"] - 0.05 * rows["train/grad_norm"]).abs().max() < 1e-9
    # every measurement step of the statistics callback but the last has a gradient row
    stats_steps = set(metrics.loc[metrics["igb/train/f_max"].notna(), "step"])
    assert set(rows["step"]) == stats_steps - {max(stats_steps)}
