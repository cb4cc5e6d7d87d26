"""Reading a TOML configuration file, with errors that name the file (scenario loaders).

Every loader's error reads the same way (``located``): the file, the key when one is at
fault (``episode[2].restorations[0].end``), then the problem."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def located(source: str, key: str, problem: str) -> str:
    """``file: key: problem``, or ``file: problem`` when the whole file is at fault."""
    where = f"{source}: {key}" if key else source
    return f"{where}: {problem}"


def read_toml(
    path: str | Path, error: Callable[[str, str, str], Exception]
) -> tuple[str, dict[str, Any]]:
    """``(source, data)`` of a TOML file; unreadable or invalid files raise
    ``error(source, key, problem)`` with an empty key."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(source, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(source, "", f"cannot read: {exc}") from exc
    try:
        return source, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(source, "", f"not valid TOML: {exc}") from exc
