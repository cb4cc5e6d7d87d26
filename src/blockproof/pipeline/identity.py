"""Stable event ids: which event of this analysis is which event of the earlier ones.

``analyze`` recomputes every event from the verdicts at each run, so an event's
content moves as data arrives: late measurements move its start, new hours extend
it, a network joins, the end arrives. Its id must not move with it: alerts, links
to the explorer's evidence page and reports name it. This module is the pure
decision (no I/O): ``identify(history, events, now)`` takes every event id ever
given (``Known``, the store's ``event-history.json``) and the events just found
(``Facts``), and gives each event its id, ``revision``, ``first_seen`` and
``updated``, with the new history.

Theory of operation:

1. **Related.** An earlier event and a new one are related when they have the
   same kind, platform and country, their time spans overlap or follow within
   ``gap_hours`` (the analysis' merge gap, 24 h: the new one extends or continues
   the old one; an ongoing event's span is open-ended), and they share at least
   one network. Earlier events are the current ones (the last analysis') and the
   vanished ones (found once, not since), never those merged into another.
2. **Heir.** Each earlier event passes its id to its *heir*: the earliest
   related new event (by start). So when an event splits in two, the earlier part
   keeps the id and the later part is new.
3. **Merge.** A new event that is the heir of several earlier events keeps the
   id of the oldest (a current one before a vanished one, then the earliest
   ``first_seen``, then the earliest start); the others are recorded as merged
   into it (status ``merged``, ``merged_into``) and are never given again.
4. **New.** A new event heir to none gets a new id, derived from its kind,
   platform, country and start hour (``event_id``: ``pk-x-2024021716-0a1b2c3d``;
   ``analyze`` proposes it), never one given before (a counter goes into the
   digest until it is free). The first analysis of a store therefore gives the ids
   earlier versions gave.
5. **Revision.** A new event starts at revision 1 with ``first_seen`` =
   ``updated`` = the analysis time. An heir keeps its predecessor's revision and
   ``updated`` if what matters is unchanged, else both move (revision + 1,
   ``updated`` = now). What matters (``Facts``): start, end, ongoing, each network
   and its end (a network joining, leaving or resolving), the dominant method and
   the confidence. Absorbing another event, or coming back after having vanished,
   is a change too. Counts, witnesses and intervals are not: they move with every
   measurement.
6. **Vanished.** A current event related to no new event (its blocks no longer
   reach the evidence floor, e.g. after re-judging) becomes ``vanished``; it stays
   in the history, so if it comes back it keeps its id (rule 2, with a new
   revision).

The result is deterministic for given inputs: analysing an unchanged store again
changes no id, no revision and no ``updated``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

CURRENT = "current"
VANISHED = "vanished"
MERGED = "merged"
STATUSES = (CURRENT, VANISHED, MERGED)
CHANGES = ("new", "updated", "unchanged", MERGED, VANISHED)
HOUR = 3600


def seconds(text: str) -> int:
    """``2024-02-17T17:00:00Z`` -> epoch seconds."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def stamp(when: datetime) -> str:
    """A time as the events write it: ``2024-02-17T17:00:00Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_id(kind: str, platform: str, country: str, start_hour: int, salt: int = 0) -> str:
    """``pk-x-2024021716-0a1b2c3d``: country, platform (``all`` for an outage), start hour,
    and a digest of them (with ``salt`` when the plain one is taken)."""
    key = f"{kind}|{platform}|{country}|{start_hour}" + (f"|{salt}" if salt else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    when = datetime.fromtimestamp(start_hour * HOUR, UTC).strftime("%Y%m%d%H")
    label = "all" if platform == "*" else platform
    return f"{country.lower()}-{label}-{when}-{digest}"


@dataclass(frozen=True, slots=True)
class Facts:
    """What identifies an event and what, when it changes, makes a new revision."""

    kind: str
    platform: str
    country: str
    start: str
    end: str | None
    ongoing: bool
    networks: tuple[tuple[int, str | None], ...]  # (ASN, its end), by ASN
    method: str | None  # the dominant method
    confidence: str

    @property
    def asns(self) -> frozenset[int]:
        return frozenset(asn for asn, _ in self.networks)

    def span(self) -> tuple[float, float]:
        """Start and end in epoch seconds; an ongoing event's end is infinite (an end
        before the start, which ``analyze`` never writes, counts as the start)."""
        start = float(seconds(self.start))
        end = math.inf if self.ongoing or self.end is None else float(seconds(self.end))
        return start, max(start, end)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "platform": self.platform,
            "country": self.country,
            "start": self.start,
            "end": self.end,
            "ongoing": self.ongoing,
            "networks": [{"asn": asn, "end": end} for asn, end in self.networks],
            "method": self.method,
            "confidence": self.confidence,
        }


@dataclass(frozen=True, slots=True)
class Known:
    """An event id given by an analysis, and the event as it was last seen."""

    id: str
    facts: Facts
    revision: int
    first_seen: str
    updated: str  # the analysis that last changed it (or its status)
    status: str = CURRENT  # current | vanished | merged
    merged_into: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.facts.to_json(),
            "revision": self.revision,
            "first_seen": self.first_seen,
            "updated": self.updated,
            "status": self.status,
            "merged_into": self.merged_into,
        }


@dataclass(frozen=True, slots=True)
class Numbered:
    """What one event of this analysis is given."""

    id: str
    revision: int
    first_seen: str
    updated: str
    merged: tuple[str, ...] = ()  # ids of earlier events merged into it by this analysis


@dataclass(frozen=True, slots=True)
class Identified:
    events: list[Numbered]  # one per event given, in the same order
    history: list[Known]  # every id ever given, by id
    # ids by what this analysis did to them: new, updated (a new revision), unchanged,
    # merged (into another), vanished
    changes: dict[str, list[str]]


def related(old: Facts, new: Facts, gap_hours: int) -> bool:
    """Rule 1: the same kind, platform and country, spans that overlap or follow within
    ``gap_hours``, and at least one network in common."""
    if (old.kind, old.platform, old.country) != (new.kind, new.platform, new.country):
        return False
    if not old.asns & new.asns:
        return False
    gap = gap_hours * HOUR
    old_start, old_end = old.span()
    new_start, new_end = new.span()
    return new_start <= old_end + gap and old_start <= new_end + gap


def _key(f: Facts) -> tuple[str, str, str]:
    return (f.kind, f.platform, f.country)


def _older(k: Known) -> tuple[int, str, int, str]:
    """Rule 3's order: current first, then the earliest first seen, start, id."""
    return (0 if k.status == CURRENT else 1, k.first_seen, seconds(k.facts.start), k.id)


