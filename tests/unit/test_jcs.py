"""RFC 8785 canonical JSON (codec.jcs): the RFC's examples, ECMAScript number
formatting, UTF-16 key order, escaping, what is refused, and the fast path
checked against the plain reference implementation on generated JSON.

Expected strings come from RFC 8785 (§3.2.2, §3.2.3, Appendix B) and from
ECMA-262's Number::toString rules, never from this implementation's output.
"""

from __future__ import annotations

import glob
import json
import math
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blockproof.codec import jcs
from blockproof.codec.jcs import CanonicalizationError, canonicalize, canonicalize_bytes

DATA = Path(__file__).resolve().parents[1] / "data"


def test_the_installed_orjson_passes_the_self_check() -> None:
    # otherwise everything silently takes the slow path and the fast-path tests prove nothing
    assert jcs._FAST


# ----------------------------------------------------------------- RFC examples

RFC_SAMPLE_TEXT = rb"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_SAMPLE_CANONICAL = (
    b'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    b'"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)


def test_rfc_8785_sample_object() -> None:
    value, canonical = canonicalize_bytes(RFC_SAMPLE_TEXT)
    assert canonical == RFC_SAMPLE_CANONICAL
    assert canonicalize(value) == RFC_SAMPLE_CANONICAL
    assert jcs._reference_bytes(RFC_SAMPLE_TEXT)[1] == RFC_SAMPLE_CANONICAL


RFC_SORTING_TEXT = rb"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC_SORTED_VALUES = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]


def test_rfc_8785_sorting_example() -> None:
    value, canonical = canonicalize_bytes(RFC_SORTING_TEXT)
    assert list(json.loads(canonical).values()) == RFC_SORTED_VALUES
    assert canonicalize(value) == canonical


# ----------------------------------------------------------------- numbers

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

# ECMAScript Number::toString, worked by hand: digits s (k of them), exponent n
# with value = s × 10**(n-k); k <= n <= 21: s then zeros; 0 < n <= 21: a point
# inside s; -6 < n <= 0: "0." and -n zeros; otherwise exponent n-1 with a sign.
NUMBERS: list[tuple[float | int, str]] = [
    (0, "0"),
    (0.0, "0"),
    (-0.0, "0"),
    (1, "1"),
    (1.0, "1"),
    (-1.0, "-1"),
    (100.0, "100"),
    (4.5, "4.5"),
    (4.50, "4.5"),
    (-0.5, "-0.5"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),
    (0.002, "0.002"),
    (0.00001, "0.00001"),  # n = -4
    (0.000001, "0.000001"),  # n = -5: the smallest plain one
    (1.5e-6, "0.0000015"),
    (9.5e-6, "0.0000095"),
    (1e-7, "1e-7"),  # n = -6: exponent form
    (1.5e-7, "1.5e-7"),
    (1e-27, "1e-27"),
    (5e-324, "5e-324"),
    (333333333.3333333, "333333333.3333333"),
    (1e15, "1000000000000000"),
    (1e16, "10000000000000000"),
    (9007199254740992.0, "9007199254740992"),
    (1e20, "100000000000000000000"),
    (123456789012345680000.0, "123456789012345680000"),  # n = 21
    (1e21, "1e+21"),  # n = 22: exponent form
    (1.5e21, "1.5e+21"),
    (1e23, "1e+23"),
    (1e30, "1e+30"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    (9007199254740991, "9007199254740991"),  # the largest exact int
    (-9007199254740991, "-9007199254740991"),
]


def _double(bits: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(bits))[0])


@pytest.mark.parametrize(
    ("value", "text"),
    [(_double(bits), text) for bits, text in APPENDIX_B] + NUMBERS,
    ids=[f"B:{bits}" for bits, _ in APPENDIX_B] + [text for _, text in NUMBERS],
)
def test_number_serialization(value: float, text: str) -> None:
    assert canonicalize(value) == text.encode()  # the reference, for a bare number
    assert canonicalize([value]) == f"[{text}]".encode()  # the fast path
    assert canonicalize({"n": value, "m": [value, value]}) == (
        f'{{"m":[{text},{text}],"n":{text}}}'.encode()
    )
    # as JSON text: canonical text reads back as itself, orjson's and repr's spelling too
    for spelling in (text, orjson.dumps(value).decode(), repr(value)):
        assert canonicalize_bytes(f"[{spelling}]".encode())[1] == f"[{text}]".encode()


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (b"[-0]", b"[0]"),
        (b"[-0.0]", b"[0]"),
        (b"[1E2]", b"[100]"),
        (b"[1e+2]", b"[100]"),
        (b"[0.1e1]", b"[1]"),
        (b"[1.000]", b"[1]"),
        (b"[12e-1]", b"[1.2]"),
        (b"[1e-400]", b"[0]"),  # underflows to zero, as in ECMAScript
        (b"[10000000000000000]", b"[10000000000000000]"),  # how JCS writes 1e16
        (b"[-123456789012345680000]", b"[-123456789012345680000]"),
        (b"[0.30000000000000004441]", b"[0.30000000000000004]"),  # more digits than a double
    ],
)
def test_number_spellings(text: bytes, canonical: bytes) -> None:
    assert canonicalize_bytes(text)[1] == canonical
    assert jcs._reference_bytes(text)[1] == canonical


