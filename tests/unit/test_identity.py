"""Stable event ids across analyses (pipeline.identity): the matching of the events just
found with every id given before, its revisions and its history, case by case."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from blockproof.pipeline.identity import (
    CURRENT,
    MERGED,
    VANISHED,
    Facts,
    Known,
    event_id,
    identify,
    related,
    resolve,
    seconds,
)

BEFORE = "2024-03-01T00:00:00Z"  # the earlier analysis
NOW = "2024-03-02T00:00:00Z"  # this one


def t(day: int, hour: int = 0) -> str:
    return f"2024-02-{day:02d}T{hour:02d}:00:00Z"


def facts(
    start: str,
    end: str | None = None,
    asns: tuple[int, ...] = (17557,),
    *,
    platform: str = "x",
    country: str = "PK",
    kind: str = "platform_block",
    method: str = "tls",
    confidence: str = "medium",
) -> Facts:
    return Facts(
        kind=kind,
        platform=platform,
        country=country,
        start=start,
        end=end,
        ongoing=end is None,
        networks=tuple((asn, end) for asn in sorted(asns)),
        method=method,
        confidence=confidence,
    )


def known(
    name: str,
    f: Facts,
    *,
    revision: int = 1,
    first_seen: str = BEFORE,
    status: str = CURRENT,
    merged_into: str | None = None,
) -> Known:
    return Known(name, f, revision, first_seen, BEFORE, status, merged_into)


@dataclass
class Case:
    name: str
    history: list[Known]
    found: list[Facts]
    ids: list[str]  # "*" for a new id
    revisions: list[int]
    changes: dict[str, list[str]] = field(default_factory=dict)  # the non-empty ones
    statuses: dict[str, str] = field(default_factory=dict)  # history entries to check


BLOCK = facts(t(17, 17))  # ongoing since 17 February 17:00 on PTCL
CASES = [
    Case(
        "the same event again: same id, same revision, nothing updated",
        [known("a", BLOCK)],
        [BLOCK],
        ["a"],
        [1],
        {"unchanged": ["a"]},
    ),
    Case(
        "extended: an ended event goes on longer",
        [known("a", facts(t(17, 17), t(18, 2)))],
        [facts(t(17, 17), t(19, 5))],
        ["a"],
        [2],
        {"updated": ["a"]},
    ),
    Case(
        "late data moves the start earlier",
        [known("a", BLOCK)],
        [facts(t(17, 11))],
        ["a"],
        [2],
        {"updated": ["a"]},
    ),
    Case(
        "late data moves the start later (still overlapping)",
        [known("a", facts(t(17, 17), t(18, 2)))],
        [facts(t(17, 23), t(18, 2))],
        ["a"],
        [2],
    ),
    Case(
        "a network added",
        [known("a", BLOCK, revision=3)],
        [facts(t(17, 17), asns=(17557, 24499))],
        ["a"],
        [4],
    ),
    Case(
        "the end arrives",
        [known("a", BLOCK)],
        [facts(t(17, 17), t(20, 9))],
        ["a"],
        [2],
    ),
    Case(
        "the dominant method changes",
        [known("a", BLOCK)],
        [replace(BLOCK, method="dns")],
        ["a"],
        [2],
    ),
    Case(
        "the confidence changes",
        [known("a", BLOCK)],
        [replace(BLOCK, confidence="high")],
        ["a"],
        [2],
    ),
    Case(
        "two events merge into one: the older id stays, the other is recorded as merged",
        [
            known("a", facts(t(10, 0), t(10, 6)), first_seen="2024-02-11T00:00:00Z"),
            known("b", facts(t(11, 0), t(11, 4), asns=(24499, 17557))),
        ],
        [facts(t(10, 0), t(11, 4), asns=(17557, 24499))],
        ["a"],
        [2],
        {"updated": ["a"], "merged": ["b"]},
        {"b": MERGED},
    ),
    Case(
        "merging, first seen together: the earlier start keeps its id",
        [known("b", facts(t(11, 0), t(11, 4))), known("a", facts(t(10, 0), t(10, 6)))],
        [facts(t(10, 0), t(11, 4))],
        ["a"],
        [2],
        {"updated": ["a"], "merged": ["b"]},
    ),
    Case(
        "one splits in two: the earlier part keeps the id, the later one is new",
        [known("a", BLOCK)],
        [facts(t(17, 17), t(18, 2)), facts(t(22, 8))],
        ["a", "*"],
        [2, 1],
        {"updated": ["a"], "new": ["*"]},
    ),
    Case(
        "an unrelated new event: a new id, the earlier one unchanged",
        [known("a", BLOCK)],
        [BLOCK, facts(t(8, 3), t(8, 20), kind="outage", platform="*")],
        ["a", "*"],
        [1, 1],
        {"unchanged": ["a"], "new": ["*"]},
    ),
    Case(
        "another country at the same time is another event",
        [known("a", BLOCK)],
        [facts(t(17, 17), country="IR")],
        ["*"],
        [1],
        {"new": ["*"], "vanished": ["a"]},
    ),
    Case(
        "other networks at the same time are another event",
        [known("a", BLOCK)],
        [facts(t(17, 17), asns=(45595,))],
        ["*"],
        [1],
        {"new": ["*"], "vanished": ["a"]},
    ),
    Case(
        "an event that vanishes stays in the history",
        [known("a", BLOCK), known("b", facts(t(10, 0), t(10, 6)))],
        [BLOCK],
        ["a"],
        [1],
        {"unchanged": ["a"], "vanished": ["b"]},
        {"b": VANISHED},
    ),
    Case(
        "an event that vanished and comes back keeps its id, with a new revision",
        [known("b", facts(t(10, 0), t(10, 6)), status=VANISHED, revision=2)],
        [facts(t(10, 0), t(10, 6))],
        ["b"],
        [3],
        {"updated": ["b"]},
        {"b": CURRENT},
    ),
    Case(
        "a vanished event stays vanished, untouched",
        [known("b", facts(t(10, 0), t(10, 6)), status=VANISHED)],
        [],
        [],
        [],
        {},
        {"b": VANISHED},
    ),
    Case(
        "a merged id is never given again",
        [
            known("a", facts(t(10, 0), t(11, 4))),
            known("b", facts(t(11, 0), t(11, 4)), status=MERGED, merged_into="a"),
        ],
        [facts(t(10, 0), t(11, 4))],
        ["a"],
        [1],
        {"unchanged": ["a"]},
        {"b": MERGED},
    ),
    Case(
        "within the merge gap after its end an event continues",
        [known("a", facts(t(17, 0), t(17, 6)))],
        [facts(t(18, 1), t(18, 9))],
        ["a"],
        [2],
    ),
    Case(
        "beyond the merge gap it is another event",
        [known("a", facts(t(17, 0), t(17, 6)))],
        [facts(t(18, 7), t(18, 9))],
        ["*"],
        [1],
        {"new": ["*"], "vanished": ["a"]},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matching(case: Case) -> None:
    result = identify(case.history, case.found, NOW)
    old_ids = {k.id for k in case.history}
    got_ids = [n.id for n in result.events]
    assert [("*" if i not in old_ids else i) for i in got_ids] == case.ids
    assert [n.revision for n in result.events] == case.revisions
    assert len(set(got_ids)) == len(got_ids)
    for n, f in zip(result.events, case.found, strict=True):
        before = next((k for k in case.history if k.id == n.id), None)
        if before is None:  # new: first seen now, its id derived from its start
            assert (n.first_seen, n.updated) == (NOW, NOW)
            assert n.id == event_id(f.kind, f.platform, f.country, seconds(f.start) // 3600)
        else:  # kept: first seen then, updated now only if it changed
            assert n.first_seen == before.first_seen
            assert n.updated == (NOW if n.revision > before.revision else before.updated)
    changes = {k: ["*" if i not in old_ids else i for i in v] for k, v in result.changes.items()}
    assert {k: v for k, v in changes.items() if v} == (
        case.changes or {k: v for k, v in changes.items() if v}
    )
    history = {k.id: k for k in result.history}
    assert set(history) == old_ids | set(got_ids)  # every id ever given is kept
    for name, status in case.statuses.items():
        assert history[name].status == status
    for n, f in zip(result.events, case.found, strict=True):
        assert history[n.id].status == CURRENT
        assert history[n.id].facts == f
        assert history[n.id].revision == n.revision


def test_merged_events_point_to_the_event_that_absorbed_them() -> None:
    case = next(c for c in CASES if c.name.startswith("two events merge"))
    result = identify(case.history, case.found, NOW)
    assert result.events[0].merged == ("b",)
    history = {k.id: k for k in result.history}
    assert history["b"].merged_into == "a"
    assert history["b"].updated == NOW
    assert resolve(result.history, "b") == "a"
    assert resolve(result.history, "a") == "a"
    assert resolve(result.history, "never") is None


def test_resolve_follows_chains_and_stops_at_vanished_events_and_cycles() -> None:
    f = facts(t(10))
    history = [
        known("a", f, status=MERGED, merged_into="b"),
        known("b", f, status=MERGED, merged_into="c"),
        known("c", f),
        known("v", f, status=VANISHED),
        known("w", f, status=MERGED, merged_into="v"),
        known("x", f, status=MERGED, merged_into="y"),
        known("y", f, status=MERGED, merged_into="x"),
    ]
    assert [resolve(history, i) for i in "abcvwxy"] == ["c", "c", "c", None, None, None, None]


def test_a_new_id_is_never_one_given_before() -> None:
    # an event found again at the same start on other networks: the plain id is taken
    f = facts(t(17, 17))
    taken = event_id("platform_block", "x", "PK", seconds(f.start) // 3600)
    history = [known(taken, facts(t(17, 17), asns=(45595,)), status=VANISHED)]
    result = identify(history, [f], NOW)
    [n] = result.events
    assert n.id != taken
    assert n.id.startswith("pk-x-2024021717-")
    assert n.id == event_id("platform_block", "x", "PK", seconds(f.start) // 3600, salt=1)


def test_a_proposed_id_is_kept_when_free() -> None:
    f = facts(t(17, 17))
    assert identify([], [f], NOW, proposed=["pk-x-2024021717-0a1b2c3d"]).events[0].id == (
        "pk-x-2024021717-0a1b2c3d"
    )
    with pytest.raises(ValueError, match="one proposed id per event"):
        identify([], [f], NOW, proposed=[])


def test_the_same_inputs_give_the_same_result_whatever_their_order() -> None:
    history = [known("a", BLOCK), known("b", facts(t(10, 0), t(10, 6)))]
    found = [facts(t(10, 0), t(10, 6)), facts(t(17, 10)), facts(t(25, 0), country="IR")]
    one = identify(history, found, NOW)
    two = identify(list(reversed(history)), found, NOW)
    assert one == two
    # and an analysis of the result with nothing new changes nothing
    again = identify(one.history, found, "2024-03-03T00:00:00Z")
    assert [n.id for n in again.events] == [n.id for n in one.events]
    assert [n.updated for n in again.events] == [n.updated for n in one.events]
    assert again.history == one.history


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (facts(t(17)), facts(t(18)), True),  # ongoing: open-ended
        (facts(t(17), t(18)), facts(t(16), t(17)), True),
        (facts(t(17), t(18)), facts(t(19, 0)), True),  # within 24 h after
        (facts(t(17), t(18)), facts(t(19, 1)), False),
        (facts(t(17), t(18)), facts(t(15), t(16)), True),  # within 24 h before
        (facts(t(17), t(18)), facts(t(15), t(15, 23)), False),
        (facts(t(17)), facts(t(17), platform="telegram"), False),
        (facts(t(17)), facts(t(17), kind="outage"), False),
        (facts(t(17), asns=(1, 2)), facts(t(17), asns=(2, 3)), True),
        (facts(t(17), asns=(1, 2)), facts(t(17), asns=(3,)), False),
    ],
)
def test_related(old: Facts, new: Facts, expected: bool) -> None:
    assert related(old, new, 24) is expected
    assert related(new, old, 24) is expected
