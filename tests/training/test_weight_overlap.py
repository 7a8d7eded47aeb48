"""train/weight_overlap: w0 . wt of the unit-norm parameter vector, at the measurement steps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers.conf_values import bias_stats_callback

from igb.callbacks.overlap import parameter_vector
from igb.compat import load_checkpoint
from igb.data.instantiate import instantiate_datamodule
from igb.launch.train_job import run
from igb.nn import build_model


def _unit_vector(model: torch.nn.Module) -> torch.Tensor:
    """The trainable parameters as one unit vector, written here again (the oracle)."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])
    return flat / flat.norm()


def test_parameter_vector_on_hand_made_parameters() -> None:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0]]))
        model.bias.copy_(torch.tensor([4.0]))
    assert torch.equal(parameter_vector(model), torch.tensor([3.0, 0.0, 4.0]))
    assert torch.equal(_unit_vector(model), torch.tensor([0.6, 0.0, 0.8]))
    model.bias.requires_grad_(False)  # frozen parameters are left out
    assert torch.equal(parameter_vector(model), torch.tensor([3.0, 0.0]))


def test_overlap_starts_at_one_and_matches_the_final_weights(make_cfg) -> None:
    cfg = make_cfg("logger=csv", "optimizer.lr=0.2", "callbacks.bias_stats.log_steps=4")
    run(cfg)
    out = Path(cfg.paths.output_dir)
    rows = pd.read_csv(out / "metrics.csv").dropna(subset=["train/weight_overlap"])
    overlap = rows.groupby("step")["train/weight_overlap"].first()
    assert overlap.index[0] == 0 and overlap.iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert len(overlap) >= 4 and overlap.iloc[-1] < 0.999  # training moved the weights
    # independent: the step-0 network rebuilt from the seed, the last one from last.ckpt
    dm = instantiate_datamodule(cfg.dataset)
    w0 = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    wt = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]
    wt.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    expected = torch.dot(_unit_vector(w0), _unit_vector(wt)).item()
    assert overlap.iloc[-1] == pytest.approx(expected, abs=1e-5)
    # per group (the MLP's blocks and head): the cosine of each group's own slice
    last = rows[rows["step"] == rows["step"].max()].iloc[-1]
    for group in ("blocks", "head"):
        a = torch.cat([p.flatten() for n, p in w0.named_parameters() if n.startswith(group)])
        b = torch.cat([p.flatten() for n, p in wt.named_parameters() if n.startswith(group)])
        cos = (torch.dot(a, b) / (a.norm() * b.norm())).item()
        assert last[f"train/weight_overlap/{group}"] == pytest.approx(cos, abs=1e-5)
        assert rows[f"train/weight_overlap/{group}"].iloc[0] == pytest.approx(1.0, abs=1e-6)


def test_step0_vector_is_kept_in_the_callback_state() -> None:
    cb = bias_stats_callback()
    cb.w0 = torch.tensor([0.6, 0.8])
    other = bias_stats_callback()
    other.load_state_dict(cb.state_dict())
    assert torch.equal(other.w0, cb.w0)
    off = bias_stats_callback(weight_overlap=False)
    assert off.weight_overlap is False
