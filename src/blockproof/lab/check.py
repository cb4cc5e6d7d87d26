"""Compare a lab run with its scenario's ``[[expect]]`` tables; find a scenario by name.

``compare`` is what ``blockproof lab run --check`` and the integration tests use:
one human-readable line per difference, nothing when every expectation holds.
Values are compared exactly and type-strictly (``1`` is not ``true``, ``0`` is
not ``false``), because OONI's ``blocking`` is ``false`` or a string and
``x_blocking_flags`` an integer: confusing the two would hide a regression.

``resolve_scenario_path`` turns what a user typed (a file, or the name of a
shipped scenario with or without ``.toml``) into a path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from blockproof.lab.scenario import Expect, Scenario, ScenarioError, shipped_scenarios
from blockproof.model.measurement import Measurement

__all__ = ["compare", "resolve_scenario_path", "same_value"]

_MISSING = "(missing)"


def same_value(expected: Any, got: Any) -> bool:
    """Equality that never confuses booleans with numbers, also inside lists and tables."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(expected, bool) and isinstance(got, bool) and expected is got
    if isinstance(expected, Mapping):
        return (
            isinstance(got, Mapping)
            and set(expected) == set(got)
            and all(same_value(expected[k], got[k]) for k in expected)
        )
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        return (
            isinstance(got, Sequence)
            and not isinstance(got, str)
            and len(expected) == len(got)
            and all(same_value(e, g) for e, g in zip(expected, got, strict=True))
        )
    if expected is None or got is None:
        return expected is None and got is None
    return bool(expected == got) and isinstance(got, str) == isinstance(expected, str)


def _show(value: Any) -> str:
    return value if value is _MISSING else repr(value)


def _verdict(test_keys: Mapping[str, Any]) -> Mapping[str, Any] | None:
    verdict = test_keys.get("x_verdict")
    return verdict if isinstance(verdict, Mapping) else None


def _check_one(expect: Expect, measurement: Measurement) -> list[str]:
    problems: list[str] = []
    test_keys = measurement.test_keys
    prefix = expect.url

    def differs(key: str, expected: Any, got: Any) -> None:
        if got is _MISSING or not same_value(expected, got):
            problems.append(f"{prefix}: {key}: expected {expected!r}, got {_show(got)}")

    for key, expected in expect.keys.items():
        differs(key, expected, test_keys.get(key, _MISSING))
    for key in expect.null:
        differs(key, None, test_keys.get(key, _MISSING))
    verdict = _verdict(test_keys)
    for key, expected_meta in (("method", expect.method), ("rule_id", expect.rule_id)):
        if expected_meta is None:
            continue
        if verdict is None:
            problems.append(
                f"{prefix}: {key}: expected {expected_meta!r}, got no x_verdict in test_keys"
            )
            continue
        differs(key, expected_meta, verdict.get(key, _MISSING))
    return problems


def compare(scenario: Scenario, measurements: list[Measurement]) -> list[str]:
    """Every way ``measurements`` differ from ``scenario``'s expectations (empty: all hold)."""
    by_url: dict[str, Measurement] = {}
    for measurement in measurements:
        if measurement.input is not None:
            by_url.setdefault(measurement.input, measurement)
    problems: list[str] = []
    for expect in scenario.expect:
        found = by_url.get(expect.url)
        if found is None:
            problems.append(f"{expect.url}: no measurement of this URL")
            continue
        problems.extend(_check_one(expect, found))
    return problems


def resolve_scenario_path(name_or_path: str) -> Path:
    """An existing scenario file, or the shipped scenario of that name (``.toml`` optional)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_scenarios()
    stem = name_or_path.removesuffix(".toml")
    for candidate in shipped:
        if candidate.stem == stem:
            return candidate
    names = ", ".join(p.stem for p in shipped) or "(none)"
    raise ScenarioError(
        name_or_path, "", f"no such file, and no shipped scenario of that name; shipped: {names}"
    )
