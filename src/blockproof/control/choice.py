"""Which control servers the probe asks: the one place that decides.

Out of the box the probe asks OONI's public test helpers, as ooniprobe does, in the
order below; when one fails (unreachable, an error status, a malformed answer) the
next is tried, within the measurement's control budget. A user names others, in
order of precedence:

1. ``--control URL[,URL...]`` on the command line;
2. the ``BLOCKPROOF_CONTROL`` environment variable (same syntax);
3. ``control = "URL"`` or ``control = ["URL", ...]`` in ``config.toml`` in the probe's
   configuration directory (``$BLOCKPROOF_HOME``, else ``$XDG_CONFIG_HOME/blockproof``,
   else ``~/.config/blockproof``: where the probe's key lives);
4. OONI's public test helpers.

``none`` (at any of these levels) measures without a control, explicitly. Without a
control's view, blocking can be judged only where an HTTPS fetch succeeded (the TLS
handshake validated the address); everything else is "unknown (no control)".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blockproof.errors import ConfigError, InputError
from blockproof.tomlfile import located, read_toml

__all__ = [
    "CONFIG_FILE",
    "NO_CONTROL",
    "OONI_TEST_HELPERS",
    "choose_controls",
    "parse_controls",
]

# OONI's public Web Connectivity test helpers, in the order ooniprobe knows them
# (probe-cli internal/enginenetx/testhelperspolicy.go).
OONI_TEST_HELPERS: tuple[str, ...] = (
    "https://0.th.ooni.org/",
    "https://1.th.ooni.org/",
    "https://2.th.ooni.org/",
    "https://3.th.ooni.org/",
    "https://d33d1gs9kpq1c5.cloudfront.net/",
)
NO_CONTROL = "none"
CONFIG_FILE = "config.toml"


def parse_controls(text: str, *, where: str = "--control") -> tuple[str, ...]:
    """``URL[,URL...]`` or ``none`` -> the control URLs to try, in order (``()`` for none)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise InputError(f"{where}: expected a control URL or '{NO_CONTROL}'")
    if [item.lower() for item in items] == [NO_CONTROL]:
        return ()
    for item in items:
        _check_url(item, where)
    return tuple(dict.fromkeys(items))


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"{where}: {url!r} is not a control server URL "
            f"(http:// or https:// with a host, e.g. {OONI_TEST_HELPERS[0]}; "
            f"'{NO_CONTROL}' for no control)"
        )


def _config_error(source: str, key: str, problem: str) -> ConfigError:
    return ConfigError(located(source, key, problem))


def _from_config(directory: Path) -> tuple[str, ...] | None:
    path = directory / CONFIG_FILE
    if not path.is_file():
        return None
    source, data = read_toml(path, _config_error)
    value: Any = data.get("control")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: control: expected a URL, a list of URLs or 'none'")
    return parse_controls(",".join(value), where=f"{source}: control")


def choose_controls(option: str | None, *, config_dir: Path | None = None) -> tuple[str, ...]:
    """The control URLs to try, in order; ``()`` means none.

    ``option`` is ``--control`` (click fills it from ``BLOCKPROOF_CONTROL`` too);
    ``config_dir`` is where ``config.toml`` is looked for (the probe's configuration
    directory; ``None``: no configuration file).
    """
    if option is not None:
        return parse_controls(option)
    configured = _from_config(config_dir) if config_dir is not None else None
    if configured is not None:
        return configured
    return OONI_TEST_HELPERS
