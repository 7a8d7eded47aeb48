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

import difflib
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

from igb.errors import ConfigError
from igb.nn.cnn import require_image
from igb.nn.memory_format import channels_last

NATIVE = "native"
HEAD_INITS = (NATIVE, "torch_default")
#: suffixes that mark ``model.weights`` as a file rather than a library's weight name
WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
#: key prefixes stripped from a weights file (a Lightning checkpoint of this framework
#: holds ``model.net.<name>``; a saved ExternalNet holds ``net.<name>``)
_PREFIXES = ("model.", "net.")


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


@dataclass(frozen=True)
class Spec:
    """One external model configuration (the ``model`` group), checked and hashable."""

    library: str
    arch: str
    weights: str | None
    download: bool
    input_shape: tuple[int, ...]
    input_size: tuple[int, int] | None
    head_init: str
    kwargs_json: str = "{}"  # JSON keeps the spec hashable (it keys the caches below)

    @property
    def kwargs(self) -> dict[str, Any]:
        return json.loads(self.kwargs_json)

    @property
    def weights_file(self) -> Path | None:
        w = self.weights
        if w is None or not ("/" in w or w.endswith(WEIGHT_FILE_SUFFIXES)):
            return None
        return Path(w).expanduser()

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The size the network sees: ``input_size``, else the dataset's (images only)."""
        if self.input_size is not None:
            return self.input_size
        return tuple(self.input_shape[1:]) if len(self.input_shape) == 3 else None  # type: ignore[return-value]


class Library:
    """How one library names, builds and loads its architectures (subclass per library)."""

    name: ClassVar[str]
    key: ClassVar[str] = "model.arch"
    #: keyword of the constructor that sets the image size (None: the library has none)
    size_kwarg: ClassVar[str | None] = None
    #: channels the network takes; None: the dataset's own
    in_chans: ClassVar[int | None] = None
    needs_images: ClassVar[bool] = True
    use_channels_last: ClassVar[bool] = True

    @classmethod
    def builder(cls, arch: str) -> Callable[..., nn.Module]:
        raise NotImplementedError

    @classmethod
    def size_value(cls, size: tuple[int, int]) -> Any:
        """The value of ``size_kwarg`` for an image size (H, W)."""
        return list(size)

    @classmethod
    def extra_kwargs(cls, spec: Spec) -> dict[str, Any]:
        return {}

    @classmethod
    def check_named_weights(cls, spec: Spec) -> None:
        raise ConfigError("model.weights", f"model={cls.name} takes model.weights=<file path>")

    @classmethod
    def pretrained_state(cls, spec: Spec, num_classes: int) -> dict[str, torch.Tensor]:
        """The whole network's state with the weights loaded (head keys may be anything)."""
        path = spec.weights_file
        assert path is not None, "named weights are library-specific"
        return read_state_file(path)


def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save`` (or safetensors), unwrapped and unprefixed."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise ConfigError("model.weights", f"model.weights={path} holds no state dict")
    out = {}
    for name, value in state.items():
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
        out[name] = value
    return out


def _unknown(key: str, value: str, known: list[str], what: str) -> ConfigError:
    near = difflib.get_close_matches(value, known, n=5, cutoff=0.5)
    hint = f"; close: {', '.join(near)}" if near else ""
    return ConfigError(key, f"{key}={value} is not {what}{hint}")


class Torchvision(Library):
    name = "torchvision"
    size_kwarg = "image_size"
    in_chans = 3

    @classmethod
    def builder(cls, arch: str) -> Callable[..., nn.Module]:
        import torchvision.models as tvm

        known = tvm.list_models(module=tvm)
        if arch not in known:
            raise _unknown("model.arch", arch, known, "a torchvision classification model")
        return tvm.get_model_builder(arch)

    @classmethod
    def size_value(cls, size: tuple[int, int]) -> Any:
        if size[0] != size[1]:
            raise ConfigError(
                "model.input_size", f"torchvision's image_size is square; got {list(size)}"
            )
        return size[0]

    @classmethod
    def _weight(cls, spec: Spec) -> Any:
        import torchvision.models as tvm

        enum = tvm.get_model_weights(spec.arch)
        name = spec.weights.rsplit(".", 1)[-1]  # ResNet18_Weights.IMAGENET1K_V1 or IMAGENET1K_V1
        if name not in enum.__members__:
            raise ConfigError(
                "model.weights",
                f"model.weights={spec.weights} is not a weight of {spec.arch}; allowed: null, "
                f"{', '.join(enum.__members__)}, or a file path",
            )
        return enum[name]

    @classmethod
    def _cache_file(cls, weight: Any) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weight.url).path).name

    @classmethod
    def check_named_weights(cls, spec: Spec) -> None:
        cached = cls._cache_file(cls._weight(spec))
        if not spec.download and not cached.exists():
            raise not_cached(spec, str(cached))

    @classmethod
    def pretrained_state(cls, spec: Spec, num_classes: int) -> dict[str, torch.Tensor]:
        if spec.weights_file is not None:
            return read_state_file(spec.weights_file)
        cls.check_named_weights(spec)
        net = cls.builder(spec.arch)(weights=cls._weight(spec), progress=False, **spec.kwargs)
        return net.state_dict()


