"""The model of an ensemble, built once and re-initialised in place for every seed."""

from __future__ import annotations

from torch import nn

from igb.nn import build_model


def empty_model(
    model_cfg, norm_cfg, input_shape, num_classes, device, norm_mode: str = "eval"
) -> nn.Module:
    """The architecture with uninitialised memory (every value is set by ``initialize``).

    With ``norm_mode="batch"`` its BatchNorm layers stop tracking running statistics
    (``torch.func.replace_all_batch_norm_modules_``): in batch-statistics mode they never
    use them, so the logits are bit-identical, and the model stops spending time on an
    update that would be thrown away (and under vmap there are no buffers to stack).
    """
    meta = build_model(model_cfg, norm_cfg, input_shape, num_classes, seed=0, device="meta")
    model = meta.to_empty(device=device)
    if norm_mode == "batch":
        from torch.func import replace_all_batch_norm_modules_

        replace_all_batch_norm_modules_(model)
    return model
