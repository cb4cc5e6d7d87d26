r"""RFC 8785 JSON Canonicalization Scheme (JCS): one exact byte string per JSON value.

A probe signs a measurement, and the collector logs it, as the JCS form of the
measurement: whoever holds the measurement in *any* JSON spelling (other key
order, whitespace, escapes, ``1.0`` or ``1``) can recompute the same bytes, so
the same signature check and the same transparency-log leaf hash.

    canonicalize({"b": [1.0, "é"], "a": None})   # b'{"a":null,"b":[1,"é"]}'
    value, canonical = canonicalize_bytes(b'{"b": [1.0, "\\u00e9"], "a": null}')

The rules (RFC 8785 §3.2), with I-JSON's restrictions (RFC 7493):

- no whitespace; object members sorted by their keys compared as sequences of
  UTF-16 code units (not code points: U+1F600 sorts *before* U+E000, because
  it is the surrogate pair D83D DE00);
- strings escape only ``"``, ``\`` and U+0000..U+001F: ``\b \t \n \f \r`` in
  their short forms, the others as ``\u00xx`` with lowercase hex; every other
  character is written as itself in UTF-8;
- numbers are IEEE doubles written as ECMAScript's ``Number.prototype.toString``
  writes them: the fewest digits that read back as the same double, no ``.0``
  on integral values, an exponent only below 1e-6 or from 1e21 on (``1e-7``,
  ``1e+21``), ``-0`` as ``0``;
- refused with ``CanonicalizationError``, naming the JSON path where it can:
  NaN and Infinity; strings with lone surrogates (not Unicode); Python ints
  beyond I-JSON's exact range ±(2**53 - 1), ``MAX_SAFE_INTEGER`` (a double
  cannot hold them, so readers would disagree on the value); duplicate keys in
  one object of JSON text (I-JSON forbids them: readers disagree on which value
  wins, so a signature over one reading would vouch for content another reader
  never sees); Python values that are not JSON; nesting deeper than
  ``MAX_DEPTH``.

In JSON text every number is a double, as in ECMAScript. An integer literal
beyond ±(2**53 - 1) is read as a double only if it is exactly how JCS writes
that double (``canonicalize(1e16)`` is ``10000000000000000``), so canonical
text always reads back to itself; any other (``9007199254740993``) is refused
rather than silently rounded.

Theory of operation
-------------------

There are two implementations, and they must agree byte for byte.

**The reference** (``_reference``, ``_reference_bytes``) follows the rules above
one at a time in plain Python: parse with the standard library (its hooks
refuse duplicate keys, NaN and big integers), walk the value, sort keys by
their UTF-16 encoding, escape strings from a table, lay out each double's
shortest ``repr`` digits by ECMAScript's four cases. It is slow (a few
milliseconds for a 20 KB measurement) and meant to be read. The tests check the
fast path against it on generated JSON, and the fast path hands it every
document that is unusual.

**The fast path** lets ``orjson`` (Rust) do the work and patches the few places
where its output is not JCS yet. ``orjson.dumps(value, OPT_SORT_KEYS |
OPT_STRICT_INTEGER)`` writes compact JSON, escapes strings exactly as JCS does,
refuses integers beyond ±(2**53 - 1) and sorts keys by code point. It differs
from JCS in three ways only:

1. *Key order*, when the first difference between two keys of one object is an
   astral character (U+10000 and up) against one in U+E000..U+FFFF: there
   code-point order and UTF-16 order disagree. Astral characters are the only
   ones with a 4-byte UTF-8 sequence (lead byte F0..F4): if the output is not
   ASCII, the strings holding such bytes are looked at, and if one of them is a
   key the document goes to the reference.
2. *Numbers*: orjson writes integral doubles as ``1.0`` and ``-0.0``, doubles in
   [1e-6, 1e-5) as ``1.5e-6`` and doubles from 1e16 up as ``1e+16``, where JCS
   wants ``1``, ``0``, ``0.0000015`` and ``10000000000000000``; every other
   double it writes exactly as ECMAScript does. Two regular-expression scans
   find ``.0`` and ``-6`` followed by ``,`` ``]`` or ``}`` (a literal prefix
   lets the regex engine skip along in C), and a byte search finds each ``+``
   after an ``e``. A match may be inside a string. The nearest quote before it
   usually tells: an escaped one (odd run of backslashes) means inside; a
   delimiter is an opening one if what follows it cannot follow a closing
   quote, and a closing one if what precedes it cannot precede an opening
   quote (orjson writes no whitespace). Only where both could be (a key like
   ``"a:"``) are the delimiters from the start counted. ``<digits>.0`` loses
   its ``.0``; ``...e-6`` is rewritten by the reference formatter; an ``e+``
   sends the document to the reference (rare, and in JSON text it may stand
   for an integer literal, which has its own rule above).
3. *NaN, Infinity and non-JSON values*: orjson writes NaN as ``null``, and
   UUIDs or enums as strings. Parsed JSON holds none of them; for
   ``canonicalize(value)`` a walk over the value checks types and finiteness
   first (that walk is most of what ``canonicalize`` costs).

For JSON text, ``canonicalize_bytes`` parses with ``orjson.loads``, which
refuses invalid UTF-8, lone surrogates, NaN and Infinity, but keeps the last of
duplicate keys silently. If the input equals the output (blockproof's probes
send canonical bytes) or orjson's sorted output, it cannot have had duplicates.
Otherwise colons are counted: outside strings there is one per object member,
so a dropped duplicate leaves the output with fewer colons than the input
(unless the input wrote some colon as ``\u003a``: such documents go to the
reference).

Each of these scans costs about a third of ``orjson.dumps``: on canonical input
``canonicalize_bytes`` takes about 1.4 times ``orjson.loads`` + ``orjson.dumps``;
on other spellings the duplicate check (three more scans) brings it to about 1.9.

``orjson`` is checked once at import against the reference (escapes, key order,
some six hundred doubles of every magnitude); if some version writes
differently, everything goes through the reference: slower, never wrong.
"""

