"""The spool: atomic, idempotent per content, listable by name, moves with sidecars."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from blockproof.cli.options import parse_duration
from blockproof.errors import InputError
from blockproof.probe.spool import Spool, entry_id
from blockproof.probe.upload import RetryPolicy
from blockproof.probe.watch import Schedule


def test_add_is_atomic_and_idempotent(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.add(b'{"a":1}', "2024-02-17 16:05:02")
    again = spool.add(b'{"a":1}', "2024-02-17 16:05:02")
    assert first == again
    assert first.id.startswith("20240217T160502Z-")
    assert first.read() == b'{"a":1}\n'
    assert [e.id for e in spool.pending()] == [first.id]
    assert not [p for p in (tmp_path / "pending").iterdir() if p.name.startswith(".tmp")]


def test_entries_sort_by_time_and_moves_keep_sidecars(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    late = spool.add(b'{"b":2}', "2024-02-18 00:00:00")
    early = spool.add(b'{"a":1}', "2024-02-17 00:00:00")
    assert [e.id for e in spool.entries()] == [early.id, late.id]
    uploaded = spool.mark_uploaded(early, {"measurement_uid": "U1"})
    assert uploaded.state == "uploaded"
    assert uploaded.sidecar_json() == {"measurement_uid": "U1"}
    rejected = spool.mark_rejected(late, {"error": "bad_signature"})
    assert spool.pending() == []
    assert spool.find("U1") == uploaded
    assert spool.find(rejected.id[:20]).state == "rejected"
    # an uploaded measurement added again does not come back as pending
    spool.add(b'{"a":1}', "2024-02-17 00:00:00")
    assert spool.pending() == []
    spool.remove(uploaded)
    assert not uploaded.path.exists()
    assert uploaded.sidecar is not None
    assert not uploaded.sidecar.exists()


def test_find_errors_are_clear(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add(b'{"a":1}', "2024-02-17 00:00:00")
    spool.add(b'{"a":2}', "2024-02-17 00:00:00")
    with pytest.raises(InputError, match="matches 2 measurements"):
        spool.find("20240217")
    with pytest.raises(InputError, match="no measurement 'nope'"):
        spool.find("nope")


def test_sidecars_and_temporaries_are_not_entries(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.add(b"{}", "2024-02-17 00:00:00")
    spool.mark_uploaded(entry, {"x": 1})
    (tmp_path / "uploaded" / ".tmp-abc.json").write_text("{}")
    assert len(spool.entries()) == 1
    assert json.loads((tmp_path / "uploaded" / f"{entry.id}.receipt.json").read_text()) == {"x": 1}


def test_entry_id_is_content_addressed() -> None:
    assert entry_id(b"a", "2024-02-17 00:00:00") != entry_id(b"b", "2024-02-17 00:00:00")
    assert entry_id(b"a", "2024-02-17 00:00:00") == entry_id(b"a", "2024-02-17 00:00:00")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("1d12h", 129600),
     ("45s", 45)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "10", "5x", "3d and more"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InputError, match="duration"):
        parse_duration(text)


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert min(delays) >= 0
        assert max(delays) <= cap
        assert max(delays) > cap / 2  # full jitter spreads over the whole range


def test_schedule_jitter_stays_within_the_period() -> None:
    schedule = Schedule(every=100.0, jitter=0.1)
    delays = [schedule.delay(started=0.0, now=5.0) for _ in range(500)]
    assert min(delays) >= 85.0
    assert max(delays) <= 105.0
    assert max(delays) - min(delays) > 10.0
    assert Schedule(every=10.0).delay(started=0.0, now=50.0) == 0.0  # overran: next at once
