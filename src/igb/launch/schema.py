"""The type and range of every key of every config group, declared once, checked before a job.

Each group (``optimizer``, ``scheduler``, ``trainer``, ``dataset``, ``callbacks.bias_stats``,
``ensemble``, ``model``, the top level) is a pydantic model: the YAML files under
``conf/`` stay the one place for defaults and comments, and these models say what a value
may be: a field's default is :data:`FROM_YAML` (never a value: an absent key is not
checked, and the value a job uses is the YAML's). :func:`check_schema` turns the first
violation into one line naming the key and
the allowed values (a :class:`igb.errors.ConfigError`, exit 2 from the pre-flight).

Why pydantic rather than Hydra structured configs (dataclasses): a structured config
replaces a group's YAML with a dataclass per option (``sgd`` and ``adam`` differ in their
keys; external models take arbitrary ``model.kwargs``) and OmegaConf checks only types, not
ranges or allowed strings. Pydantic declares type, range and choices in one annotation,
lets the unknown keys of a group pass (``extra="allow"``: Hydra rejects unknown keys
already), and is already installed (W&B depends on it).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from igb import SPLITS
from igb.errors import ConfigError
from igb.jobs.identity import IdentityRules
from igb.launch.conf_dir import find_conf_dir
from igb.launch.overrides import signature_keys
from igb.logging.wandb_mode import MODES
from igb.metrics.head_gamma import REDUCTIONS
from igb.metrics.measure import NORM_MODES

#: seeds go to numpy's and torch's generators: unsigned 32-bit integers
MAX_SEED = 2**32 - 1

#: the largest float32: a learning rate or decay above it overflows the parameters' dtype
FLOAT32_MAX = 3.4028234663852886e38
#: layers a model may stack: building one takes about 1.5 ms on the meta device, so the
#: pre-flight of the deepest stays within seconds
MAX_DEPTH = 10_000

#: the default of every field: values live in ``conf/`` (README, Architecture); pydantic
#: does not validate a default, so a key the config lacks passes and a given one is checked
FROM_YAML: Any = None

#: the groups that say where and how a job runs or is observed, not what it computes: a
#: relaunch may change them freely (igb.jobs.identity)
RUNS_GROUPS = {
    "paths": "folders",
    "hydra": "Hydra's own settings",
    "logger": "what is recorded about the run",
    "callbacks": "what is recorded about the run",
    "cluster": "the SLURM site values of conf/local",
}


def runs() -> Any:
    """A key that says where or how a job runs or is observed, not what it computes (a
    relaunch may change it; not part of the job's identity, its ``config_hash``)."""
    return Field(FROM_YAML, json_schema_extra={"identity": "runs"})


def length() -> Any:
    """A key that says only how long a run trains: a finished run continues to a new
    length (``skip_finished=false``), under the same identity."""
    return Field(FROM_YAML, json_schema_extra={"identity": "length"})


def absent_as(value: Any) -> Any:
    """A key added after jobs were run: a saved config without it held ``value``."""
    return Field(FROM_YAML, json_schema_extra={"identity": "absent_as", "absent_as": value})


def unused_when(key: str, value: Any) -> Any:
    """A key that cannot change a job whose ``key`` is ``value`` (``norm.kind`` without a
    norm): such jobs are one job (twins), whatever this key says."""
    return Field(FROM_YAML, json_schema_extra={"identity": "unused_when", "when": [key, value]})


def _fits_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"must be at most {FLOAT32_MAX:.6g} (the largest float32)")
    return value


PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_fits_float32)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_fits_float32)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class Group(BaseModel):
    """Strict types (no ``"3"`` for 3, no 1 for true); keys not declared pass."""

    model_config = ConfigDict(extra="allow", strict=True)


class Optimizer(Group):
    lr: PosFloat
    weight_decay: NonNegFloat = FROM_YAML
    momentum: Annotated[float, Field(ge=0, lt=1)] = FROM_YAML
    nesterov: bool = FROM_YAML


class Scheduler(Group):
    warmup_steps: NonNegInt = FROM_YAML
    step_size: PosInt | None = FROM_YAML
    gamma: PosFloat = FROM_YAML


