"""The analysis' events as readers see them: typed, validated once, written back unchanged.

``analyze`` writes ``events.json`` from its ``Event`` dataclasses (``pipeline.analyze``,
``save``). This module is the one place that reads the file back:

- ``load_events`` gives the events as the JSON objects stored (what ``blockproof events
  --json`` prints);
- ``read_events`` gives them as ``StoredEvent`` objects: every field of every event,
  network, method, witness and sample is checked here, once, against the type it was
  written with (the dataclass field's annotation: ``_Stored``, one reader and one
  writer for every record), so that readers (the explorer, the evidence report) use attributes and
  never meet a missing key or a value of the wrong type later on. A file that does not
  match raises ``StoreError`` naming the event and the field.

``StoredEvent.to_json`` turns an event back into exactly the object stored (same keys,
same values, keys sorted as ``save`` writes them), so that JSON served from these
objects is byte-identical to JSON served from the file. Analyses written before events
kept their sample measurements have no ``samples`` key: ``StoredEvent.samples`` is then
None (a reader looks the sample up in the tables), and ``to_json`` leaves the key out.
Likewise analyses written before events had revisions have no ``revision``,
``first_seen`` and ``updated``: they read as revision 1 with both times None, and
``to_json`` leaves the three out.

The store's ``event-history.json`` (every event id ever given, ``pipeline.identity``)
is read here too: ``read_history`` (for the next analysis; from ``events.json`` when a
store has no history yet) and ``resolve_event_id`` (an old id, perhaps merged into
another event since, to the current one).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Self, TypeVar, cast

from blockproof.pipeline.identity import STATUSES, Facts, Known, resolve
from blockproof.pipeline.store import Store, StoreError

__all__ = [
    "StoredEvent",
    "StoredMethod",
    "StoredNetwork",
    "StoredSample",
    "StoredWitness",
    "load_events",
    "read_events",
    "read_history",
    "resolve_event_id",
]

JSONObject = dict[str, Any]
_Item = TypeVar("_Item")


class _Fields:
    """One stored JSON object, read field by field with its type checked.

    Each reader removes the key it reads; ``done`` then refuses the keys left over, so
    that an object is read only if every one of its keys is a known field. Errors name
    where the object is (``event 3 (pk-x-...), networks[0]``) and the field.
    """

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise StoreError(f"{where}: not a JSON object")
        self._left: JSONObject = dict(value)
        self.where = where

    def _take(self, key: str) -> Any:
        try:
            return self._left.pop(key)
        except KeyError:
            raise StoreError(f"{self.where}: no {key!r}") from None

    def _wrong(self, key: str, expected: str, value: Any) -> StoreError:
        return StoreError(f"{self.where}: {key!r} is {value!r}, not {expected}")

    def text(self, key: str) -> str:
        value = self._take(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def text_or_none(self, key: str) -> str | None:
        value = self._take(key)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string or null", value)
        return value

    def integer(self, key: str) -> int:
        value = self._take(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        return value

    def integer_or_none(self, key: str) -> int | None:
        value = self._take(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._wrong(key, "an integer or null", value)
        return value

    def number(self, key: str) -> float:
        """A JSON number, kept as read (an int stays an int, so it is written back so)."""
        value = self._take(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "a number", value)
        return value

    def flag(self, key: str) -> bool:
        value = self._take(key)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def items(self, key: str, read: Callable[[Any, str], _Item]) -> tuple[_Item, ...]:
        """A JSON array, each item read by ``read(item, where)``."""
        value = self._take(key)
        if not isinstance(value, list):
            raise self._wrong(key, "an array", value)
        return tuple(read(item, f"{self.where}, {key}[{i}]") for i, item in enumerate(value))

    def items_if_present(
        self, key: str, read: Callable[[Any, str], _Item]
    ) -> tuple[_Item, ...] | None:
        return self.items(key, read) if key in self._left else None

    def present(self, key: str) -> bool:
        return key in self._left

    def intervals(self, key: str) -> tuple[tuple[str, str], ...]:
        """An array of ``[from, to]`` pairs of times (brief restorations)."""

        def pair(value: Any, where: str) -> tuple[str, str]:
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(t, str) for t in value)
            ):
                raise StoreError(f"{where}: {value!r} is not a [from, to] pair of times")
            return value[0], value[1]

        return self.items(key, pair)

    def done(self) -> None:
        if self._left:
            unknown = ", ".join(repr(k) for k in sorted(self._left))
            raise StoreError(
                f"{self.where}: unknown {unknown}: the store was analysed by another version"
                " of blockproof; run `blockproof analyze` again"
            )


def _sorted(obj: JSONObject) -> JSONObject:
    """``obj`` with its keys in the order ``save`` writes them (sorted)."""
    return dict(sorted(obj.items()))


# How a field is read, by its annotation as written (``from __future__ import
# annotations`` keeps annotations as their text): the scalar types and the brief
# restorations here; a tuple of stored records (``tuple[StoredX, ...]``, None when
# absent with ``| None``) below, in ``_reader``.
_SCALAR_READERS: dict[str, Callable[[_Fields, str], Any]] = {
    "str": _Fields.text,
    "str | None": _Fields.text_or_none,
    "int": _Fields.integer,
    "int | None": _Fields.integer_or_none,
    "float": _Fields.number,
    "bool": _Fields.flag,
    "tuple[tuple[str, str], ...]": _Fields.intervals,
}
_RECORDS = re.compile(r"tuple\[(Stored\w+), \.\.\.\]( \| None)?")


class _Stored:
    """A stored JSON object as a frozen dataclass: ``from_json`` reads every field with
    its type checked (by its annotation, ``_reader``), ``to_json`` writes it back as it
    was stored. A field with a default is one that older analyses did not write: absent,
    it reads as its default."""

    __slots__ = ()

    @classmethod
    def from_json(cls, value: Any, where: str) -> Self:
        f = _Fields(value, where)
        values: JSONObject = {}
        for field in dataclasses.fields(cast(Any, cls)):
            if field.default is not dataclasses.MISSING and not f.present(field.name):
                continue
            values[field.name] = _reader(str(field.type))(f, field.name)
        f.done()
        return cls(**values)

    def to_json(self) -> JSONObject:
        return _sorted(
            {
                field.name: _as_json(getattr(self, field.name))
                for field in dataclasses.fields(cast(Any, self))
            }
        )


@lru_cache(maxsize=64)
def _reader(annotation: str) -> Callable[[_Fields, str], Any]:
    scalar = _SCALAR_READERS.get(annotation)
    if scalar is not None:
        return scalar
    match = _RECORDS.fullmatch(annotation)
    if match is None:
        raise TypeError(f"a stored field cannot be {annotation!r}")
    record: type[_Stored] = globals()[match.group(1)]
    if match.group(2):
        return lambda f, key: f.items_if_present(key, record.from_json)
    return lambda f, key: f.items(key, record.from_json)


def _as_json(value: Any) -> Any:
    if isinstance(value, _Stored):
        return value.to_json()
    if isinstance(value, tuple):  # records, or [from, to] pairs
        return [_as_json(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class StoredNetwork(_Stored):
    """One network of an event (``pipeline.analyze.NetworkSpan``, as stored)."""

    asn: int
    name: str
    start: str
    start_earliest: str
    start_latest: str
    end: str | None
    end_earliest: str | None
    end_latest: str | None
    blocked_probe_hours: int
    scored_probe_hours: int
    floor_p_value: float
    restorations: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class StoredMethod(_Stored):
    """A blocking method of an event: how many of its blocked measurements showed it."""

    method: str
    count: int
    share: float


@dataclass(frozen=True, slots=True)
class StoredWitness(_Stored):
    """One of an event's witness measurements (``pipeline.engine.event_witnesses``)."""

    msm_id: str
    probe_asn: int
    outcome: str
    method: str
    rule_id: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class StoredSample(_Stored):
    """One sample measurement of an event's evidence report: its verdict and the facts of
    its measurement (``pipeline.engine.event_samples`` and ``SAMPLE_DETAILS``). The
    measurement's facts are None when its row was not found, or for columns a store
    written before they existed lacks."""

    msm_id: str
    measurement_start_time: str  # "YYYY-MM-DD HH:MM:SS", UTC
    probe_asn: int
    outcome: str
    method: str
    rule_id: str
    explanation: str | None
    fingerprint: str | None
    input: str | None
    raw_sha256: str | None  # of the measurement's bytes as received
    signature: str | None  # valid | unsigned | invalid
    probe_id: str | None
    receipt: str | None  # the collector's receipt, as JSON text
    inclusion: str | None  # "valid" or the receipt's problems
    source_sha256: str | None  # the kept source file holding the measurement ...
    source_line: int | None  # ... and its line there