from __future__ import annotations

import json
import math
import random
import re
from decimal import Decimal
from typing import Any, Final

import orjson

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "CanonicalizationError",
    "canonicalize",
    "canonicalize_bytes",
]

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer I-JSON (and ECMAScript's ``Number.MAX_SAFE_INTEGER``) keeps exact."""

MAX_DEPTH: Final = 500
"""Deepest nesting accepted (a measurement nests about 8 levels)."""


class CanonicalizationError(ValueError):
    """A value or text that has no RFC 8785 canonical form; the message says where and why."""


# ------------------------------------------------------------------ reference

_SHORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"} | {
    "\f": "\\f",
    "\r": "\\r",
}
_ESCAPES: Final = {chr(c): _SHORT_ESCAPES.get(chr(c), f"\\u{c:04x}") for c in range(0x20)} | {
    '"': '\\"',
    "\\": "\\\\",
}
_TO_ESCAPE: Final = re.compile('["\\\\\x00-\x1f]')
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _child(path: str, key: str | int) -> str:
    """The JSON path of a member or element, for error messages: ``$.a.b[3]["x y"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _NAME.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _quote(text: str, path: str) -> str:
    """A string in JCS form (RFC 8785 §3.2.2.2), quotes included."""
    lone = _SURROGATE.search(text)
    if lone is not None:
        raise CanonicalizationError(
            f"{path}: the string has a lone surrogate U+{ord(lone.group()):04X} at index "
            f"{lone.start()}; it is not Unicode text, so it has no canonical form"
        )
    return '"' + _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text) + '"'


def _number(x: float, path: str = "$") -> str:
    """A double as ECMAScript's ``Number.prototype.toString`` writes it (RFC 8785 §3.2.2.3).

    ECMA-262 (Number::toString): let the digits ``s`` (``k`` of them, no
    trailing zeros) and the exponent ``n`` be such that the value is
    ``s × 10**(n - k)`` and ``k`` is as small as possible. Python's ``repr``
    gives exactly those shortest round-trip digits; only the layout differs.
    """
    if not math.isfinite(x):
        raise CanonicalizationError(
            f"{path}: {x!r} is not a JSON number (RFC 8785 and I-JSON forbid NaN and Infinity)"
        )
    if x == 0:
        return "0"  # and -0 too
    sign = "-" if x < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()[1:]
    s = "".join(map(str, digits_tuple))
    k = len(s)
    n = k + int(exponent)
    if k <= n <= 21:
        text = s + "0" * (n - k)
    elif 0 < n <= 21:
        text = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + s
    else:
        e = n - 1
        mantissa = s if k == 1 else s[0] + "." + s[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _utf16_order(key: str) -> bytes:
    """Sort key: UTF-16BE bytes compare exactly like sequences of UTF-16 code units."""
    return key.encode("utf-16-be")


def _emit(value: Any, out: list[str], path: str, depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_quote(value, path))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalizationError(
                f"{path}: the integer {int.__repr__(value)} is outside I-JSON's exact range "
                f"-{MAX_SAFE_INTEGER}..{MAX_SAFE_INTEGER} (a double cannot hold it; "
                "write it as a string)"
            )
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_number(value, path))
    elif isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            raise CanonicalizationError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            members: list[tuple[bytes, str, str, Any]] = []
            for key, item in value.items():
                if not isinstance(key, str):
                    raise CanonicalizationError(f"{path}: the object key {key!r} is not a string")
                where = _child(path, key)
                quoted = _quote(key, where)  # first: it refuses lone surrogates
                members.append((_utf16_order(key), quoted, where, item))
            members.sort(key=lambda member: member[0])
            out.append("{")
            for i, (_, quoted, where, item) in enumerate(members):
                out.append("," if i else "")
                out.append(quoted + ":")
                _emit(item, out, where, depth + 1)
            out.append("}")
        else:
            out.append("[")
            for i, item in enumerate(value):
                out.append("," if i else "")
                _emit(item, out, _child(path, i), depth + 1)
            out.append("]")
    else:
        raise CanonicalizationError(f"{path}: a {type(value).__name__} is not a JSON value")


def _reference(value: Any) -> bytes:
    """JCS bytes of ``value``, rule by rule (slow, plain; the fast path must equal it)."""
    out: list[str] = []
    try:
        _emit(value, out, "$", 0)
    except RecursionError:
        raise CanonicalizationError("the value is nested too deeply") from None
    return "".join(out).encode("utf-8")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CanonicalizationError(
                    f"the object key {key!r} appears twice in one object (I-JSON forbids "
                    "duplicate keys: JSON readers disagree on which value wins)"
                )
            seen.add(key)
    return obj


def _refuse_constant(name: str) -> Any:
    raise CanonicalizationError(f"{name} is not JSON (JSON numbers are finite)")


def _json_int(text: str) -> int | float:
    """An integer literal: an int in I-JSON's exact range, else a double JCS writes so."""
    # 2**53 has 16 digits; checking the length first keeps int() away from huge inputs
    if len(text.lstrip("-")) <= 16 and abs(value := int(text)) <= MAX_SAFE_INTEGER:
        return value
    double = float(text) if len(text) <= 400 else math.inf
    if math.isfinite(double) and _number(double) == text:
        return double  # e.g. 10000000000000000: canonical text must read back
    shown = text if len(text) <= 40 else text[:20] + "..." + text[-10:]
    nearest = f" (the nearest double is {_number(double)})" if math.isfinite(double) else ""
    raise CanonicalizationError(
        f"the integer {shown} is outside I-JSON's exact range "
        f"-{MAX_SAFE_INTEGER}..{MAX_SAFE_INTEGER}: a double cannot hold it{nearest}"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:20] + "..." + text[-10:]
        raise CanonicalizationError(f"the number {shown} is too large for a double")
    return value