# ----------------------------------------------------------------- key order


@pytest.mark.parametrize(
    ("keys", "order"),
    [
        (["b", "a", "c"], ["a", "b", "c"]),
        (["aa", "a", ""], ["", "a", "aa"]),
        (["a", "B", "_", "1"], ["1", "B", "_", "a"]),
        (["é", "z", "€"], ["z", "é", "€"]),
        # U+1F600 is D83D DE00 in UTF-16, which sorts before E000 (code points disagree)
        (["\ue000", "\U0001f600"], ["\U0001f600", "\ue000"]),
        (["\uffff", "\U00010000"], ["\U00010000", "\uffff"]),
        (["a\ue000", "a\U0001f600", "a"], ["a", "a\U0001f600", "a\ue000"]),
        (["\ud7ff", "\U0001f600"], ["\ud7ff", "\U0001f600"]),  # below the surrogates
    ],
)
def test_keys_sort_by_utf16_code_units(keys: list[str], order: list[str]) -> None:
    obj = {key: i for i, key in enumerate(keys)}
    expected = "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{obj[k]}" for k in order)
    expected += "}"
    assert canonicalize(obj) == expected.encode()
    assert canonicalize({"nested": [obj]}) == b'{"nested":[' + expected.encode() + b"]}"
    assert canonicalize_bytes(json.dumps(obj).encode())[1] == expected.encode()


# ----------------------------------------------------------------- strings

