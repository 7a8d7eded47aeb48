"""What every igb model is built from, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from igb.nn.norm_act import NormAct


class Classifier(nn.Module):
    """Base of the models: ``build_model`` passes the arguments every model is built from
    by keyword, ``input_shape`` (one sample's shape), ``num_classes`` and ``norm_act`` (the
    :class:`igb.nn.NormAct` factory of every hidden layer: the norm's placement and kind,
    the activation), and the rest of the model config (``depth``, ``width``, ...) as the
    subclass's own arguments. A subclass takes its size arguments and hands the common
    three on (``**common``); they are kept as attributes.

    ``layouts``: the layer layouts (``dense``, ``conv``, ``token``) its hidden layers use,
    so that a norm kind that does not apply to them is rejected by name.
    """

    layouts: frozenset[str] = frozenset()

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, norm_act: NormAct) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.norm_act = norm_act