#: Lightning's ``precision`` values
PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", "64-true", "32-true", "16-true",
              "bf16-true", "16-mixed", "bf16-mixed", "transformer-engine",
              "transformer-engine-float16")  # fmt: skip


class Trainer(Group):
    # max_steps first: the check of max_epochs reads it. Lightning's -1 epochs never ends a
    # job, and null epochs without max_steps trains its default 1000: neither allowed
    max_steps: PosInt | Literal[-1] = length()
    max_epochs: PosInt | None = length()
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = FROM_YAML
    devices: PosInt | Literal["auto"] | list[NonNegInt] = FROM_YAML
    num_nodes: PosInt = FROM_YAML
    precision: Literal[PRECISIONS] = FROM_YAML
    gradient_clip_val: NonNegFloat | None = FROM_YAML
    default_root_dir: Any = runs()
    enable_progress_bar: Any = runs()

    @field_validator("max_epochs")
    @classmethod
    def _ends(cls, value: int | None, info: ValidationInfo) -> int | None:
        steps = info.data.get("max_steps")
        if value is None and (steps is None or steps == -1):
            raise ValueError(
                "leaves the run without an end; allowed: an integer >= 1, or null with "
                "trainer.max_steps set to an integer >= 1 (+trainer.max_steps=<steps>)"
            )
        return value


class Dataset(Group):
    num_samples: PosInt | None = FROM_YAML
    num_classes: PosInt | None = FROM_YAML  # >= 2, with the reason: igb.launch.validate
    shape: Annotated[list[PosInt], Field(min_length=1)] | None = FROM_YAML
    batch_size: PosInt
    eval_batch_size: PosInt | None = FROM_YAML
    val_fraction: Fraction | None = FROM_YAML
    test_fraction: Fraction | None = FROM_YAML
    separation: NonNegFloat | None = FROM_YAML
    seed: Seed = FROM_YAML
    standardize: bool = FROM_YAML
    data_dir: Any = runs()


class BiasStats(Group):
    splits: list[Literal[SPLITS]] = FROM_YAML
    test_at_end: bool = FROM_YAML
    batch_size: PosInt = FROM_YAML
    norm_mode: Literal[NORM_MODES] = FROM_YAML
    train_samples: PosInt | None = FROM_YAML
    subset_seed: Seed = FROM_YAML
    log_steps: NonNegInt = FROM_YAML
    charts: bool = FROM_YAML
    progress_min_batches: NonNegInt = FROM_YAML


class Model(Group):
    # absent from some models, never null where a model has them (no ``| None``)
    depth: Annotated[int, Field(gt=0, le=MAX_DEPTH)] = FROM_YAML
    width: PosInt = FROM_YAML
    residual_scale: PosFloat | None = FROM_YAML
    neutralize: Any = absent_as("none")
    weight_var: PosFloat | None = absent_as(None)
    bias_var: NonNegFloat = absent_as(0.0)
    head_weight_var: PosFloat | None = absent_as(None)
    head_bias_var: NonNegFloat | None = absent_as(None)
    unit_pool: Literal["none", "max", "avg"] = absent_as("none")
    unit_pool_size: PosInt = absent_as(2)


#: a norm placed nowhere: its kind and settings cannot change the network
_NO_NORM = ("norm.placement", "none")


class Norm(Group):
    kind: Any = unused_when(*_NO_NORM)
    eps: Any = unused_when(*_NO_NORM)
    momentum: Any = unused_when(*_NO_NORM)
    groups: Any = unused_when(*_NO_NORM)


