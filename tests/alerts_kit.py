"""Events and stores for the alerts' tests: ``StoredEvent`` objects built from a few facts,
and a store whose ``events.json`` holds them exactly as ``analyze`` writes it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from blockproof.pipeline.events import StoredEvent, StoredMethod, StoredNetwork
from blockproof.pipeline.store import Store

NAMES = {17557: "PTCL", 45669: "Jazz", 24499: "Zong", 59257: "Nayatel"}
RULES_VERSION = "test"


def net(
    asn: int,
    start: str = "2024-02-17T15:00:00Z",
    end: str | None = None,
    restorations: Sequence[tuple[str, str]] = (),
    name: str | None = None,
) -> StoredNetwork:
    return StoredNetwork(
        asn=asn,
        name=NAMES.get(asn, f"Network {asn}") if name is None else name,
        start=start,
        start_earliest=start,
        start_latest=start,
        end=end,
        end_earliest=end,
        end_latest=end,
        blocked_probe_hours=40,
        scored_probe_hours=44,
        floor_p_value=1e-9,
        restorations=tuple(restorations),
    )


def event(
    networks: Sequence[StoredNetwork],
    *,
    id: str = "pk-x-2024021715-0a1b2c3d",
    platform: str = "x",
    country: str = "PK",
    methods: Sequence[tuple[str, float]] = (("tls", 0.94), ("dns", 0.06)),
    confidence: str = "confirmed",
    ended: bool | None = None,
    n_measurements: int = 120,
) -> StoredEvent:
    """An event over ``networks``: it starts with the first and, when every network has
    ended (or ``ended``), ends with the last."""
    start = min(n.start for n in networks)
    done = all(n.end is not None for n in networks) if ended is None else ended
    end = max(n.end or n.start for n in networks) if done else None
    return StoredEvent(
        id=id,
        kind="outage" if platform == "*" else "platform_block",
        platform=platform,
        country=country,
        start=start,
        start_earliest=start,
        start_latest=start,
        end=end,
        end_earliest=end,
        end_latest=end,
        ongoing=not done,
        networks=tuple(networks),
        methods=tuple(
            StoredMethod(method=m, count=round(share * 100), share=share) for m, share in methods
        ),
        confidence=confidence,
        n_measurements=n_measurements,
        n_probes=33,
        n_blocked=32,
        n_confirmed=4,
        restorations=(),
        witnesses=(),
        samples=(),
        rules_version=RULES_VERSION,
    )


def write_events(store_dir: Path, events: Sequence[StoredEvent]) -> Store:
    """A store whose ``events.json`` holds ``events`` (in ``pipeline.analyze.save``'s
    format), replaced atomically."""
    store = Store(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "engine": "duckdb",
        "rules_version": RULES_VERSION,
        "events": [e.to_json() for e in events],
    }
    tmp = store.events_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(store.events_path)
    return store


PK_BLOCK = event(
    [net(17557, end="2024-02-28T10:00:00Z"), net(45669, end="2024-02-27T08:00:00Z")],
    id="pk-x-2024021715-5e6f7a8b",
)
PK_ONGOING = event(
    [net(17557, "2024-03-01T12:00:00Z"), net(59257, "2024-03-01T13:00:00Z")],
    id="pk-x-2024030112-11223344",
    methods=(("dns", 1.0),),
    confidence="high",
)
PK_OUTAGE = event(
    [net(45669, "2024-02-08T03:00:00Z", "2024-02-08T20:00:00Z")],
    id="pk-all-2024020803-98475c51",
    platform="*",
    methods=(("dns", 1.0),),
    confidence="high",
)