class Timm(Library):
    name = "timm"
    size_kwarg = "img_size"

    @classmethod
    def builder(cls, arch: str) -> Callable[..., nn.Module]:
        import timm

        if not timm.is_model(arch):
            raise _unknown("model.arch", arch, timm.list_models(), "a timm model")
        return functools.partial(timm.create_model, arch)

    @classmethod
    def extra_kwargs(cls, spec: Spec) -> dict[str, Any]:
        return {"in_chans": spec.input_shape[0]}

    @classmethod
    def _cfg(cls, spec: Spec) -> Any:
        import timm

        tag = "" if spec.weights in ("default", "pretrained") else f".{spec.weights}"
        try:
            cfg = timm.models.get_pretrained_cfg(f"{spec.arch}{tag}", allow_unregistered=False)
        except RuntimeError:  # an unknown tag
            cfg = None
        if cfg is None:
            tags = [n.split(".", 1)[-1] for n in timm.list_pretrained(f"{spec.arch}.*")]
            raise ConfigError(
                "model.weights",
                f"model.weights={spec.weights} is not a timm weight of {spec.arch}; allowed: "
                f"null, default, {', '.join(tags) or '(none published)'}, or a file path",
            )
        return cfg

    @classmethod
    def _cached_file(cls, cfg: Any) -> str | None:
        """The local copy of a timm weight (Hugging Face cache or torch hub), if any."""
        if cfg.file:
            return cfg.file
        if cfg.hf_hub_id:
            from huggingface_hub import try_to_load_from_cache

            names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
            for name in [*names, "model.safetensors", "pytorch_model.bin"]:
                found = try_to_load_from_cache(cfg.hf_hub_id, name)
                if isinstance(found, str):
                    return found
        if cfg.url:
            path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
            if path.exists():
                return str(path)
        return None

    @classmethod
    def check_named_weights(cls, spec: Spec) -> None:
        cfg = cls._cfg(spec)
        if not spec.download and cls._cached_file(cfg) is None:
            raise not_cached(spec, cfg.hf_hub_id or cfg.url or "")

    @classmethod
    def pretrained_state(cls, spec: Spec, num_classes: int) -> dict[str, torch.Tensor]:
        """timm loads the weights itself (its filters resize position embeddings, adapt the
        input channels and drop a classifier of another size); from a local file or cache."""
        if spec.weights_file is not None:
            name, file = spec.arch, str(spec.weights_file)
        else:
            cls.check_named_weights(spec)
            cfg = cls._cfg(spec)
            name, file = f"{spec.arch}.{cfg.tag}", cls._cached_file(cfg)
        overlay = {"file": file, "source": None} if file else None
        net = construct(spec, num_classes, pretrained=True, pretrained_cfg_overlay=overlay,
                        model_name=name)  # fmt: skip
        return net.state_dict()


class Custom(Library):
    """``model.cls``: any ``nn.Module`` class whose constructor takes ``num_classes``."""

    name = "custom"
    key = "model.cls"
    needs_images = False
    use_channels_last = False

    @classmethod
    def builder(cls, arch: str) -> Callable[..., nn.Module]:
        try:
            target = get_class(arch)
        except Exception as exc:  # noqa: BLE001 - any import failure is a config error
            raise ConfigError("model.cls", f"model.cls={arch} cannot be imported: {exc}") from exc
        if not issubclass(target, nn.Module):
            raise ConfigError("model.cls", f"model.cls={arch} is not a torch.nn.Module class")
        return target


LIBRARIES: dict[str, type[Library]] = {c.name: c for c in (Torchvision, Timm, Custom)}


def not_cached(spec: Spec, where: str) -> ConfigError:
    return ConfigError(
        "model.weights",
        f"model.weights={spec.weights} for {spec.library} {spec.arch} is not in the local "
        f"cache ({where}); set model.download=true to download it, or give a file path",
    )


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
    kwargs = cfg.get("kwargs") or {}
    if isinstance(kwargs, DictConfig):
        kwargs = OmegaConf.to_container(kwargs, resolve=True)
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


@functools.lru_cache(maxsize=64)
def _accepts_size(spec: Spec) -> bool:
    """Whether the constructor takes the library's image-size keyword (ViTs do, CNNs not)."""
    library = LIBRARIES[spec.library]
    if library.size_kwarg is None or spec.image_size is None:
        return False
    try:
        with torch.device("meta"):
            construct(spec, 2, _with_size=True)
    except ConfigError as exc:
        if isinstance(exc.__cause__, TypeError) and library.size_kwarg in str(exc.__cause__):
            return False
        raise
    return True


def construct(spec: Spec, num_classes: int, _with_size: bool | None = None,
              model_name: str | None = None, **extra: Any) -> nn.Module:  # fmt: skip
    """The library's network with ``num_classes`` classes, on the current default device,
    initialised by the library from the current RNG state."""
    library = LIBRARIES[spec.library]
    build = library.builder(spec.arch)
    if model_name is not None:  # timm: a weight tag (``arch.tag``)
        import timm

        build = functools.partial(timm.create_model, model_name)
    kwargs = {**library.extra_kwargs(spec), **spec.kwargs, **extra}
    with_size = _accepts_size(spec) if _with_size is None else _with_size
    if with_size and library.size_kwarg:
        kwargs.setdefault(library.size_kwarg, library.size_value(spec.image_size))
    try:
        return build(num_classes=num_classes, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the library's own complaint, on one line
        raise ConfigError(library.key, f"{library.key}={spec.arch} does not build: {exc}") from exc


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


def reset_head(net: nn.Module, head: frozenset[str]) -> None:
    """``reset_parameters`` of the modules that own the head's parameters (PyTorch's
    default initialization, as a freshly created ``nn.Linear`` head has it)."""
    owners = {name.rsplit(".", 1)[0] for name in head}
    for name, module in net.named_modules():
        if name in owners:
            if not hasattr(module, "reset_parameters"):
                raise ConfigError(
                    "model.head_init", f"the head module {name} has no reset_parameters"
                )
            module.reset_parameters()