class Ensemble(Group):
    n_inits: int  # >= 2, with the reason: igb.launch.validate_ensemble
    seed0: Seed = FROM_YAML
    eval_split: Literal[SPLITS] = FROM_YAML
    norm_mode: Literal[NORM_MODES] = FROM_YAML
    n_boot: PosInt = FROM_YAML
    eval_samples: int | None = FROM_YAML  # >= 2 and within the split: validate_ensemble
    ci_level: Annotated[float, Field(gt=0, lt=1)] = FROM_YAML
    progress: bool = runs()
    shards: PosInt = runs()
    shard: NonNegInt = runs()
    theory: bool = runs()
    theory_points: int | str | None = runs()  # >= 100, all or null: igb.launch.validate_ensemble
    profile: bool = runs()
    profile_features: Literal[REDUCTIONS] = runs()
    device: Any = runs()
    method: Any = runs()
    workers: Any = runs()
    chunk_size: Any = runs()

    @model_validator(mode="after")
    def _seeds_fit(self) -> Ensemble:
        last = (self.seed0 or 0) + self.n_inits - 1  # seed0 absent: the first seed is 0
        if last > MAX_SEED:
            raise ValueError(
                f"seed0 + n_inits - 1 = {last} exceeds {MAX_SEED}: seeds would wrap "
                "(the same initialization under two labels); use ensemble.seed0<="
                f"{max(0, MAX_SEED - self.n_inits + 1)}"
            )
        return self


#: the final metrics every training run records (status.json): what a sweeper may optimise
FINAL_METRICS = tuple(f"{split}/{m}" for split in ("train", "val", "test") for m in ("acc", "loss"))


class Launcher(Group):
    n_jobs: PosInt | Literal[-1] | None = FROM_YAML  # hydra/launcher=local: joblib's processes


class TopLevel(Group):
    seed: Seed = FROM_YAML
    optimized_metric: Literal[FINAL_METRICS] = runs()
    init_from: str | None = FROM_YAML
    ckpt_path: str | None = FROM_YAML
    skip_finished: bool = runs()
    restart: bool = runs()
    checkpoint_every_s: NonNegFloat = runs()


class Logger(Group):
    """A logger's node (``conf/logger/``): its keys go to the logger's class as they are.
    A key none of :attr:`TAKES` takes would raise inside the job, once its folder exists."""

    #: the callables the node's keys go to: the ``_target_``, then the ones it passes its
    #: ``**kwargs`` on to
    TAKES: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def unknown_key(cls, data: dict[str, Any]) -> str | None:
        """The first key of ``data`` that neither this model nor :attr:`TAKES` names."""
        extra = [k for k in data if k not in cls.model_fields and not k.startswith("_")]
        if not extra:
            return None
        from hydra.utils import get_object  # only for a key not declared here

        taken: set[str] = set()
        for target in cls.TAKES:
            try:
                taken |= set(signature_keys(get_object(target))[0])
            except Exception:  # noqa: BLE001 - an optional package absent: its own error
                return None
        return next((k for k in extra if k not in taken), None)


class CsvLogger(Logger):
    TAKES = ("igb.logging.csv_logger.ResumableCSVLogger", "lightning.pytorch.loggers.CSVLogger")
    save_dir: Any = FROM_YAML
    name: str | None = FROM_YAML
    version: str | NonNegInt | None = FROM_YAML
    prefix: str = FROM_YAML
    flush_logs_every_n_steps: PosInt = FROM_YAML


class WandbLogger(Logger):
    TAKES = ("igb.logging.loggers.wandb_logger", "lightning.pytorch.loggers.WandbLogger",
             "wandb.init")  # fmt: skip
    save_dir: Any = FROM_YAML
    project: str = FROM_YAML
    entity: str | None = FROM_YAML
    mode: Literal[MODES] = FROM_YAML
    system_metrics: Literal["auto", True, False] = FROM_YAML
    log_model: Literal[False, True, "all"] = FROM_YAML


class MlflowLogger(Logger):
    TAKES = ("igb.logging.mlflow_logger.mlflow_logger",)
    tracking_uri: str = FROM_YAML
    experiment_name: str = FROM_YAML


class TensorBoardLogger(Logger):
    TAKES = ("lightning.pytorch.loggers.TensorBoardLogger",
             "torch.utils.tensorboard.SummaryWriter")  # fmt: skip
    save_dir: Any = FROM_YAML
    name: str | None = FROM_YAML
    version: str | NonNegInt | None = FROM_YAML
    prefix: str = FROM_YAML
    default_hp_metric: bool = FROM_YAML
    log_graph: bool = FROM_YAML


