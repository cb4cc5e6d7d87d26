"""Shared by the property tests: settings profiles, a counted runner, JSON strategies, samples.

Each property is a plain function of the generated values (``@example`` may decorate
it: regressions found by the properties live there). ``explore`` runs it under
hypothesis with one of two profiles, counts the examples actually executed, and
records them with the ``figures`` fixture:

- ``default``: a modest number of examples, so that the whole folder runs in well
  under a minute (``BLOCKPROOF_PROPERTY_EXAMPLES`` overrides it);
- ``long``: many more (``BLOCKPROOF_PROPERTY_LONG_EXAMPLES``), for the tests also
  marked ``long`` (run by ``make reliability``).

A property that fails raises, so no figures are recorded for it: every recorded
row says ``crashes=0``.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockproof.codec.jsonl import iter_json_objects
from figures import Figures

DATA = Path(__file__).resolve().parents[1] / "data"

DEFAULT_EXAMPLES = int(os.environ.get("BLOCKPROOF_PROPERTY_EXAMPLES") or 60)
LONG_EXAMPLES = int(os.environ.get("BLOCKPROOF_PROPERTY_LONG_EXAMPLES") or 1000)

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,  # no example database left behind in the work tree
    "print_blob": True,  # a failure prints how to reproduce it
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}
settings.register_profile("blockproof-property", max_examples=DEFAULT_EXAMPLES, **_COMMON)
settings.register_profile("blockproof-property-long", max_examples=LONG_EXAMPLES, **_COMMON)
PROFILES = {
    "default": settings.get_profile("blockproof-property"),
    "long": settings.get_profile("blockproof-property-long"),
}

# Parametrize a test with this: the long variant is also marked ``long``.
RUNS = [
    pytest.param("default", id="default"),
    pytest.param("long", id="long", marks=pytest.mark.long),
]


def explore(
    figures: Figures,
    run: str,
    target: str,
    prop: Callable[..., None],
    *strategies: st.SearchStrategy[Any],
    scale: float = 1.0,
    **named: st.SearchStrategy[Any],
) -> int:
    """Run ``prop`` on generated values under the ``run`` profile; record and return
    the number of examples executed. ``scale`` shrinks or grows the profile's number
    of examples for a slow (or very fast) property."""
    calls = 0

    @functools.wraps(prop)
    def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        prop(*args, **kwargs)

    profile = PROFILES[run]
    examples = max(1, int(profile.max_examples * scale))
    test = settings(profile, max_examples=examples)(given(*strategies, **named)(counted))
    test()
    figures.add(
        "fuzz",
        target=target,
        tool="hypothesis",
        property=prop.__name__.removeprefix("prop_").replace("_", " "),
        run=run,
        inputs=calls,
        crashes=0,
    )
    return calls


# ------------------------------------------------------------------ JSON values

JSON_INT = st.integers(-(2**63), 2**64 - 1)  # what orjson reads
SMALL_TEXT = st.text(max_size=12)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    JSON_INT,
    st.floats(allow_nan=False, allow_infinity=False),
    SMALL_TEXT,
)


def json_values(
    scalars: st.SearchStrategy[Any] = JSON_SCALARS,
    keys: st.SearchStrategy[str] = SMALL_TEXT,
    max_leaves: int = 20,
) -> st.SearchStrategy[Any]:
    """Any JSON value (as orjson or the standard library would read it)."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=max_leaves,
    )


# ------------------------------------------------------------------ real OONI samples


def _walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


@functools.cache
def ooni_samples() -> tuple[tuple[str, bytes], ...]:
    """(file name, compact JSON bytes) of real OONI sample objects, at most three of each
    file (one holds hundreds of alike measurements), smallest first."""
    import orjson

    found: list[tuple[str, bytes]] = []
    for path in sorted(DATA.glob("ooni*/**/*.json*")):
        if path.name.endswith((".json", ".json.gz")):
            objects = itertools.islice(iter_json_objects(path), 3)
            found += [(path.name, orjson.dumps(obj)) for obj in objects]
    return tuple(sorted(found, key=lambda item: len(item[1])))


# the same type, at its limits: what a bounded column or a parser may choke on
EXTREMES: dict[type, st.SearchStrategy[Any]] = {
    int: st.sampled_from([0, -1, 2**31, 2**32 + 1, 2**53 + 1, 2**63 - 1, 2**64 - 1, -(2**63)]),
    float: st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 1e16, 0.1]),
    str: st.sampled_from(
        [
            "",
            "AS" + "9" * 30,
            "9" * 40,
            "\udce9",
            "\x00",
            "0001-01-01 00:00:00",
            "..",
            "/.",
            "\U0001f600" * 3,
            "[::1]:0",
            "1.2.3.4:99999",
        ]
    ),
}


@st.composite
def mutated_sample(
    draw: st.DrawFn,
    replacement: st.SearchStrategy[Any] | None = None,
    max_bytes: int | None = None,
) -> Any:
    """A real OONI sample (at most ``max_bytes`` long) with a few subtrees replaced,
    deleted, retyped or pushed to the limits of their type."""
    import orjson

    samples = [s for s in ooni_samples() if max_bytes is None or len(s[1]) <= max_bytes]
    _name, raw = draw(st.sampled_from(samples))
    value = orjson.loads(raw)
    walked = list(_walk(value))
    paths = [path for path, _ in walked]
    numbers = [path for path, item in walked if type(item) is int]  # ports, ids, codes, ASNs
    new = replacement if replacement is not None else json_values(max_leaves=6)
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.sampled_from(["delete", "replace", "extreme", "extreme number"]))
        path = draw(st.sampled_from(numbers if how == "extreme number" and numbers else paths))
        if not path:
            continue
        parent = value
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            kind = type(parent[last])
            if how.startswith("extreme") and kind in EXTREMES:
                parent[last] = draw(EXTREMES[kind])
            elif how == "delete" and isinstance(parent, dict):
                parent.pop(last, None)
            else:
                parent[last] = draw(new)
        except (KeyError, IndexError, TypeError):
            continue  # the path went away with an earlier change
    return value
