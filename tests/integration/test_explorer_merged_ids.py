"""An event merged into another since keeps its links working: the explorer redirects its
page and its JSON to the event it became (alerts and reports link to event ids)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx

from alerts_kit import PK_BLOCK, PK_ONGOING, write_events
from blockproof.explorer.app import create_app
from blockproof.pipeline.events import read_history
from blockproof.pipeline.store import Store


def _get(store_dir: Path, path: str) -> httpx.Response:
    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(store_dir))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get(path)

    return asyncio.run(fetch())


def _store_with_a_merged_id(tmp_path: Path) -> tuple[Store, str, str]:
    store = write_events(tmp_path / "store", [PK_BLOCK, PK_ONGOING])
    store.table_dir("measurements").mkdir(parents=True)  # a store, if an empty one
    known = read_history(store, "2024-03-01T00:00:00Z")
    current = known[0]
    merged = dataclasses.replace(current, id="xa-x-2024030100-00000000", status="merged",
                                 merged_into=current.id)  # fmt: skip
    history = {"version": 1, "events": [k.to_json() for k in [*known, merged]]}
    store.event_history_path.write_text(json.dumps(history))
    return store, merged.id, current.id


def test_a_merged_event_redirects_to_the_event_it_became(tmp_path: Path) -> None:
    store, old, new = _store_with_a_merged_id(tmp_path)
    for path, target in (
        (f"/events/{old}", f"/events/{new}"),
        (f"/events/{old}?since=2024-02-22", f"/events/{new}?since=2024-02-22"),
        (f"/api/events/{old}", f"/api/events/{new}"),
    ):
        response = _get(store.root, path)
        assert response.status_code == 301, path
        assert response.headers["location"] == target


def test_an_unknown_event_is_still_404(tmp_path: Path) -> None:
    store, _old, _new = _store_with_a_merged_id(tmp_path)
    assert _get(store.root, "/events/xa-x-1999010100-ffffffff").status_code == 404
    assert _get(store.root, "/api/events/xa-x-1999010100-ffffffff").status_code == 404