#: config path -> the model of its values ("" is the top level)
GROUPS: dict[str, type[Group]] = {
    "": TopLevel,
    "model": Model,
    "norm": Norm,
    "optimizer": Optimizer,
    "scheduler": Scheduler,
    "trainer": Trainer,
    "dataset": Dataset,
    "callbacks.bias_stats": BiasStats,
    "ensemble": Ensemble,
    "hydra.launcher": Launcher,
    "logger.csv": CsvLogger,
    "logger.wandb": WandbLogger,
    "logger.mlflow": MlflowLogger,
    "logger.tensorboard": TensorBoardLogger,
}
#: groups every job needs (``~model`` removes one)
REQUIRED = ("model", "norm", "dataset")


def identity_rules() -> IdentityRules:
    """What each key is to a job's identity, read from the fields' declarations: the table
    :data:`igb.jobs.identity.RULES` holds (jobs may not import the launch; a test checks
    that the two agree)."""
    runs_keys, lengths, absent, unused = list(RUNS_GROUPS), [], {}, {}
    for path, model in GROUPS.items():
        for name, info in model.model_fields.items():
            key = f"{path}.{name}" if path else name
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            role = extra.get("identity")
            if role == "runs":
                runs_keys.append(key)
            elif role == "length":
                lengths.append(key)
            elif role == "absent_as":
                absent[key] = extra["absent_as"]
            elif role == "unused_when":
                when, value = extra["when"]
                unused.setdefault((when, value), []).append(key)
    return IdentityRules(
        runs=tuple(sorted(runs_keys)),
        length=tuple(sorted(lengths)),
        absent_as=absent,
        unused_when={w: _as_composed(w, keys) for w, keys in unused.items()},
    )


def _as_composed(when: tuple[str, Any], keys: list[str]) -> dict[str, Any]:
    """The values that stand for unused keys: those the option that makes them unused
    composes (``norm=none``'s ``kind``...), so that such a job's hash is unchanged."""
    group = when[0].rsplit(".", 1)[0]
    option = OmegaConf.load(find_conf_dir() / group / f"{when[1]}.yaml")
    return {key: option[key.rsplit(".", 1)[1]] for key in sorted(keys)}


def _values(node: DictConfig) -> dict[str, Any]:
    """The group's own values (not its sub-groups, not Hydra's node), each resolved."""
    data: dict[str, Any] = {}
    for key in node.keys():
        if key == "hydra":
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            continue
        data[str(key)] = (
            OmegaConf.to_container(value, resolve=True) if isinstance(value, ListConfig) else value
        )
    return data


