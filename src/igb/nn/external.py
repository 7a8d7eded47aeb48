"""Networks built by a library (torchvision, timm) or by the user (``model=custom``).

These architectures place their norms and initialise their weights themselves, so the
framework does neither: ``norm=native`` means "as the architecture builds it", and
initialization ``seed`` is the architecture's own initialization run under
``torch.manual_seed(seed)`` (the library's constructor, with ``num_classes`` classes).
With ``model.weights`` the backbone comes from pretrained weights and the head stays a
fresh, seeded one: what a new head on a pretrained backbone predicts before fine-tuning.

The head is found without knowing the architecture: it is every parameter whose shape
depends on ``num_classes`` (two builds on the meta device, with C and C + 1 classes).

Named weights are read from the library's local cache only, unless ``model.download``
is true: a run never downloads by default, and a missing file is one clear line.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from igb.errors import ConfigError
from igb.nn.cnn import require_image
from igb.nn.libraries import LIBRARIES, Custom, Library, Spec, construct
from igb.nn.memory_format import channels_last
from igb.plain import plain

NATIVE = "native"
HEAD_INITS = (NATIVE, "torch_default")


class ExternalNet(nn.Module):
    """The library's network behind an input adapter: 1 -> 3 channels where the network
    takes RGB, resizing to ``input_size``, and the logits of outputs that carry more."""

    def __init__(
        self, net: nn.Module, in_chans: int | None, input_size: tuple[int, int] | None,
        use_channels_last: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        self.net = net
        self.in_chans = in_chans
        self.input_size = input_size
        self.use_channels_last = use_channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            if self.in_chans == 3 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
                x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
            if self.use_channels_last:
                x = channels_last(x)
        out = self.net(x)
        return getattr(out, "logits", out)  # e.g. torchvision's InceptionOutputs


def is_external(target: type) -> bool:
    return isinstance(target, type) and issubclass(target, Library)


def check_norm(target: type, norm_cfg: Mapping[str, Any], model_name: str) -> None:
    """norm=native is the only norm of external models, and only theirs."""
    placement = norm_cfg.get("placement")
    if is_external(target) and placement != NATIVE:
        raise ConfigError(
            "norm",
            f"norm={placement} is not available for model={target.name}: the architecture "
            f"places its norms itself; use norm={NATIVE}",
        )
    if not is_external(target) and placement == NATIVE:
        raise ConfigError(
            "norm",
            f"norm={NATIVE} applies to model=torchvision|timm|custom only; model={model_name} "
            "takes norm=none|pre|post",
        )


def _size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    pair = [value, value] if isinstance(value, int) else list(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                 for v in pair):  # fmt: skip
        raise ConfigError(
            "model.input_size", f"model.input_size={value} must be null, a positive int or [H, W]"
        )
    return (pair[0], pair[1])


def make_spec(library: type[Library], cfg: Mapping[str, Any], input_shape: tuple[int, ...]) -> Spec:
    """Check the ``model`` config of an external model (one-line errors) and freeze it."""
    for key in ("activation", "init"):
        if cfg.get(key, NATIVE) != NATIVE:
            raise ConfigError(
                f"model.{key}",
                f"model.{key}={cfg[key]}: model={library.name} uses the architecture's own; "
                f"leave model.{key}={NATIVE}",
            )
    head_init = cfg.get("head_init", NATIVE)
    if head_init not in HEAD_INITS:
        raise ConfigError(
            "model.head_init", f"model.head_init={head_init}; allowed: {', '.join(HEAD_INITS)}"
        )
    arch = cfg.get("cls" if library is Custom else "arch")
    if not arch:
        raise ConfigError(library.key, f"model={library.name} needs {library.key}=<name>")
    if library.needs_images:
        require_image(tuple(input_shape), library.name)
    kwargs = plain(cfg.get("kwargs") or {})
    spec = Spec(
        library=library.name, arch=str(arch), weights=cfg.get("weights"),
        download=bool(cfg.get("download", False)), input_shape=tuple(input_shape),
        input_size=_size(cfg.get("input_size")), head_init=head_init,
        kwargs_json=json.dumps(kwargs, sort_keys=True),
    )  # fmt: skip
    if library.in_chans == 3 and input_shape[0] not in (1, 3):
        raise ConfigError(
            "dataset.shape",
            f"model={library.name} takes 3-channel images (1-channel ones are repeated); the "
            f"dataset gives {input_shape[0]} channels",
        )
    library.builder(spec.arch)  # unknown architecture: one line now
    if spec.weights is not None:
        if spec.weights_file is not None:
            if not spec.weights_file.is_file():
                raise ConfigError("model.weights", f"model.weights={spec.weights}: no such file")
        else:
            library.check_named_weights(spec)
    return spec


def class_dependent(make: Callable[[int], nn.Module], num_classes: int) -> frozenset[str]:
    """Names of the parameters and buffers whose shapes depend on the number of classes:
    the classifier head, whatever the architecture calls it (``make(c)`` builds on meta)."""

    def shapes(c: int) -> dict[str, tuple[int, ...]]:
        with torch.device("meta"):
            m = make(c)
        return {n: tuple(t.shape) for n, t in (*m.named_parameters(), *m.named_buffers())}

    a, b = shapes(num_classes), shapes(num_classes + 1)
    return frozenset(n for n in a if a[n] != b.get(n))


@functools.lru_cache(maxsize=64)
def head_names(spec: Spec, num_classes: int) -> frozenset[str]:
    """Names (in the library's network) of the parameters and buffers of the head."""
    head = class_dependent(lambda c: construct(spec, c), num_classes)
    if not head:
        key = LIBRARIES[spec.library].key
        raise ConfigError(
            key,
            f"{key}={spec.arch}: no parameter depends on num_classes, so the classifier head "
            "cannot be found",
        )
    return head


@functools.lru_cache(maxsize=2)
def backbone_state(spec: Spec, num_classes: int) -> dict[str, torch.Tensor]:
    """The pretrained weights of everything but the head (read once per process)."""
    with torch.random.fork_rng(devices=[]):
        state = LIBRARIES[spec.library].pretrained_state(spec, num_classes)
    head = head_names(spec, num_classes)
    return {k: v for k, v in state.items() if k not in head}


def _load_backbone(net: nn.Module, spec: Spec, num_classes: int) -> None:
    state = backbone_state(spec, num_classes)
    head = head_names(spec, num_classes)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), exc)
        raise ConfigError("model.weights", f"model.weights={spec.weights}: {detail}") from exc
    missing = sorted(set(missing) - head)
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise ConfigError(
            "model.weights",
            f"model.weights={spec.weights} does not fit {spec.library} {spec.arch}: {what} "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys)",
        )


