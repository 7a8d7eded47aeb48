"""What every igb model is built from, in one place."""

from __future__ import annotations

from torch import nn


class Classifier(nn.Module):
    """Base of the models: ``build_model`` passes ``input_shape`` (one sample's shape),
    ``num_classes`` and ``norm_act`` (the :class:`igb.nn.NormAct` factory of every hidden
    layer) by keyword, and the rest of the model config (``depth``, ``width``, ...) as the
    subclass's own arguments. A subclass takes ``norm_act`` and its size arguments and
    passes the other two on (``**io``); they are kept as attributes.

    ``layouts``: the layer layouts (``dense``, ``conv``, ``token``) its hidden layers use,
    so that a norm kind that does not apply to them is rejected by name.
    """

    layouts: frozenset[str] = frozenset()

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
