"""Errors that the entry points turn into one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn


class ConfigError(ValueError):
    """A bad configuration value; names the config key and what would be allowed.

    Raised before any tensor is made or any job folder is written, so that bad
    input never leaves something behind that looks like a result.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return self.message if self.key in self.message else f"{self.key}: {self.message}"


def not_a_key(
    exc: TypeError,
    group: str,
    option: Any,
    keys: Sequence[Any],
    passed: Iterable[Any] | None = None,
) -> ConfigError | None:
    """The one line for a constructor's TypeError over a key of the ``group`` config that it
    does not take (``+model.foo=1``): the key, and the keys ``group=option`` has (``keys``).
    ``passed``: the keys the constructor was given (default: all). None where the
    TypeError names none of them: a fault of the constructor's own."""
    bad = next((k for k in (keys if passed is None else passed) if f"'{k}'" in str(exc)), None)
    if bad is None:
        return None
    others = ", ".join(str(k) for k in keys if k not in (bad, "_target_"))
    return ConfigError(
        f"{group}.{bad}", f"{group}.{bad} is not a key of {group}={option}; its keys: {others}"
    )


class JobError(RuntimeError):
    """A job cannot run in its folder as it is (a damaged checkpoint, ...): the message is
    one line naming the file and the way out; the job is recorded ``failed``."""


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message, for CLI reporting."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OneLineParser(argparse.ArgumentParser):
    """``argparse``'s parser whose errors are one line on stderr and exit 2 (argparse's own
    prints the usage first), for every command-line tool of the project."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (--help lists the options)\n")


def fraction(text: str) -> float:
    """An ``argparse`` type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a number in (0, 1)")
    return value
