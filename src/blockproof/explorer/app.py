"""The explorer (``blockproof serve explorer --store DIR``): read-only pages over a store.

A first slice of the explorer, server-rendered with no JavaScript:

====================================  ============================================
GET /                                 events, and a platform x country status board
GET /events/{id}                      the event's evidence report, linked to its
                                      measurements
GET /countries/{cc}                   each platform on each network, with AS names
GET /measurements/{msm_id}            one measurement: verdict, rule, explanation,
                                      SHA-256, signature status, the raw JSON (escaped)
GET /measurements/{msm_id}.json       the measurement's bytes as received (download)
GET /api/events                       the events as JSON
GET /api/events/{id}                  one event's evidence as JSON
====================================  ============================================

Every value from a measurement is HTML-escaped (measurements carry hostile HTML
by design); unknown ids answer 404 with a sentence. The store is only read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from blockproof.errors import InputError
from blockproof.explorer.evidence import country_status, find_event, gather, measurement_view
from blockproof.explorer.report import CSS, render_html, signature_text
from blockproof.explorer.report import escape_html as _e
from blockproof.pipeline.store import Store


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}'
        "nav { margin-bottom: 1rem; }</style></head><body>"
        '<nav><a href="/">blockproof explorer</a></nav>'
        f"{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _not_found(what: str) -> HTMLResponse:
    return _page("not found", f"<h1>Not found</h1><p>{_e(what)}</p>", 404)


def create_app(store_dir: Path) -> Starlette:
    store = Store(str(store_dir))

    def load() -> list[dict[str, Any]]:
        from blockproof.pipeline.analyze import load_events

        try:
            return load_events(store)
        except FileNotFoundError:
            return []

    async def home(request: Request) -> Response:
        events = await asyncio.to_thread(load)
        rows = "".join(
            f'<tr><td><a href="/events/{_e(e["id"])}">{_e(e["id"])}</a></td>'
            f"<td>{_e(e['kind'])}</td><td>{_e(e['platform'])}</td><td>{_e(e['country'])}</td>"
            f"<td>{_e(e['start'])}</td><td>{_e(e['end'] or 'ongoing')}</td>"
            f"<td>{len(e['networks'])}</td><td class=num>{e['n_measurements']:,}</td>"
            f"<td class=num>{e['n_probes']:,}</td><td>{_e(e['confidence'])}</td></tr>"
            for e in events
        )
        board: dict[tuple[str, str], str] = {}
        for e in events:
            if e["kind"] == "platform_block":
                key = (e["platform"], e["country"])
                board[key] = "blocked now" if e["end"] is None else board.get(key, "was blocked")
        board_rows = "".join(
            f'<tr><td>{_e(p)}</td><td><a href="/countries/{_e(c)}">{_e(c)}</a></td>'
            f"<td>{_e(state)}</td></tr>"
            for (p, c), state in sorted(board.items())
        )
        body = (
            "<h1>Events</h1>"
            + (
                "<table><tr><th>event</th><th>kind</th><th>platform</th><th>country</th>"
                "<th>start (UTC)</th><th>end (UTC)</th><th>networks</th>"
                "<th class=num>measurements</th><th class=num>probes</th><th>confidence</th>"
                f"</tr>{rows}</table>"
                if events
                else "<p>No events: run <code>blockproof analyze</code> on the store.</p>"
            )
            + "<h2>Platform by country</h2>"
            + (
                "<table><tr><th>platform</th><th>country</th><th>status</th></tr>"
                f"{board_rows}</table>"
                if board
                else "<p>No platform blocks detected.</p>"
            )
        )
        return _page("blockproof explorer", body)

    async def event_page(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        try:
            evidence = await asyncio.to_thread(gather, store, event_id)
        except InputError as exc:
            return _not_found(str(exc))
        html = render_html(evidence, measurement_url=lambda msm_id: f"/measurements/{msm_id}")
        return HTMLResponse(html.replace("<body>", '<body><nav><a href="/">explorer</a></nav>', 1))

    async def measurement_page(request: Request) -> Response:
        msm_id: str = request.path_params["msm_id"]
        if msm_id.endswith(".json"):
            return await raw_measurement(msm_id[: -len(".json")])
        view = await asyncio.to_thread(measurement_view, store, msm_id)
        if view is None:
            return _not_found(f"no measurement {msm_id!r} in this store")
        row = view.row
        pretty = "(the source file is not in the store)"
        if view.raw is not None:
            try:
                pretty = json.dumps(json.loads(view.raw), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = view.raw.decode("utf-8", "replace")
        signature = signature_text(view.signature, view.key_id)
        facts = [
            ("URL", row.get("input")),
            ("test", row.get("test_name")),
            ("time (UTC)", row.get("measurement_start_time")),
            ("country, network", f"{row.get('probe_cc')}, AS{row.get('probe_asn')} "
                                 f"{row.get('probe_network_name') or ''}"),
            ("verdict", f"{row.get('outcome')} / {row.get('method')}"),
            ("rule", row.get("rule_id")),
            ("why", row.get("explanation")),
            ("blockpage fingerprint", row.get("fingerprint") or "-"),
            ("SHA-256 of its bytes", view.sha256 or "-"),
            ("signature", signature),
            ("source", f"{row.get('source')} line {row.get('source_line')}"),
        ]  # fmt: skip
        table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
        body = (
            f"<h1>Measurement <code>{_e(msm_id)}</code></h1><table>{table}</table>"
            f'<p><a href="/measurements/{_e(msm_id)}.json" download>download the raw '
            "measurement (JSON, exactly as received)</a></p>"
            f"<h2>Raw measurement</h2><pre class=mono>{_e(pretty)}</pre>"
        )
        return _page(f"measurement {msm_id}", body)

    async def raw_measurement(msm_id: str) -> Response:
        view = await asyncio.to_thread(measurement_view, store, msm_id)
        if view is None or view.raw is None:
            return JSONResponse({"error": f"no measurement {msm_id!r} in this store"}, 404)
        return Response(
            view.raw,
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{msm_id}.json"'},
        )

    async def country_page(request: Request) -> Response:
        cc: str = request.path_params["cc"]
        if not (len(cc) == 2 and cc.isalpha() and cc.isupper()):
            return _not_found(f"{cc!r} is not a country code (two capital letters, e.g. PK)")
        statuses = await asyncio.to_thread(country_status, store, cc)
        if not statuses:
            return _not_found(f"no measurements from {cc} in this store")
        rows = "".join(
            f"<tr><td>{_e(s.platform)}</td><td>AS{s.asn}</td><td>{_e(s.name)}</td>"
            f"<td>{_e(s.state)}</td><td class=num>{s.measurements:,}</td>"
            f"<td>{s.last_hour:%Y-%m-%d %H:00}</td></tr>"
            for s in statuses
        )
        body = (
            f"<h1>{_e(cc)}: each platform on each network</h1>"
            "<p>Over each network's last 24 hours of data, counted in probe-hours (a probe "
            "counts once per hour). Hours without measurements count for nothing.</p>"
            "<table><tr><th>platform</th><th>network</th><th>name</th><th>status</th>"
            "<th class=num>measurements</th><th>last data (UTC)</th></tr>"
            f"{rows}</table>"
        )
        return _page(f"{cc}: platforms by network", body)

    async def api_events(request: Request) -> Response:
        return JSONResponse({"events": await asyncio.to_thread(load)})

    async def api_event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        try:
            await asyncio.to_thread(find_event, store, event_id)
            evidence = await asyncio.to_thread(gather, store, event_id)
        except (InputError, FileNotFoundError) as exc:
            return JSONResponse({"error": str(exc)}, 404)
        payload = dataclasses.asdict(evidence)
        payload["timeline"] = [
            {**dataclasses.asdict(h), "hour": h.hour.strftime("%Y-%m-%dT%H:00:00Z")}
            for h in evidence.timeline
        ]
        return JSONResponse(payload)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/events/{event_id}", event_page),
            Route("/countries/{cc}", country_page),
            Route("/measurements/{msm_id}", measurement_page),
            Route("/api/events", api_events),
            Route("/api/events/{event_id}", api_event),
        ]
    )
