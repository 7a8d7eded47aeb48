"""How torchvision, timm and user modules are named, built and loaded (for igb.nn.external).

One :class:`Library` subclass per source of architectures: the constructor of an
architecture with ``num_classes`` classes (built on the current default device, with the
library's own initialization from the current RNG state), the keyword that sets the image
size where there is one, and where its named weights live. Named weights are read from
the local cache only unless ``model.download`` is true.
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
from torch import nn

from igb.errors import ConfigError, one_line
from igb.plain import locate

#: suffixes that mark ``model.weights`` as a file rather than a library's weight name
WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
#: key prefixes stripped from a weights file (a Lightning checkpoint of this framework
#: holds ``model.net.<name>``; a saved ExternalNet holds ``net.<name>``)
_PREFIXES = ("model.", "net.")


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
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file, in the reader's words
        why = f"{type(exc).__name__}: {one_line(exc)}"
        raise ConfigError(
            "model.weights", f"model.weights={path} cannot be read as a state dict ({why})"
        ) from exc
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
        try:  # importlib (locate), not hydra's get_class: that one logs three lines first
            target = locate(arch)
        except Exception as exc:  # noqa: BLE001 - any import failure is a config error
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ConfigError(
                "model.cls",
                f"model.cls={arch} cannot be imported ({why}); give the import "
                "path of an nn.Module class, e.g. mypackage.nets.MyNet",
            ) from exc
        if not isinstance(target, type):
            raise ConfigError("model.cls", f"model.cls={arch} is not a class")
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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the library's own complaint, one line
        why = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else exc
        raise ConfigError(library.key, f"{library.key}={spec.arch} does not build: {why}") from exc
