"""Checks of the command line's overrides themselves, before any job is composed.

Hydra accepts some overrides that then fail late or silently: a key given twice (the last
wins, silently), a grid of millions of jobs (the pre-flight would compose each), ``key=null``
for a key the job needs (a TypeError deep in a constructor), ``+key=value`` for a key nothing
reads (it joins the job's identity and changes nothing, or reaches a constructor as a
TypeError). Each is one line here, naming the key and what is allowed.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, RangeSweep
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from igb.launch.conf_dir import find_conf_dir

#: jobs one launch may hold: the pre-flight composes and checks each (tens of ms a job)
MAX_GRID_JOBS = 5000
#: config paths whose new keys go to a library or a user's class as they are
FREE_NODES = ("hydra", "model.kwargs")
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


def parse(overrides: Sequence[str]) -> list[Override]:
    """The parsed overrides; a line naming the first that does not parse, and why, else."""
    parser = OverridesParser.create()
    try:
        return parser.parse_overrides(list(overrides))
    except OverrideParseException:
        pass
    for i, text in enumerate(overrides):
        try:
            parser.parse_overrides([text])
        except OverrideParseException as exc:
            why = str(exc).splitlines()[0].split(" expecting ")[0]
            if why == "mismatched input '<EOF>'":
                why = "it ends where a value is expected"
            nxt = overrides[i + 1] if i + 1 < len(overrides) else ""
            split = f" (a space split it from '{nxt}')" if nxt and "=" not in nxt else ""
            raise OverrideParseException(
                text,
                f"cannot parse the override '{text}'{split}: {why}; a grid lists its values "
                "with commas and no spaces (model=mlp,cnn -m), a value with spaces or "
                f"brackets goes in quotes; grammar: {GRAMMAR}",
            ) from None
    raise AssertionError("unreachable: the list did not parse but each override does")


def override_key(text: str) -> str:
    """The key an override sets: ``+key``, ``++key`` and ``~key`` set ``key``; a group's
    package stays part of it (``model@a=mlp`` and ``model@b=cnn`` are two keys)."""
    return text.split("=", 1)[0].strip().lstrip("+~").strip()


def given_twice(parsed: Sequence[Override]) -> str | None:
    """A key given twice (``model.width=8 model.width=16``): Hydra would let the last win
    silently, and a grid's values given twice (``seed=0,1 seed=2``) leave which grid was
    meant unknown. A grid lists its values in one override."""
    seen: dict[str, str] = {}
    for o in parsed:
        text = o.input_line or ""
        key = override_key(text)
        if key in seen:
            return (
                f"{key} is given twice ({seen[key]}, {text}); give each key once (a grid "
                "lists its values in one override: key=a,b)"
            )
        seen[key] = text
    return None


def grid_size(parsed: Sequence[Override]) -> int:
    """The number of jobs of the command line's own grid (a range is counted, not walked)."""
    size = 1
    for o in parsed:
        if not o.is_sweep_override():
            continue
        sweep = o.value()
        if isinstance(sweep, RangeSweep):
            size *= max(0, math.ceil((sweep.stop - sweep.start) / sweep.step))
        else:
            size *= sum(1 for _ in itertools.islice(o.sweep_string_iterator(), MAX_GRID_JOBS + 1))
    return size


def too_many_jobs(size: int) -> str | None:
    if size <= MAX_GRID_JOBS:
        return None
    return (
        f"the grid holds {size} jobs; one launch runs at most {MAX_GRID_JOBS}: split it "
        "into several launches (each its own hydra.sweep.dir)"
    )


def _group_names() -> set[str]:
    return {p.name for p in find_conf_dir().iterdir() if p.is_dir()}


def value_problem(parsed: Sequence[Override], default: Callable[[str], Any]) -> str | None:
    """``key=null`` for a key whose configuration sets a value and whose schema does not
    list null as a value of its own; a scalar in place of a node of keys (null removes a
    node: ``callbacks.progress=null``). ``default(key)`` is the value without the override."""
    groups = _group_names()
    for o in parsed:
        key = o.key_or_group
        if o.is_delete() or o.is_sweep_override() or o.is_add() or o.is_force_add():
            continue
        before, value = default(key), o.value()
        if key in groups and not isinstance(value, str | None):
            options = sorted(p.stem for p in (find_conf_dir() / key).glob("*.yaml"))
            return f"{key}={value} is not an option of '{key}'; allowed: {', '.join(options)}"
        if key.split(".")[0] in FREE_NODES or key in groups or o.package:
            continue
        if isinstance(before, DictConfig):
            if value is None or isinstance(value, dict):
                continue
            keys = ", ".join(sorted(str(k) for k in before))
            return (
                f"{key}={o.value()}: {key} is a node of keys ({keys}); set one of them, "
                f"{key}.<key>=<value>, or null to remove it"
            )
        if value is None and before is not None:
            from igb.launch.schema import accepts_null  # it loads torch: only for a null

            if not accepts_null(key):
                return f"{key}=null: {key} is required here (default {before}); give it a value"
    return None


def signature_keys(target: Any) -> tuple[list[str], bool]:
    """The keyword parameters of a class or function, and whether it takes ``**kwargs``."""
    params = inspect.signature(target).parameters.values()
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def added_key_problem(parsed: Sequence[Override], cfg: DictConfig) -> str | None:
    """``+key=value`` for a key nothing reads: refused, whatever the node. A node with a
    ``_target_`` passes its keys to that class: a new key must be one of its parameters;
    an external model's constructor takes its own under ``model.kwargs``."""
    from hydra.utils import get_object

    from igb.nn.external import is_external

    groups = _group_names()
    for o in parsed:
        if not (o.is_add() or o.is_force_add()):
            continue
        key = o.key_or_group
        if key in groups or key.split(".")[0] in FREE_NODES or "/" in key:
            continue
        parent, _, name = key.rpartition(".")
        if name.startswith("_"):  # Hydra's own keys: _target_, _partial_, _args_
            continue
        if parent == "model.kwargs" or parent.startswith("model.kwargs."):
            continue  # an external model's own arguments: its build in check_run reads them
        node = OmegaConf.select(cfg, parent) if parent else cfg
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        where, skip = (f"'{parent}'" if parent else "the config"), ("hydra", name)
        if target is None:
            return (
                f"+{key}: nothing reads {key}, it would only change the job's identity; "
                f"keys of {where}: {', '.join(sorted(str(k) for k in node if k not in skip))}"
            )
        try:
            cls = get_object(str(target))
            names, free = signature_keys(cls)
        except Exception:  # noqa: BLE001 - an unimportable target is reported where it is built
            continue
        if is_external(cls):
            return (
                f"+{key}: model={node.get('name')} passes its constructor's arguments "
                f"under model.kwargs; write +model.kwargs.{name}=..."
            )
        if not free and name not in names:
            allowed = [n for n in names if n not in ("self", "input_shape", "num_classes",
                                                     "norm_act")]  # fmt: skip
            return f"+{key}: {target} takes no '{name}'; it takes {', '.join(allowed)}"
    return None
