"""Decide the W&B mode without touching the network: online only with credentials.

``resolve_mode`` never imports wandb, never prompts and never opens a socket. It mirrors how
wandb 0.31 looks for credentials (a private function of wandb, listed and checked in
:mod:`igb.compat`):

1. ``WANDB_API_KEY`` or ``WANDB_IDENTITY_TOKEN_FILE`` in the environment;
2. a ``machine`` entry with a password for the server's host in the netrc file (``$NETRC``,
   else ``~/.netrc``, else ``~/_netrc``); for the default server (CoreWeave Forge,
   ``api.forge.coreweave.com``, the default since wandb 0.2x) wandb also accepts the
   ``api.wandb.ai`` entry written by older ``wandb login``;
3. an ``api_key`` in the wandb settings files: the global one (``$WANDB_CONFIG_DIR/settings``,
   else ``~/.config/wandb/settings``) and the workspace one
   (``<$WANDB_DIR or cwd>/wandb/settings``).

The server is ``$WANDB_BASE_URL``, else ``base_url`` from the settings files, else the default.

Modes, most restrictive first: disabled < offline < online < auto. The result is the most
restrictive of the requested mode, ``$WANDB_MODE`` (``dryrun`` = offline, ``run``/``shared`` =
online) and ``mode`` in the settings files (written by ``wandb offline`` / ``wandb disabled``).
Whatever asks for online (``auto``, ``online``) without credentials falls back to offline, since
wandb would otherwise prompt for a key (on a terminal) or fail.
"""

from __future__ import annotations

import configparser
import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

MODES = ("auto", "online", "offline", "disabled")

#: wandb's default server (0.31) and the hosts whose netrc entries it accepts for a given host
DEFAULT_BASE_URL = "https://api.forge.coreweave.com"
_UPSTREAM = {
    "api.forge.coreweave.com": "api.wandb.ai",
    "forge.coreweave.com": "api.wandb.ai",
    "api.qa.forge.coreweave.com": "api.qa.wandb.ai",
    "qa.forge.coreweave.com": "api.qa.wandb.ai",
}
_RANK = {"disabled": 0, "offline": 1, "online": 2, "auto": 3}
_ENV_ALIASES = {
    "dryrun": "offline",
    "offline": "offline",
    "disabled": "disabled",
    "online": "online",
    "run": "online",
    "shared": "online",
}


def _settings_files() -> list[Path]:
    """wandb's settings files, global first (the workspace file overrides it)."""
    config_dir = os.environ.get("WANDB_CONFIG_DIR")
    global_file = (
        Path(config_dir).expanduser() / "settings"
        if config_dir
        else Path.home() / ".config" / "wandb" / "settings"
    )
    root = Path(os.environ.get("WANDB_DIR") or os.getcwd()).expanduser()
    wandb_dir = root / ".wandb" if (root / ".wandb").exists() else root / "wandb"
    return [global_file, wandb_dir / "settings"]


def read_settings_files() -> dict[str, str]:
    """The ``[default]`` section of wandb's settings files, merged (unreadable files are empty)."""
    merged: dict[str, str] = {}
    for path in _settings_files():
        parser = configparser.ConfigParser()
        try:
            if not path.is_file():
                continue
            parser.read(path)
            merged.update(parser.items("default"))
        except (OSError, configparser.Error):
            continue
    return merged


def _netrc_path() -> Path:
    if env := os.environ.get("NETRC"):
        return Path(env).expanduser()
    home = Path.home()
    for name in (".netrc", "_netrc"):
        if (home / name).exists():
            return home / name
    return home / ".netrc"


def base_url(settings: dict[str, str] | None = None) -> str:
    """The W&B server wandb would use: ``$WANDB_BASE_URL``, settings files, default."""
    if settings is None:
        settings = read_settings_files()
    return (
        os.environ.get("WANDB_BASE_URL") or settings.get("base_url") or DEFAULT_BASE_URL
    ).rstrip("/")


def find_credentials() -> str | None:
    """Where wandb would find credentials (env var name or file path), or None. No network."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY"
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return "WANDB_IDENTITY_TOKEN_FILE"
    settings = read_settings_files()
    url = urlsplit(base_url(settings))
    hosts = [h for h in (url.netloc, _UPSTREAM.get(url.hostname or "")) if h]
    path = _netrc_path()
    try:
        entries = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        entries = None
    if entries is not None:
        for h in hosts:
            creds = entries.authenticators(h)
            if creds and creds[2]:
                return str(path)
    if settings.get("api_key"):
        return "wandb settings file"
    return None


def resolve_mode(requested: str = "auto", save_dir: str | None = None) -> tuple[str, str | None]:
    """(mode, message) with mode in online/offline/disabled; never prompts, never networks.

    ``auto`` -> online when credentials exist (see module doc), else offline. An explicit
    ``WANDB_MODE`` (or ``mode`` in wandb's settings files) that is more restrictive than the
    request wins. ``message`` is a one-line explanation whenever the result is not what was
    asked for, was forced by the environment, or is offline (then it says how to upload);
    None for a plain online or disabled run.
    ``save_dir`` is the folder wandb writes its ``offline-run-*`` folders to (for the hint).
    """
    if requested not in MODES:
        raise ValueError(f"logger.wandb.mode={requested!r}; allowed: {', '.join(MODES)}")
    where = save_dir or "wandb"
    sync_hint = f"upload later with `wandb sync {where}/offline-run-*`"

    mode, forced_by = requested, None
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    file_mode = read_settings_files().get("mode", "").strip().lower()
    for source, value in (("WANDB_MODE", env), ("wandb settings file", file_mode)):
        value = _ENV_ALIASES.get(value, "")
        if value and _RANK[value] < _RANK[mode]:
            mode, forced_by = value, f"{source}={value}"

    if mode == "disabled":
        return "disabled", (f"W&B: disabled ({forced_by})" if forced_by else None)
    if mode == "offline":
        why = forced_by or "offline requested"
        return "offline", f"W&B: {why}, logging offline to {where}; {sync_hint}"
    if find_credentials() is None:
        return "offline", f"W&B: no credentials found, logging offline to {where}; {sync_hint}"
    return "online", None
