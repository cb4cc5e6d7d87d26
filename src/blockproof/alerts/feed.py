"""The explorer's feed, ``GET /feeds/events.atom?country=PK&platform=x``.

Theory of operation. The feed is a function of the store's current events alone, with no
delivery state: ``changes.compute`` against an empty record gives, for every event, its
onset and its resolutions (per network while the event goes on, then the event's), dated
by the data (an onset by the event's start, a resolution by its end); the entries whose
event matches the query are written by ``atom.feed_xml``. Entry ids are the same as in
the feeds ``blockproof alerts`` writes, so a reader following both sees one entry per
alert. The report command names the store ``STORE``: the explorer does not publish its
own paths.

Query parameters are checked before anything is read: ``country`` (two letters) and
``platform`` (a platform id, or ``*`` for outages), each at most once; anything else is
``InputError`` (the explorer answers 400 with the sentence).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from blockproof.alerts.atom import feed_xml
from blockproof.alerts.changes import Context, compute
from blockproof.errors import InputError
from blockproof.pipeline.events import StoredEvent

__all__ = ["FeedQuery", "events_feed", "parse_feed_query"]

FEED_KINDS = ("onset", "resolution")
PARAMETERS = ("country", "platform")


class QueryParams(Protocol):
    def multi_items(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class FeedQuery:
    country: str | None = None
    platform: str | None = None

    def as_query(self) -> str:
        pairs = [(k, v) for k, v in (("country", self.country), ("platform", self.platform)) if v]
        return urlencode(pairs)


def parse_feed_query(params: QueryParams, platforms: Mapping[str, str]) -> FeedQuery:
    """The feed's filters from the request's query, or ``InputError`` with a sentence."""
    seen: dict[str, str] = {}
    for key, value in params.multi_items():
        if key not in PARAMETERS:
            raise InputError(f"unknown parameter {key[:40]!r}: the feed takes country and platform")
        if key in seen:
            raise InputError(f"{key} is given twice: give it once")
        seen[key] = value
    country = seen.get("country") or None
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise InputError(
                f"country {country[:40]!r} is not a country code (two letters, e.g. PK)"
            )
        country = country.upper()
    platform = seen.get("platform") or None
    if platform is not None and platform != "*" and platform not in platforms:
        known = ", ".join(sorted(platforms))
        raise InputError(
            f"platform {platform[:40]!r} is not a platform ({known}, or * for outages)"
        )
    return FeedQuery(country, platform)


def _mtime(path: Path) -> str:
    try:
        moment = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        moment = datetime(1970, 1, 1, tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def events_feed(
    events: Sequence[StoredEvent],
    query: FeedQuery,
    *,
    explorer_url: str,
    platforms: Mapping[str, str],
    events_path: Path,
) -> bytes:
    """The Atom document of the events' onsets and resolutions that match ``query``."""
    chosen = [
        e
        for e in events
        if (query.country is None or e.country == query.country)
        and (query.platform is None or e.platform == query.platform)
    ]
    context = Context(explorer_url, "STORE", platforms)
    alerts, _ = compute(chosen, {}, context, None)
    alerts = [a for a in alerts if a.kind in FEED_KINDS]
    what = " ".join(p for p in (query.platform, query.country) if p) or "all events"
    suffix = f"?{query.as_query()}" if query.as_query() else ""
    return feed_xml(
        alerts,
        name=f"explorer:{query.as_query()}",
        title=f"blockproof: blocks and restorations ({what})",
        fallback_updated=_mtime(events_path),
        self_url=f"{explorer_url}/feeds/events.atom{suffix}",
        home_url=f"{explorer_url}/",
    )
