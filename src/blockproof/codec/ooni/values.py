"""JSON values as OONI data holds them: tolerant readers, base64, "maybe binary" strings.

Real OONI data spans ten years of probes (Python ooniprobe, measurement-kit, Web
Connectivity 0.4 and 0.5), so the readers accept nulls, missing keys, ints written
as floats, base64 bodies and headers, and never raise on a JSON value: each
``read_*`` returns the value when it has the expected type and a default
otherwise. ``DecodeError`` is the one exception the codec raises, for input that
must be valid (the envelope's object, the test-helper protocol).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]


class DecodeError(ValueError):
    """Invalid JSON input; the message starts with the JSON path of the bad value."""


# --------------------------------------------------------------------------------------
# tolerant scalar readers: the value when it has the expected JSON type, else a default


def read_str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def read_opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Integers outside what OONI's Go probes and orjson read and write (64 bits) are unreadable:
# ``1e300`` is an integral double, but written back as 10**300 no reader would take it.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def read_opt_int(value: Any) -> int | None:
    if type(value) is int:  # the common case first (exactly int: not a bool, no IntEnum)
        return value if _INT_MIN <= value <= _INT_MAX else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # int(): an IntEnum (dnspython's Rcode) is an int, but ``in range(...)`` walks
        # a range element by element for anything but an exact int
        number = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        return None
    return number if _INT_MIN <= number <= _INT_MAX else None


def read_int(value: Any, default: int = 0) -> int:
    if type(value) is int and _INT_MIN <= value <= _INT_MAX:  # the common case first
        return value
    number = read_opt_int(value)
    return default if number is None else number


def read_float(value: Any, default: float = 0.0) -> float:
    if type(value) is float:  # the common case first
        return value if math.isfinite(value) else default
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return default


def read_bool(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def read_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def read_dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------
# base64 and df-001 "maybe binary" values


def b64decode_lenient(data: str) -> bytes:
    """Lenient base64: tolerates missing padding and whitespace (seen in real data)."""
    text = "".join(data.split())
    if len(text) % 4 == 1:  # cannot be valid: drop the stray character
        text = text[:-1]
    text += "=" * (-len(text) % 4)
    # the standard alphabet silently drops "-" and "_": try the URL-safe one first for them
    decoders: list[Callable[[str], bytes]] = [base64.b64decode, base64.urlsafe_b64decode]
    if "-" in text or "_" in text:
        decoders.reverse()
    for decode in decoders:
        try:
            return decode(text)
        except (binascii.Error, ValueError):
            continue
    return text.encode("utf-8", "surrogatepass")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def read_maybe_binary_bytes(value: Any) -> bytes:
    """A df-001 "maybe binary" value: a string, or ``{"format": "base64", "data": ...}``."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict) and isinstance(value.get("data"), str):
        return b64decode_lenient(value["data"])
    return b""


def read_maybe_binary_str(value: Any) -> str:
    """Like ``read_maybe_binary_bytes`` but as text; undecodable bytes are surrogate-escaped."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("data"), str):
        return b64decode_lenient(value["data"]).decode("utf-8", "surrogateescape")
    if isinstance(value, list) and value:  # some producers write header values as lists
        return read_maybe_binary_str(value[0])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def encode_binary(data: bytes) -> str | JSON:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"data": b64encode(data), "format": "base64"}


def encode_binary_str(text: str) -> str | JSON:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        return {"data": b64encode(raw), "format": "base64"}
    return text