@dataclass(frozen=True, slots=True)
class StoredEvent(_Stored):
    """One event of the last analysis (``pipeline.analyze.Event``, as stored).

    Times are ISO strings (``2024-02-17T17:00:00Z``); ``end`` and its interval are None
    while the event is ongoing. ``platform`` is ``"*"`` for an outage of everything.
    ``samples`` is None for an analysis written before events kept their sample.
    """

    id: str
    kind: str  # platform_block | outage
    platform: str
    country: str
    start: str
    start_earliest: str
    start_latest: str
    end: str | None
    end_earliest: str | None
    end_latest: str | None
    ongoing: bool
    networks: tuple[StoredNetwork, ...]
    methods: tuple[StoredMethod, ...]  # the dominant method first
    confidence: str  # confirmed | high | medium
    n_measurements: int
    n_probes: int
    n_blocked: int
    n_confirmed: int
    restorations: tuple[tuple[str, str], ...]
    witnesses: tuple[StoredWitness, ...]
    samples: tuple[StoredSample, ...] | None
    rules_version: str
    # the event's revision (1 when first found, +1 at each change that matters) and the
    # analysis times of its first revision and of its last change (pipeline.identity);
    # 1, None, None for an analysis written before events had revisions
    revision: int = 1
    first_seen: str | None = None
    updated: str | None = None

    # written only by analyses that give events revisions, all three or none
    _REVISION_FIELDS = ("revision", "first_seen", "updated")

    @classmethod
    def from_json(cls, value: Any, where: str = "event") -> Self:
        """The event in ``value`` (one item of ``events.json``'s ``events``), checked."""
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            where = f"{where} ({value['id']})"
        # (``dataclass(slots=True)`` makes a new class: no zero-argument ``super()``)
        event = super(StoredEvent, cls).from_json(value, where)
        if event.revision < 1:
            raise StoreError(f"{where}: 'revision' is {event.revision}, not 1 or more")
        return event

    def to_json(self) -> JSONObject:
        """The event exactly as ``events.json`` stores it."""
        out = _Stored.to_json(self)
        if self.samples is None:
            del out["samples"]
        if self.first_seen is None:
            for key in self._REVISION_FIELDS:
                del out[key]
        return out

    def facts(self) -> Facts:
        """What identifies the event across analyses (``pipeline.identity``)."""
        return Facts(
            kind=self.kind,
            platform=self.platform,
            country=self.country,
            start=self.start,
            end=self.end,
            ongoing=self.ongoing,
            networks=tuple(sorted((n.asn, n.end) for n in self.networks)),
            method=self.methods[0].method if self.methods else None,
            confidence=self.confidence,
        )


