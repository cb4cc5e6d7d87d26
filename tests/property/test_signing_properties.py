"""Properties of canonical JSON (codec/jcs.py) and measurement signatures (custody/signing.py).

- ``canonicalize`` is idempotent: canonical text canonicalizes to itself, and reads
  back to an equal value;
- any spelling of the same JSON (members in any order, any whitespace, any escape,
  any way of writing the same double) has the same canonical bytes, and a signed
  measurement in any spelling verifies;
- any change of content (a value, a key, a member added or removed) makes the
  signature invalid, and so does any change to the signature keys;
- the fast path equals the reference implementation, on values and on any text
  (which both accept, or both refuse).

tests/unit/test_jcs.py and test_signing.py have the RFC vectors, the fast path's
traps and the hand-made tamperings; these respell and change generated values.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example
from hypothesis import strategies as st
from properties_kit import RUNS, explore, mutated_sample

from blockproof.codec import jcs
from blockproof.codec.jcs import CanonicalizationError, canonicalize, canonicalize_bytes
from blockproof.custody.signing import (
    SIGNATURE_KEYS,
    SignatureStatus,
    check_and_canonicalize,
    sign_measurement,
    verify_measurement,
)
from figures import Figures

TARGET = "canonical JSON signing"
pytestmark = pytest.mark.reliability

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

# ------------------------------------------------------------------ values

PIECES = [
    '"',
    "\\",
    ":",
    ",",
    "[",
    "]",
    "{",
    "}",
    ".0",
    "e-6",
    "e+",
    "1",
    "-",
    "\x00",
    "\n",
    "/",
    "\u003a",
    "\U0001f600",
    "\ue000",
    "\uffff",
    "é",
    "\u2028",
    " ",
    "\x7f",
    "x_signature",
]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=6).map("".join)
doubles = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 1e-6, 5e-6, 1e-7, 1e16, 1e21, 2.0**53, 5e-324, 1.5e300])
    | st.builds(lambda m, e: m * 10.0**e, st.integers(-999, 999), st.integers(-9, 23))
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-jcs.MAX_SAFE_INTEGER, jcs.MAX_SAFE_INTEGER)
    | doubles
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=20,
)
objects = st.dictionaries(texts, values, max_size=6) | mutated_sample(max_bytes=20_000).filter(
    lambda v: isinstance(v, dict) and _has_canonical_form(v)
)


def _has_canonical_form(value: Any) -> bool:
    try:
        canonicalize(value)
    except CanonicalizationError:
        return False
    return True


# ------------------------------------------------------------------ respelling

# each respelling makes a choice per character: from one seeded generator, not one draw each
SPELLERS = st.randoms(use_true_random=True)


def _spell_string(text: str, rng: random.Random) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        how = rng.randint(0, 3)
        if ch == '"' or ch == "\\" or code < 0x20 or how == 0:
            if code > 0xFFFF:  # a surrogate pair, each half escaped
                high = 0xD800 + ((code - 0x10000) >> 10)
                low = 0xDC00 + ((code - 0x10000) & 0x3FF)
                out.append(f"\\u{high:04x}\\u{low:04X}")
            elif ch in '"\\/\b\f\n\r\t' and rng.random() < 0.5:
                out.append(json.dumps(ch)[1:-1] if ch != "/" else "\\/")
            else:
                out.append(f"\\u{code:04{'x' if rng.random() < 0.5 else 'X'}}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _spell_number(value: int | float, rng: random.Random) -> str:
    """Another way of writing the same double."""
    if isinstance(value, int) or value.is_integer():
        whole = int(value)
        if whole == 0:
            return rng.choice(["0", "-0", "0.0", "-0.0", "0e5", "0E-3", "0.000"])
        if abs(whole) <= jcs.MAX_SAFE_INTEGER:
            return rng.choice(
                [
                    str(whole),
                    f"{whole}.0",
                    f"{whole}.000",
                    f"{whole}e0",
                    f"{whole}0E-1",
                    f"{whole}00e-2",
                ]
            )
    text = repr(float(value))  # shortest digits; then the same digits otherwise laid out
    mantissa, _, exponent = text.partition("e")
    shift = rng.randint(-3, 3)
    digits, _, fraction = mantissa.lstrip("-").partition(".")
    sign = "-" if mantissa.startswith("-") else ""
    fraction = fraction.rstrip("0")
    all_digits = digits + fraction
    point = len(digits) + shift
    power = int(exponent or 0) - shift
    if point <= 0:
        all_digits, point = "0" * (1 - point) + all_digits, 1
    if point > len(all_digits):
        all_digits += "0" * (point - len(all_digits))
    spelled = all_digits[:point] + ("." + all_digits[point:] if all_digits[point:] else "")
    spelled = spelled.lstrip("0") or "0"
    if spelled.startswith("."):
        spelled = "0" + spelled
    e = rng.choice("eE")
    return f"{sign}{spelled}{e}{power:+d}" if power or rng.random() < 0.5 else sign + spelled


def _space(rng: random.Random) -> str:
    return rng.choice(["", "", " ", "\n", "\t", "\r\n  "])


def _respell(value: Any, rng: random.Random) -> str:
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, str):
        return _spell_string(value, rng)
    if isinstance(value, int | float):
        return _spell_number(value, rng)
    if isinstance(value, list):
        items = [_space(rng) + _respell(v, rng) + _space(rng) for v in value]
        return "[" + ",".join(items) + "]" if items else "[" + _space(rng) + "]"
    members = list(value.items())
    members = rng.sample(members, len(members))
    items = [
        _space(rng)
        + _spell_string(k, rng)
        + _space(rng)
        + ":"
        + _space(rng)
        + _respell(v, rng)
        + _space(rng)
        for k, v in members
    ]
    return "{" + ",".join(items) + "}" if items else "{" + _space(rng) + "}"


@st.composite
def respelled(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> tuple[Any, bytes]:
    value = draw(strategy)
    return value, _respell(value, draw(SPELLERS)).encode("utf-8")


def prop_respelling_is_canonically_equal(case: tuple[Any, bytes]) -> None:
    value, text = case
    want = canonicalize(value)
    assert want == jcs._reference(value)
    parsed, got = canonicalize_bytes(text)
    assert got == want, text
    assert parsed == value
    assert jcs._reference_bytes(text) == (value, want)
    # idempotent: canonical bytes are their own canonical form
    assert canonicalize_bytes(want) == (value, want)
    assert canonicalize(parsed) == want


@pytest.mark.parametrize("run", RUNS)
def test_any_spelling_has_the_same_canonical_bytes(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_respelling_is_canonically_equal, respelled(values))


# ------------------------------------------------------------------ the fast path on any text

TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"a"',
    '"a:"',
    '"\\u003a"',
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\"',
    '"x\\\\"',
    "1",
    "-0",
    "1.0",
    "1e+16",
    "1E400",
    "5e-6",
    "9007199254740993",
    "10000000000000000",
    "1e21",
    "0.1",
    "true",
    "null",
    "NaN",
    " ",
    '"\U0001f600"',
    '"\ue000"',
    "\x00",
    '"\x01"',
    "\ufeff",
    '"x_signature"',
]


@st.composite
def near_json(draw: st.DrawFn) -> bytes:
    """Text that is often JSON, sometimes nearly: tokens, respelled values, damage."""
    how = draw(st.sampled_from(["tokens", "value", "damaged"]))
    if how == "tokens":
        return "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=16))).encode(
            "utf-8", "surrogatepass"
        )
    _value, text = draw(respelled(values))
    if how == "value":
        return text
    data = bytearray(text)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(TOKENS)).encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and data:  # a duplicate member
        data = bytearray(b'{"k":1,' + bytes(data) + b',"k":2}')
    return bytes(data)


@example(text=b'{"a":1,"\\u0061":2}')
@example(text=b'{"\\u003a":1.0,":":2}')
@example(text=b"[1E400]")
def prop_fast_path_equals_reference_on_any_text(text: bytes) -> None:
    try:
        want = jcs._reference_bytes(text)
    except CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            canonicalize_bytes(text)
        return
    got = canonicalize_bytes(text)
    assert got[1] == want[1]
    assert got[0] == want[0]
    assert canonicalize(got[0]) == want[1]


@pytest.mark.parametrize("run", RUNS)
def test_the_fast_path_equals_the_reference_on_any_text(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_fast_path_equals_reference_on_any_text, near_json(), scale=2)


# ------------------------------------------------------------------ signatures


@st.composite
def signed_spellings(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    signed = sign_measurement(draw(objects), KEY)
    return signed, _respell(signed, draw(SPELLERS)).encode("utf-8")


def prop_any_spelling_of_a_signed_measurement_verifies(case: tuple[dict[str, Any], bytes]) -> None:
    signed, text = case
    assert verify_measurement(signed).status is SignatureStatus.VALID
    parsed, canonical, check = check_and_canonicalize(text)
    assert check.status is SignatureStatus.VALID, check.reason
    assert canonical == canonicalize(signed)
    assert verify_measurement(parsed).status is SignatureStatus.VALID


@pytest.mark.parametrize("run", RUNS)
def test_any_spelling_of_a_signed_measurement_verifies(run: str, figures: Figures) -> None:
    explore(
        figures, run, TARGET, prop_any_spelling_of_a_signed_measurement_verifies, signed_spellings()
    )


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*path, i))
    return found


@st.composite
def changed(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A signed measurement and a copy with its content changed somewhere."""
    signed = sign_measurement(draw(objects), KEY)
    copy = orjson.loads(orjson.dumps(signed))
    path = draw(st.sampled_from(_paths(copy)))
    parent: Any = copy
    for step in path[:-1]:
        parent = parent[step]
    how = draw(st.sampled_from(["value", "add", "remove", "rename"]))
    if not path:  # the top level itself
        copy[draw(texts.filter(lambda k: k not in signed))] = draw(scalars)
    elif how == "value" or not isinstance(parent, dict):
        parent[path[-1]] = draw(values)
    elif how == "add":
        parent[draw(texts.filter(lambda k: k not in parent))] = draw(scalars)
    elif how == "remove":
        del parent[path[-1]]
    else:
        parent[draw(texts.filter(lambda k: k not in parent))] = parent.pop(path[-1])
    return signed, copy


def _content(m: dict[str, Any]) -> bytes:
    return canonicalize(m)


def prop_any_change_is_invalid(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    signed, copy = case
    if _content(copy) == _content(signed):
        return  # the same JSON content (1 for 1.0, or the same value again)
    check = verify_measurement(copy)
    assert check.status is SignatureStatus.INVALID, check.reason
    assert any(k in copy for k in SIGNATURE_KEYS)  # stripping them all is not a change here
    _, _, from_text = check_and_canonicalize(orjson.dumps(copy))
    assert (from_text.status, from_text.reason) == (check.status, check.reason)


@pytest.mark.parametrize("run", RUNS)
def test_any_change_of_content_is_invalid(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_any_change_is_invalid, changed())