def _reference_loads(data: bytes) -> Any:
    """Parse JSON text by the rules above with the standard library (slow, plain)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalizationError(
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason})"
        ) from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
            parse_int=_json_int,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise CanonicalizationError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise CanonicalizationError("the JSON text is nested too deeply") from None


def _reference_bytes(data: bytes) -> tuple[Any, bytes]:
    """``canonicalize_bytes`` done plainly: parse with the standard library, then ``_reference``."""
    value = _reference_loads(data)
    return value, _reference(value)


# ------------------------------------------------------------------ fast path

_OPTIONS: Final = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
# Where orjson's numbers may differ from JCS: "<digits>.0" (integral doubles) and
# "<mantissa>e-6" (doubles in [1e-6, 1e-5)), right before a delimiter.
_INTEGRAL: Final = re.compile(rb"\.0[,\]}]")
_MICRO: Final = re.compile(rb"-6[,\]}]")
_EXPONENT_PLUS: Final = re.compile(rb"e\+")
_ESCAPED_COLON: Final = re.compile(rb"\\u003[aA]")
_ASTRAL_LEADS: Final = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_LONGEST_NUMBER: Final = 32  # orjson writes no number longer than 24 bytes
_SCALARS: Final = frozenset({str, int, bool, type(None)})
_BACKSLASH, _DOT, _E = b"\\"[0], b"."[0], b"e"[0]
_AFTER_CLOSING: Final = b":,]}"  # what may follow a string's closing quote
_BEFORE_OPENING: Final = b":,[{"  # what may precede a string's opening quote


def _plain(container: dict[Any, Any] | list[Any], depth: int) -> bool:
    """True if ``container`` holds only what orjson writes faithfully.

    That is exact ``dict``/``list``/``str``/``int``/``bool``/``None`` and finite
    ``float`` values, nested at most ``MAX_DEPTH`` deep. Anything else (tuples,
    subclasses, NaN, non-JSON objects) is left to the reference, which accepts or
    refuses it with a message.
    """
    if depth >= MAX_DEPTH:
        return False
    for item in container.values() if type(container) is dict else container:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if item - item != 0.0:  # NaN or ±Infinity
                return False
        elif kind is dict or kind is list:
            if not _plain(item, depth + 1):
                return False
        else:
            return False
    return True


def _escaped(out: bytes, quote: int) -> bool:
    """Is the ``"`` at ``quote`` escaped, i.e. preceded by an odd run of backslashes?"""
    start = quote
    while start > 0 and out[start - 1] == _BACKSLASH:
        start -= 1
    return (quote - start) % 2 == 1