# every field of every stored record has a reader: a new field of another type fails here
for _record in (StoredNetwork, StoredMethod, StoredWitness, StoredSample, StoredEvent):
    for _field in dataclasses.fields(_record):
        _reader(str(_field.type))


def load_events(store: Store) -> list[JSONObject]:
    """The events of the last ``analyze``, as the JSON objects stored."""
    if not store.events_path.exists():
        raise FileNotFoundError(
            f"{store.events_path} not found: run `blockproof analyze --store {store.root}` first"
        )
    data = json.loads(store.events_path.read_text())
    events: list[JSONObject] = data["events"]
    return events


def read_events(store: Store) -> list[StoredEvent]:
    """The events of the last ``analyze``, typed and checked (``StoreError`` if one is not
    what ``analyze`` writes; ``FileNotFoundError`` before the first analysis)."""
    return [
        StoredEvent.from_json(event, f"{store.events_path}: event {i}")
        for i, event in enumerate(load_events(store))
    ]


def _network_end(value: Any, where: str) -> tuple[int, str | None]:
    f = _Fields(value, where)
    pair = (f.integer("asn"), f.text_or_none("end"))
    f.done()
    return pair


def _known(value: Any, where: str) -> Known:
    """One entry of ``event-history.json`` (``Known.to_json``), checked."""
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        where = f"{where} ({value['id']})"
    f = _Fields(value, where)
    known = Known(
        id=f.text("id"),
        facts=Facts(
            kind=f.text("kind"),
            platform=f.text("platform"),
            country=f.text("country"),
            start=f.text("start"),
            end=f.text_or_none("end"),
            ongoing=f.flag("ongoing"),
            networks=tuple(sorted(f.items("networks", _network_end))),
            method=f.text_or_none("method"),
            confidence=f.text("confidence"),
        ),
        revision=f.integer("revision"),
        first_seen=f.text("first_seen"),
        updated=f.text("updated"),
        status=f.text("status"),
        merged_into=f.text_or_none("merged_into"),
    )
    f.done()
    if known.revision < 1 or known.status not in STATUSES:
        raise StoreError(f"{where}: revision {known.revision}, status {known.status!r}")
    return known


def read_history(store: Store, now: str) -> list[Known]:
    """Every event id given by earlier analyses (``event-history.json``); for a store
    analysed before there was a history, the events of ``events.json`` (first seen
    ``now``, as their first sighting is unknown); empty before the first analysis.
    ``StoreError`` when the history is not what ``analyze`` writes: ids would be lost."""
    path = store.event_history_path
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return _history_from_events(store, now)
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{path} is unreadable ({exc}): restore it, or delete it to number the events"
            " anew from events.json"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise StoreError(f"{path}: no 'events' list")
    return [_known(item, f"{path}: entry {i}") for i, item in enumerate(data["events"])]


def _history_from_events(store: Store, now: str) -> list[Known]:
    try:
        events = read_events(store)
    except FileNotFoundError:
        return []
    return [
        Known(
            id=e.id,
            facts=e.facts(),
            revision=e.revision,
            first_seen=e.first_seen or now,
            updated=e.updated or now,
        )
        for e in events
    ]


def resolve_event_id(store: Store, event_id: str) -> str | None:
    """The current id of the event once called ``event_id``: itself while it is current,
    the event it was merged into (and so on) since; None when no current event has it
    (never given, or vanished)."""
    if not store.event_history_path.exists():
        known = {e.id for e in read_events(store)} if store.events_path.exists() else set()
        return event_id if event_id in known else None
    return resolve(read_history(store, ""), event_id)