def build_external(
    library: type[Library], cfg: Mapping[str, Any], input_shape: tuple[int, ...],
    num_classes: int, seed: int, device: torch.device | str = "cpu",
) -> ExternalNet:  # fmt: skip
    """Initialization ``seed`` of an external model: the library's own initialization
    under ``torch.manual_seed(seed)`` (the caller's RNG is forked, not consumed), then the
    pretrained backbone if ``model.weights`` is set, then the head per ``head_init``.
    ``device="meta"`` only checks that the configuration builds."""
    spec = make_spec(library, cfg, input_shape)
    device = torch.device(device)
    in_chans = library.in_chans
    if device.type == "meta":
        with torch.device("meta"):
            net = construct(spec, num_classes)
        head_names(spec, num_classes)
    else:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            with torch.device(device):
                net = construct(spec, num_classes)
            if spec.weights is not None:
                _load_backbone(net, spec, num_classes)
            if spec.head_init != NATIVE:
                torch.manual_seed(seed)
                reset_head(net, head_names(spec, num_classes))
    return ExternalNet(net, in_chans, spec.input_size, library.use_channels_last)


def owner_modules(names: Iterable[str]) -> list[str]:
    """The modules that hold the named parameters and buffers (``fc.weight`` -> ``fc``),
    sorted: given :func:`class_dependent`'s names, the modules of the head."""
    return sorted({name.rsplit(".", 1)[0] for name in names})


def head_modules(net: nn.Module, head: Iterable[str]) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the modules of ``net`` that own the names ``head``, in
    module order (the order :func:`reset_head` draws them in)."""
    owners = set(owner_modules(head))
    return [(name, module) for name, module in net.named_modules() if name in owners]


def reset_head(net: nn.Module, head: frozenset[str]) -> None:
    """``reset_parameters`` of the modules that own the head's parameters (PyTorch's
    default initialization, as a freshly created ``nn.Linear`` head has it)."""
    for name, module in head_modules(net, head):
        if not hasattr(module, "reset_parameters"):
            raise ConfigError("model.head_init", f"the head module {name} has no reset_parameters")
        module.reset_parameters()