ESCAPES: list[tuple[str, str]] = [
    ('"', '\\"'),
    ("\\", "\\\\"),
    ("\b", "\\b"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\f", "\\f"),
    ("\r", "\\r"),
    ("\x00", "\\u0000"),
    ("\x01", "\\u0001"),
    ("\x0b", "\\u000b"),
    ("\x0e", "\\u000e"),
    ("\x1a", "\\u001a"),
    ("\x1f", "\\u001f"),
    # written as themselves
    (" ", " "),
    ("/", "/"),
    ("'", "'"),
    ("\x7f", "\x7f"),
    ("\x80", "\x80"),
    ("é", "é"),
    ("€", "€"),
    ("\u2028\u2029", "\u2028\u2029"),
    ("\ufeff", "\ufeff"),
    ("\U0001f600", "\U0001f600"),
    ("\\u0041", "\\\\u0041"),
]


@pytest.mark.parametrize(("char", "escaped"), ESCAPES, ids=[repr(c) for c, _ in ESCAPES])
def test_string_escaping(char: str, escaped: str) -> None:
    want = f'"{escaped}"'.encode()
    assert canonicalize(char) == want
    assert canonicalize([char]) == b"[" + want + b"]"
    assert canonicalize({char: char}) == b"{" + want + b":" + want + b"}"
    for spelling in (json.dumps(char), json.dumps(char, ensure_ascii=False)):
        assert canonicalize_bytes(f"[{spelling}]".encode())[1] == b"[" + want + b"]"


# ----------------------------------------------------------------- refused

NESTED_TOO_DEEP: Any = []
for _ in range(jcs.MAX_DEPTH):
    NESTED_TOO_DEEP = [NESTED_TOO_DEEP]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, r"\$: nan is not a JSON number"),
        ({"a": [1, math.inf]}, r"\$\.a\[1\]: inf is not a JSON number"),
        ({"t": -math.inf}, r"\$\.t: -inf"),
        ({"x y": {"z": math.nan}}, r'\$\["x y"\]\.z: nan'),
        ({"s": "ok\ud800"}, r"\$\.s: the string has a lone surrogate U\+D800 at index 2"),
        ({"\udfff": 1}, r"lone surrogate U\+DFFF"),
        ([2**53], r"\$\[0\]: the integer 9007199254740992 is outside I-JSON's exact range"),
        ({"n": -(2**53)}, r"\$\.n: the integer -9007199254740992"),
        ({"n": 10**400}, r"\$\.n: the integer 1000"),
        ({1: "a"}, r"\$: the object key 1 is not a string"),
        ({"a": {1, 2}}, r"\$\.a: a set is not a JSON value"),
        ({"a": b"bytes"}, r"\$\.a: a bytes is not a JSON value"),
        (NESTED_TOO_DEEP, r"nested deeper than 500 levels"),
    ],
)
def test_values_without_canonical_form(value: Any, message: str) -> None:
    with pytest.raises(CanonicalizationError, match=message):
        canonicalize(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a":1,"a":2}', r"the object key 'a' appears twice"),
        (b'{"a":{"b":1,"c":2,"b":1}}', r"'b' appears twice"),
        (b'[{"k":1},{"k":2,"k":3}]', r"'k' appears twice"),
        # the dropped member's colon made up for by an escaped one: still caught
        (b'{"a":1,"b":"\\u003a","a":2}', r"'a' appears twice"),
        (b'{"a":1,"b":"\\u003A","a":2}', r"'a' appears twice"),
        (b"[NaN]", r"NaN is not JSON"),
        (b"[Infinity]", r"Infinity is not JSON"),
        (b'{"a":-Infinity}', r"-Infinity is not JSON"),
        (b"[1e400]", r"the number 1e400 is too large for a double"),
        (b"[9007199254740993]", r"the integer 9007199254740993 is outside .* 9007199254740992"),
        (b"[18446744073709551616]", r"the integer 18446744073709551616 is outside"),
        (b"[" + b"9" * 500 + b"]", r"the integer 9999.*\.\.\..*is outside"),
        (b'["\\ud800"]', r"lone surrogate U\+D800"),
        (b'{"\\udc00x":1}', r"lone surrogate U\+DC00"),
        (b'["\xff"]', r"not UTF-8: byte 0xff at offset 2"),
        (b'["\xed\xa0\x80"]', r"not UTF-8: byte 0xed"),
        (b"\xef\xbb\xbf{}", r"not valid JSON"),
        (b"", r"not valid JSON"),
        (b"{", r"not valid JSON"),
        (b'{"a":1}x', r"not valid JSON"),
        (b"[1,]", r"not valid JSON"),
        (b"[01]", r"not valid JSON"),
        (b"['a']", r"not valid JSON"),
        (b'["a\nb"]', r"not valid JSON"),  # a raw control character in a string
        (b"[" * 600 + b"]" * 600, r"nested"),
        (b"[" * 1100 + b"]" * 1100, r"nested|not valid JSON"),
    ],
)
def test_texts_without_canonical_form(text: bytes, message: str) -> None:
    with pytest.raises(CanonicalizationError, match=message):
        canonicalize_bytes(text)
    with pytest.raises(CanonicalizationError, match=message):
        jcs._reference_bytes(text)


def test_canonicalization_error_is_a_value_error() -> None:
    assert issubclass(CanonicalizationError, ValueError)


# ----------------------------------------------------------------- the fast path's traps

TRAPS: list[Any] = [
    {"a": "x:1.0,y", "b": [1.0]},  # the number pattern inside a string
    {"a": '":1.0,', "b": 2.0},  # after an escaped quote
    {"a:": 1.0},  # a key ending in ':' before a number
    {"k": ":1.0,x", "z": 3.0},  # a value starting with ':' after a key
    {"k": [",1.0]", "[1.0}"], "v": [0.0, -0.0]},
    {"k": "\\", "v": 1.0},  # a string ending in an escaped backslash
    {"k": '\\"', "v": [1.0, "\\\\", '"\\"']},
    {"k": "1e+16,", "v": 1.5e-6, "w": "5e-6]"},
    {"": "", '"': '"', ":": ":", ",": ",", "{": "[", "}": "]"},
    {"k": "+" * 100 + "e+5", "v": 2.5},  # many '+' before an "e+"
    {"k": "a+" * 100, "v": 1e16},
    {"\U0001f600": 1.0, "\ue000": "\U0001f600", "x": ["\U0001f600"]},
    {"v": '\U0001f600\\"\U0001f601', "\U0001f602 ": 1},
    [[[1.0]], {"a": [{"b": 0.0}]}, "e-6}", 1e-6],
]


