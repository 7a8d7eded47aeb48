"""NHWC (``channels_last``) activations for the conv models' no-grad forward passes on CPU.

oneDNN's CPU convolutions run about twice as fast on channels_last activations as on
the default NCHW layout: on the 2-core development CPU the default CNN's forward pass
over 500 images takes 185 ms instead of 303 (128 images: 25 ms instead of 49). A
convolution's output keeps its input's layout, so converting the input once converts
every activation of the network; the weights stay as they are. The values are the same
up to float summation order (logits within ~1e-5).

Only passes without autograd use it (the statistics callback's measurements, the
initialization ensembles): training stays NCHW, because the backward pass of
channels_last convolutions corrupts the heap in torch 2.14.1 on CPU for some shapes
(the ResNet shortcut at width 8 on a batch of 9 aborts with "malloc(): ... corrupted")::

    conv = torch.nn.Conv2d(8, 16, 1, stride=2)
    x = torch.randn(9, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        conv(x.requires_grad_()).sum().backward()

Forward passes were checked (``MALLOC_CHECK_=3``, outputs against NCHW) over kernels
1 and 3, strides 1 and 2, 1-32 input channels, batches 1-17 and maps 4-16 wide. On CUDA
(and for inputs of other ranks) nothing changes.
"""

from __future__ import annotations

import torch


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a channels_last tensor if it is a CPU image batch ``(N, C, H, W)`` and no
    gradient is being recorded; otherwise ``x`` itself."""
    if x.dim() == 4 and x.device.type == "cpu" and not torch.is_grad_enabled():
        return x.contiguous(memory_format=torch.channels_last)
    return x