def _outside_strings(out: bytes, at: int) -> bool:
    """Is position ``at`` of orjson's compact output outside every string?

    Decided from the nearest quote before ``at``: an escaped quote means ``at``
    is inside that string; a delimiter is a closing one if something other
    than ``:,[{`` precedes it (nothing else precedes an opening quote), an
    opening one if something other than ``:,]}`` follows it. Only a quote that
    has one of ``:,[{`` before it *and* one of ``:,]}`` after it (a key such as
    ``"a:"``, a string value such as ``":x"``) needs a count of every delimiter
    from the start of the text.
    """
    quote = out.rfind(b'"', 0, at)
    if quote < 0:
        return True
    if _escaped(out, quote):
        return False
    if out[quote + 1] not in _AFTER_CLOSING:
        return False
    if out[quote - 1] not in _BEFORE_OPENING:
        return True
    head = out[:at].replace(b"\\\\", b"").replace(b'\\"', b"")
    return head.count(b'"') % 2 == 0


def _has_astral_key(out: bytes) -> bool:
    """Does some object key hold a character from U+10000 up (a 4-byte UTF-8 sequence)?"""
    for lead in _ASTRAL_LEADS:
        at = out.find(lead)
        while at != -1:
            end = out.find(b'"', at)  # the closing quote of the string holding ``at``
            while _escaped(out, end):
                end = out.find(b'"', end + 1)
            if out[end + 1] == b":"[0]:
                return True
            at = out.find(lead, end + 1)
    return False


def _fast_dumps(value: dict[str, Any] | list[Any]) -> tuple[bytes, bytes] | None:
    """orjson's sorted output and the JCS bytes of a container of plain JSON values.

    None means "ask the reference": a big integer, a lone surrogate, deep
    nesting, an astral character in a key, a double from 1e16 up.
    """
    try:
        raw = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    if not raw.isascii() and _has_astral_key(raw):
        return None

    # Doubles from 1e16 up ("1e+16"): outside strings, '+' occurs nowhere else.
    at, looked = raw.find(b"+"), 0
    while at != -1:
        if looked == 64:  # many '+' (base64 text?): let the regex engine look for "e+"
            if any(_outside_strings(raw, m.start()) for m in _EXPONENT_PLUS.finditer(raw, at - 1)):
                return None
            break
        if raw[at - 1] == _E and _outside_strings(raw, at):
            return None
        at, looked = raw.find(b"+", at + 1), looked + 1

    hits = [m.start() for m in _INTEGRAL.finditer(raw)]
    hits += [m.start() - 1 for m in _MICRO.finditer(raw) if raw[m.start() - 1] == _E]
    pieces: list[bytes] = []
    done = 0
    for at in sorted(hits):
        if not _outside_strings(raw, at):
            continue
        low = max(0, at - _LONGEST_NUMBER)
        start = max(raw.rfind(b":", low, at), raw.rfind(b",", low, at), raw.rfind(b"[", low, at))
        if start < 0:
            return None  # not orjson's output as we know it; be safe
        pieces.append(raw[done : start + 1])
        if raw[at] == _DOT:  # "<digits>.0": the digits are ECMAScript's ("-0.0" is "0")
            done = at + 2
            pieces.append(raw[start + 1 : at] if raw[start + 1 : at] != b"-0" else b"0")
        else:  # "<mantissa>e-6"
            done = at + 3
            pieces.append(_number(float(raw[start + 1 : done])).encode())
    if not pieces:
        return raw, raw
    pieces.append(raw[done:])
    return raw, b"".join(pieces)


