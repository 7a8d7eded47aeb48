"""Decide the W&B mode without touching the network: online only with credentials."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

MODES = ("auto", "online", "offline", "disabled")


def _has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    host = base.split("://", 1)[-1].split("/", 1)[0]
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(requested: str = "auto", save_dir: str | None = None) -> tuple[str, str | None]:
    """(mode, message): ``auto`` -> online with credentials, else offline with a sync hint.

    An explicit ``WANDB_MODE`` (offline/disabled/online) wins over ``auto``. Never prompts.
    """
    if requested not in MODES:
        raise ValueError(f"logger.wandb.mode={requested!r}; allowed: {', '.join(MODES)}")
    env = os.environ.get("WANDB_MODE", "").lower()
    if requested == "auto" and env in ("online", "offline", "disabled", "dryrun"):
        requested = "offline" if env == "dryrun" else env
    if requested == "auto":
        requested = "online" if _has_credentials() else "offline"
        if requested == "offline":
            where = save_dir or "wandb"
            return "offline", (
                f"W&B: no credentials found, logging offline to {where}; upload later with "
                f"`wandb sync {where}/offline-run-*`"
            )
    return requested, None
