"""``blockproof pipeline``'s rounds: which days a round lists (cli/rounds.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from blockproof.cli.rounds import STATE_FILE, first_day, settled_until

D = date.fromisoformat


@pytest.mark.parametrize(
    ("since", "settled", "first"),
    [
        ("2024-02-01", None, "2024-02-01"),  # the first round lists from --since
        ("2024-02-01", "2024-03-10", "2024-03-11"),  # then from the day after the settled ones
        ("2024-02-01", "2024-01-15", "2024-02-01"),  # never before --since
        ("2024-02-01", "2024-01-31", "2024-02-01"),
    ],
)
def test_first_day(since: str, settled: str | None, first: str) -> None:
    assert first_day(D(since), None if settled is None else D(settled)) == D(first)


@pytest.mark.parametrize(
    ("content", "settled"),
    [
        (None, None),
        ('{"settled_until": "2024-03-10"}', "2024-03-10"),
        ('{"settled_until": "tomorrow"}', None),  # damaged: list everything again
        ("not json", None),
        ("[]", None),
    ],
)
def test_settled_until(tmp_path: Path, content: str | None, settled: str | None) -> None:
    if content is not None:
        (tmp_path / STATE_FILE).write_text(content)
    assert settled_until(tmp_path) == (None if settled is None else D(settled))


def test_the_state_file_is_not_read_as_measurements() -> None:
    assert not STATE_FILE.endswith((".json", ".jsonl", ".gz"))