@pytest.mark.parametrize("value", TRAPS, ids=range(len(TRAPS)))
def test_fast_path_traps(value: Any) -> None:
    want = jcs._reference(value)
    assert canonicalize(value) == want
    for text in (
        json.dumps(value),
        json.dumps(value, ensure_ascii=False),
        json.dumps(value, indent=1, sort_keys=True),
        orjson.dumps(value).decode(),
        want.decode(),
    ):
        assert canonicalize_bytes(text.encode())[1] == want


def test_the_fast_path_serves_a_real_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DATA / "ooni" / "probe-cli-real").glob("*.json*")
    sample = next(iter(sorted(text)), None)
    if sample is None:
        pytest.skip("no sample measurement")
    data = sample.read_bytes()
    if sample.suffix == ".gz":
        import gzip

        data = gzip.decompress(data).splitlines()[0]
    value = orjson.loads(data)
    value["test_keys"] = {**value.get("test_keys", {}), "x_ratio": 1.0, "x_tiny": 5e-6}
    data = orjson.dumps(value)
    _, want = jcs._reference_bytes(data)

    def refuse(*_: Any) -> Any:
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(jcs, "_reference_bytes", refuse)
    monkeypatch.setattr(jcs, "_reference", refuse)
    assert canonicalize_bytes(data)[1] == want
    assert canonicalize_bytes(want)[1] == want
    assert canonicalize(value) == want


def _ooni_samples() -> list[str]:
    files = glob.glob(str(DATA / "ooni*" / "**" / "*.json"), recursive=True)
    return sorted(f for f in files if Path(f).stat().st_size < 120_000)


@pytest.mark.parametrize("path", _ooni_samples(), ids=lambda p: Path(p).name)
def test_real_ooni_measurements_match_the_reference(path: str) -> None:
    data = Path(path).read_bytes()
    try:
        want = jcs._reference_bytes(data)[1]
    except CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            canonicalize_bytes(data)
        return
    assert canonicalize_bytes(data)[1] == want
    assert canonicalize(json.loads(data)) == want


# ----------------------------------------------------------------- properties

# strings built from pieces that trouble a text-level fast path
PIECES = ['"', "\\", ":", ",", "[", "]", "{", "}", ".0", "e-6", "e+", "1", "-", "\x00", "\n"]
PIECES += ["\u003a", "\U0001f600", "\ue000", "é", "\u2028", " "]
tricky_text = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=6).map("".join)
texts = tricky_text | st.text(max_size=8)
SPECIAL_DOUBLES = [0.0, -0.0, 1.0, -3.0, 1e-6, 5e-6, 1e-7, 1e15, 1e16, 1e20, 1e21, 2.0**53, 1e300]
doubles = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(SPECIAL_DOUBLES)
    | st.integers(-(2**53), 2**53).map(float)
    | st.builds(lambda m, e: m * 10.0**e, st.floats(-10, 10), st.integers(-8, 22))
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-jcs.MAX_SAFE_INTEGER, jcs.MAX_SAFE_INTEGER)
    | doubles
    | texts
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=16,
)
containers = st.lists(json_values, max_size=4) | st.dictionaries(texts, json_values, max_size=5)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(containers)
@example({"a:": 1.0, "\U0001f600": [5e-6], "\ue000": ":1.0,"})
def test_fast_path_equals_the_reference(value: Any) -> None:
    want = jcs._reference(value)
    assert canonicalize(value) == want
    assert canonicalize_bytes(orjson.dumps(value))[1] == want
    assert canonicalize_bytes(json.dumps(value, indent=1).encode())[1] == want


@FAST
@given(json_values)
def test_canonical_text_reads_back_to_an_equal_value_and_is_a_fixed_point(value: Any) -> None:
    canonical = canonicalize(value)
    again, recanonical = canonicalize_bytes(canonical)
    assert again == value  # 1.0 == 1: JSON has one kind of number
    assert recanonical == canonical
    assert canonicalize(again) == canonical
    assert jcs._reference_bytes(canonical) == (again, canonical)


@FAST
@given(st.dictionaries(texts, json_values, min_size=1, max_size=4), st.data())
def test_duplicate_keys_are_always_refused(obj: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    member = json.dumps({key: obj[key]})[1:-1]
    text = json.dumps(obj)[:-1] + ", " + member + "}"
    with pytest.raises(CanonicalizationError, match="appears twice"):
        canonicalize_bytes(text.encode())