def _orjson_agrees() -> bool:
    """Does the installed orjson write what ``_fast_dumps`` expects? (checked once, at import)."""
    try:
        text = "".join(map(chr, range(0x80))) + "é€\u2028\ufeff\U0001f600"
        if orjson.dumps([text]) != _reference([text]) or _fast_dumps([text]) != (
            _reference([text]),
            _reference([text]),
        ):
            return False
        keys = {k: i for i, k in enumerate(["b", "a", "", "aa", "é", "\ue000", "€", "Z", "_"])}
        if orjson.dumps(keys, option=_OPTIONS) != _reference(keys):
            return False
        rng = random.Random(8785)
        doubles = [0.0, -0.0, 1.0, -1.0, 0.1, 2.0**53, 2.0**53 + 2, 1e15 + 0.5, 5e-324]
        doubles += [float.fromhex("0x1.fffffffffffffp1023"), 9.999999999999999e-7, 1e21 - 65536]
        for e in [*range(-320, 309, 7), *range(-8, 23)]:
            doubles += [10.0**e, -1.5 * 10.0**e, 10.0**e * 0.9999999999999999]
        doubles += [rng.uniform(-1, 1) * 10.0 ** rng.randint(-8, 22) for _ in range(200)]
        for x in doubles:
            if not math.isfinite(x):
                continue
            written, jcs = orjson.dumps(x), _number(x).encode()
            if written.endswith(b".0"):
                if written[:-2] not in (jcs, b"-0"):
                    return False
            elif written.endswith(b"e-6"):
                if float(written) != x:
                    return False
            elif b"e+" not in written and written != jcs:
                return False
    except Exception:  # any surprise at all: do not use the fast path
        return False
    return True


_FAST: Final = _orjson_agrees()


# ------------------------------------------------------------------ public API


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical bytes of a JSON value.

    ``value`` is made of ``dict`` (string keys), ``list`` (or ``tuple``),
    ``str``, ``int``, ``float``, ``bool`` and ``None``. Raises
    ``CanonicalizationError`` naming the JSON path of the first problem (NaN,
    a lone surrogate, an integer beyond ±(2**53 - 1), a non-JSON value...).
    """
    kind = type(value)
    if _FAST and (kind is dict or kind is list) and _plain(value, 0):
        dumped = _fast_dumps(value)
        if dumped is not None:
            return dumped[1]
    return _reference(value)


def canonicalize_bytes(data: bytes) -> tuple[Any, bytes]:
    """Parse JSON text and return ``(value, canonical bytes)``: the collector's hot path.

    The text must be UTF-8 I-JSON: no NaN or Infinity, no lone surrogates, no
    integer beyond ±(2**53 - 1), no duplicate keys in an object (I-JSON forbids
    them and JSON readers disagree on which value wins, so a signature over one
    reading would "prove" content another reader never sees). Anything else
    raises ``CanonicalizationError`` (a ``ValueError``), including text that is
    not JSON at all. Any JSON value is accepted, not only objects.
    """
    if not _FAST:
        return _reference_bytes(data)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        _reference_bytes(data)  # raises, with the clearest message
        raise CanonicalizationError(f"not valid JSON: {exc}") from None
    kind = type(value)
    if kind is dict or kind is list:
        dumped = _fast_dumps(value)
        if dumped is not None:
            raw, out = dumped
            # orjson kept the last of duplicate keys silently: were there any?
            if data in (out, raw) or _same_members(data, out):
                return value, out
    return _reference_bytes(data)


def _same_members(data: bytes, out: bytes) -> bool:
    """Does ``out`` (parsed from ``data``, then written) have every member ``data`` has?

    Outside strings there is one colon per member, so a dropped duplicate
    leaves ``out`` with fewer colons than ``data``. Inside strings, ``out``
    has the colons ``data`` has, plus those ``data`` wrote as ``\\u003a``: if
    ``data`` has none, the counts are equal exactly when nothing was dropped.
    """
    return data.count(b":") == out.count(b":") and (
        b"\\" not in data or _ESCAPED_COLON.search(data) is None
    )