def identify(
    history: Iterable[Known],
    events: Sequence[Facts],
    now: str,
    *,
    proposed: Sequence[str] | None = None,
    gap_hours: int = 24,
) -> Identified:
    """Ids, revisions and times for ``events`` (found by the analysis at ``now``), given
    every id given before (``history``); and the history to keep. A new event gets its
    ``proposed`` id (by default ``event_id`` of its start) unless that was ever given.
    See the module docstring for the rules."""
    if proposed is not None and len(proposed) != len(events):
        raise ValueError("one proposed id per event")
    known = sorted(history, key=lambda k: k.id)
    order = sorted(range(len(events)), key=lambda i: (*events[i].span(), i))
    by_key: dict[tuple[str, str, str], list[int]] = {}  # the new events of each key, in order
    for i in order:
        by_key.setdefault(_key(events[i]), []).append(i)
    heirs: dict[int, list[Known]] = {}
    for old in known:
        if old.status == MERGED:
            continue
        candidates = by_key.get(_key(old.facts), [])
        heir = next((i for i in candidates if related(old.facts, events[i], gap_hours)), None)
        if heir is not None:
            heirs.setdefault(heir, []).append(old)
    given = {k.id for k in known}
    out: dict[int, Numbered] = {}
    kept: dict[str, Known] = {}
    changes: dict[str, list[str]] = {key: [] for key in CHANGES}
    for i, claimants in heirs.items():
        winner, *absorbed = sorted(claimants, key=_older)
        facts = events[i]
        changed = winner.status != CURRENT or bool(absorbed) or winner.facts != facts
        revision = winner.revision + 1 if changed else winner.revision
        updated = now if changed else winner.updated
        merged = tuple(k.id for k in absorbed)
        out[i] = Numbered(winner.id, revision, winner.first_seen, updated, merged)
        kept[winner.id] = Known(winner.id, facts, revision, winner.first_seen, updated)
        changes["updated" if changed else "unchanged"].append(winner.id)
        for k in absorbed:
            kept[k.id] = replace(k, status=MERGED, merged_into=winner.id, updated=now)
            changes[MERGED].append(k.id)
    for i in order:
        if i in out:
            continue
        facts = events[i]
        start_hour = seconds(facts.start) // HOUR
        salt = 0
        if proposed is not None:
            new_id = proposed[i]
        else:
            new_id = event_id(facts.kind, facts.platform, facts.country, start_hour)
        while new_id in given:
            salt += 1
            new_id = event_id(facts.kind, facts.platform, facts.country, start_hour, salt)
        given.add(new_id)
        out[i] = Numbered(new_id, 1, now, now)
        kept[new_id] = Known(new_id, facts, 1, now, now)
        changes["new"].append(new_id)
    for k in known:
        if k.id in kept:
            continue
        if k.status == CURRENT:
            kept[k.id] = replace(k, status=VANISHED, updated=now)
            changes[VANISHED].append(k.id)
        else:
            kept[k.id] = k
    return Identified(
        events=[out[i] for i in range(len(events))],
        history=[kept[key] for key in sorted(kept)],
        changes={key: sorted(ids) for key, ids in changes.items()},
    )


def resolve(history: Iterable[Known], event_id: str) -> str | None:
    """The current id of the event once called ``event_id`` (following merges), or None
    (never given, or vanished)."""
    by_id = {k.id: k for k in history}
    seen: set[str] = set()
    current = by_id.get(event_id)
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.status == CURRENT:
            return current.id
        if current.status != MERGED or current.merged_into is None:
            return None
        current = by_id.get(current.merged_into)
    return None