def _line(path: str, data: dict[str, Any], error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"] if not str(p).startswith(("function-", "literal["))]
    loc = [p for p in loc if not p.isdigit()] or loc
    field = loc[0] if loc else ""
    key = ".".join(p for p in (path, field) if p) or path
    value = data.get(field, first.get("input")) if field else ""
    message = first["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    if first["type"] == "missing":
        message = "is required"
    declared = _declared(GROUPS[path], field)
    message = _bound(first["type"], first.get("ctx") or {}, declared) or message
    where = f"{key}={_shown(value)}" if field and first["type"] != "missing" else key
    if first["type"].startswith("literal") or first["type"].endswith("_type"):
        message = _allowed(GROUPS[path], field) or message
    return ConfigError(key or "config", f"{where} {message}")


_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_BOUNDS_KEY = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt",
               "less_than_equal": "le"}  # fmt: skip


def _declared(model: type[Group], field: str) -> dict[str, Any]:
    """The bounds (``gt``, ``ge``, ``lt``, ``le``) and ``finite`` a field's annotation
    declares at its top level (``Seed``, ``PosFloat``...; not inside a union)."""
    info = model.model_fields.get(field)
    out: dict[str, Any] = {}
    for item in info.metadata if info is not None else []:
        for name in ("gt", "ge", "lt", "le"):
            if getattr(item, name, None) is not None:
                out[name] = getattr(item, name)
        if getattr(item, "allow_inf_nan", None) is False:
            out["finite"] = True
    if info is not None and out:
        out["integer"] = info.annotation is int
    return out


def _num(limit: float) -> str:
    return str(limit) if isinstance(limit, int) else f"{limit:g}"


def _bound(kind: str, ctx: dict[str, Any], declared: dict[str, Any]) -> str | None:
    """``must be a positive integer``, ``must be >= 0``: a range in the user's words. A
    range bounded on both sides is said whole (``an integer in [0, 4294967295]``, ``a number
    in (0, 1)``), and so is the declared range that a value of the wrong type, or an
    infinite one, misses."""
    if kind in _BOUNDS:
        bounds = [(kind, next(iter(ctx.values())))]
    elif declared and kind in ("int_type", "float_type", "finite_number"):
        bounds = [(k, declared[_BOUNDS_KEY[k]]) for k in _BOUNDS if _BOUNDS_KEY[k] in declared]
    else:
        return None
    integer = declared.get("integer", all(isinstance(limit, int) for _, limit in bounds))
    what, article = ("integer", "an") if integer else ("number", "a")  # the field's own type
    finite = "finite " if declared.get("finite") else ""
    if "ge" in declared and "le" in declared:
        return f"must be {article} {what} in [{_num(declared['ge'])}, {_num(declared['le'])}]"
    if "gt" in declared and "lt" in declared:
        return f"must be {article} {what} in ({_num(declared['gt'])}, {_num(declared['lt'])})"
    if bounds == [("greater_than", 0)]:
        return f"must be a positive {finite}{what}"
    if kind == "finite_number":  # not finite: say so; a broken range says only the range
        article, what = "a", f"{finite}{what}"
    said = " and ".join(f"{_BOUNDS[k]} {_num(limit)}" for k, limit in bounds)
    return f"must be {article} {what} {said}".rstrip()


def _shown(value: Any) -> str:
    """A value as the command line writes it: null, true, false."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return str(value)


def _choices(annotation: Any) -> list[Any]:
    """The values of every ``Literal`` inside ``annotation`` (through unions, lists)."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [c for arg in get_args(annotation) for c in _choices(arg)]


def _allowed(model: type[Group], field: str) -> str | None:
    """``must be one of a, b, c`` for a field whose annotation lists choices."""
    info = model.model_fields.get(field)
    choices = _choices(info.annotation) if info is not None else []
    if not choices or len(choices) == 1:
        return None
    return f"must be one of {', '.join(dict.fromkeys(map(_shown, choices)))}"


def accepts_null(key: str) -> bool:
    """Whether the schema lists null as a value of ``key`` (``ensemble.eval_samples=null``:
    every point); a key it does not declare, or declares without null, needs a value."""
    path, _, field = key.rpartition(".")
    model = GROUPS.get(path)
    info = model.model_fields.get(field) if model is not None else None
    return info is not None and _admits_none(info.annotation)


def _admits_none(annotation: Any) -> bool:
    return annotation is type(None) or any(_admits_none(a) for a in get_args(annotation))


def check_schema(cfg: DictConfig) -> None:
    """Raise a one-line ConfigError for the first key of ``cfg`` whose type or range is
    wrong, or for a required group that is missing."""
    for group in REQUIRED:
        if not isinstance(OmegaConf.select(cfg, group), DictConfig):
            options = sorted(p.stem for p in (find_conf_dir() / group).glob("*.yaml"))
            raise ConfigError(
                group, f"{group} is required; choose one with {group}=<{'|'.join(options)}>"
            )
    for path, model in GROUPS.items():
        node = OmegaConf.select(cfg, path) if path else cfg
        if not isinstance(node, DictConfig):
            continue
        try:
            data = _values(node)
        except Exception as exc:  # noqa: BLE001 - an interpolation that does not resolve
            raise ConfigError(path or "config", f"{path or 'config'}: {exc}") from None
        try:
            model.model_validate(data)
        except ValidationError as exc:
            raise _line(path, data, exc) from None
        unknown = model.unknown_key(data) if issubclass(model, Logger) else None
        if unknown is not None:
            keys = ", ".join(k for k in model.model_fields)
            raise ConfigError(
                f"{path}.{unknown}",
                f"{path}.{unknown}={_shown(data[unknown])}: {path} takes no '{unknown}'; "
                f"its keys: {keys}, or an argument of {', '.join(model.TAKES)}",
            )
