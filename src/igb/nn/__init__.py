"""Networks whose hidden layers all come from one norm-act block builder.

May import only ``igb.errors``, ``igb.compat`` and ``igb.plain``.
"""

from igb.nn.build import build_model
from igb.nn.norm_act import ACTIVATIONS, NORM_LAYERS, PLACEMENTS, NormAct, NormConfig

__all__ = ["ACTIVATIONS", "NORM_LAYERS", "PLACEMENTS", "NormAct", "NormConfig", "build_model"]
