"""The explorer (``blockproof serve explorer --store DIR``): read-only pages over a store.

====================================  ============================================
GET /                                 events, and a platform x country status board
GET /events/{id}                      the event's evidence report, linked to its
                                      measurements; ?since=YYYY-MM-DD adds each
                                      network's compliance from that date on
GET /countries/{cc}                   each platform on each network, with AS names
GET /countries/{cc}/{platform}        the platform in the country over time: stacked
                                      outcome bars per hour or day, "no data" gaps,
                                      a per-network heatmap (since, until, granularity)
GET /search                           aggregation like OONI's MAT (cc, asn, platform,
                                      domain, test, since, until, granularity, axis)
GET /measurements/{msm_id}            one measurement: verdict, rule, explanation,
                                      SHA-256, signature, steps as a waterfall with the
                                      control's view, bodies and raw JSON (escaped)
GET /measurements/{msm_id}.json       the measurement's bytes as received (download)
GET /measurements/{msm_id}.receipt.json  its collector receipt, when it came with one
GET /feeds/events.atom                blocks and restorations as Atom (?country=&platform=)
GET /api/...                          the JSON behind every page: /api/status,
                                      /api/events[/{id}], /api/countries/{cc}[/{platform}],
                                      /api/search (format=json|csv),
                                      /api/measurements/{msm_id}
====================================  ============================================

Theory of operation: the pages' data come from ``explorer.evidence``,
``explorer.timeline``, ``explorer.search`` and ``explorer.measurement`` (which read
the store: the analysis' cells and events, and only the partitions a page needs);
their HTML from ``explorer.pages``. Queries run in worker threads. Every answer
carries a Content-Security-Policy that forbids scripts, frames and outside
resources, on top of the escaping of every value from a measurement. Bad query
parameters answer 400 with a sentence; unknown ids 404. The store is only read.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blockproof.errors import InputError
from blockproof.explorer import pages
from blockproof.explorer.evidence import country_status, gather
from blockproof.explorer.measurement import measurement_view
from blockproof.explorer.report import render_html
from blockproof.explorer.search import aggregate, parse_query
from blockproof.explorer.timeline import parse_day, platform_name, timeline
from blockproof.pipeline.events import StoredEvent, read_events, resolve_event_id
from blockproof.pipeline.store import Store, StoreError
from blockproof.platforms import profiles

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _valid_cc(cc: str) -> bool:
    return len(cc) == 2 and cc.isascii() and cc.isalpha() and cc.isupper()


def create_app(store_dir: Path) -> ASGIApp:
    import duckdb  # noqa: F401  (imported now, not on the first request)
    import pyarrow.parquet  # noqa: F401

    store = Store(str(store_dir))
    names = {pid: p.name for pid, p in profiles().items()}

    def load() -> list[StoredEvent]:
        try:
            return read_events(store)
        except FileNotFoundError:
            return []

    def pairs() -> list[tuple[str, str]]:
        import pyarrow.parquet as pq

        if not store.cells_path.exists():
            return []
        cells = pq.read_table(store.cells_path, columns=["platform", "probe_cc"])
        unique = cells.group_by(["platform", "probe_cc"]).aggregate([])
        return sorted(
            zip(unique["platform"].to_pylist(), unique["probe_cc"].to_pylist(), strict=True)
        )

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status)

    def not_found(sentence: str) -> HTMLResponse:
        return html(pages.problem("Not found", sentence), 404)

    def bad_request(sentence: str) -> HTMLResponse:
        return html(pages.problem("Bad request", sentence), 400)

    def json_error(sentence: str, status: int) -> JSONResponse:
        return JSONResponse({"error": sentence}, status)

    # -- home ---------------------------------------------------------------------

    async def home(request: Request) -> Response:
        events, found = await asyncio.gather(asyncio.to_thread(load), asyncio.to_thread(pairs))
        return html(pages.home_html(events, found, names))

    async def api_status(request: Request) -> Response:
        events, found = await asyncio.gather(asyncio.to_thread(load), asyncio.to_thread(pairs))
        state = pages.board_states(events)
        return JSONResponse(
            {
                "board": [
                    {
                        "platform": p,
                        "country": c,
                        "status": pages.BOARD_TEXT[state.get((p, c), "clear")],
                    }
                    for p, c in found
                ],
                "events": [e.id for e in events],
            }
        )

    # -- events -------------------------------------------------------------------

    def merged_into(event_id: str) -> str | None:
        """The current id of an event merged into another since (links in alerts and
        reports keep working); None when ``event_id`` is current, unknown or vanished."""
        try:
            current = resolve_event_id(store, event_id)
        except (OSError, StoreError):
            return None
        return current if current not in (None, event_id) else None

    def moved_to(request: Request, path: str) -> Response:
        query = request.url.query
        return RedirectResponse(path + (f"?{query}" if query else ""), status_code=301)

    async def event_page(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        try:
            since = parse_day(request.query_params.get("since"), "since")
        except InputError as exc:
            return bad_request(str(exc))
        try:
            evidence = await asyncio.to_thread(gather, store, event_id, since=since)
        except InputError as exc:
            moved = await asyncio.to_thread(merged_into, event_id)
            if moved is not None:
                return moved_to(request, f"/events/{quote(moved)}")
            return not_found(str(exc))
        text = render_html(evidence, measurement_url=lambda msm_id: f"/measurements/{msm_id}")
        nav = (
            '<body><nav><a href="/">explorer</a> '
            f'<a href="/countries/{evidence.event.country}/{evidence.event.platform}">'
            "timeline</a></nav>"
        )
        return html(text.replace("<body>", nav, 1))

    async def api_events(request: Request) -> Response:
        events = await asyncio.to_thread(load)
        return JSONResponse({"events": [e.to_json() for e in events]})

    async def api_event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        try:
            since = parse_day(request.query_params.get("since"), "since")
        except InputError as exc:
            return json_error(str(exc), 400)
        try:
            evidence = await asyncio.to_thread(gather, store, event_id, since=since)
        except (InputError, FileNotFoundError) as exc:
            moved = await asyncio.to_thread(merged_into, event_id)
            if moved is not None:
                return moved_to(request, f"/api/events/{quote(moved)}")
            return json_error(str(exc), 404)
        payload = dataclasses.asdict(evidence)
        del payload["compliance"]  # only asked for with ?since=, and then as its own JSON
        if evidence.compliance is not None:
            payload["compliance"] = evidence.compliance.as_dict()
        payload["event"] = evidence.event.to_json()
        payload["timeline"] = [
            {**dataclasses.asdict(b), "start": b.start.strftime("%Y-%m-%dT%H:00:00Z")}
            for b in evidence.timeline
        ]
        return JSONResponse(payload)

    # -- countries ----------------------------------------------------------------

    async def country_page(request: Request) -> Response:
        cc: str = request.path_params["cc"]
        if not _valid_cc(cc):
            return not_found(f"{cc!r} is not a country code (two capital letters, e.g. PK)")
        statuses = await asyncio.to_thread(country_status, store, cc)
        if not statuses:
            return not_found(f"no measurements from {cc} in this store")
        return html(pages.country_html(cc, statuses, names))

    async def api_country(request: Request) -> Response:
        cc: str = request.path_params["cc"]
        if not _valid_cc(cc):
            return json_error(f"{cc!r} is not a country code (two capital letters)", 404)
        statuses = await asyncio.to_thread(country_status, store, cc)
        if not statuses:
            return json_error(f"no measurements from {cc} in this store", 404)
        return JSONResponse(
            {
                "country": cc,
                "networks": [
                    {
                        **dataclasses.asdict(s),
                        "state": s.state,
                        "last_hour": s.last_hour.strftime("%Y-%m-%dT%H:00:00Z"),
                    }
                    for s in statuses
                ],
            }
        )

    async def platform_timeline(request: Request) -> Any:
        cc: str = request.path_params["cc"]
        platform: str = request.path_params["platform"]
        if not _valid_cc(cc):
            raise LookupError(f"{cc!r} is not a country code (two capital letters, e.g. PK)")
        if platform != "*" and platform not in names:
            raise LookupError(f"{platform!r} is not a platform ({', '.join(sorted(names))})")
        q = request.query_params
        since = parse_day(q.get("since"), "since")
        until = parse_day(q.get("until"), "until")
        tl = await asyncio.to_thread(
            timeline, store, cc, platform, since=since, until=until,
            granularity=q.get("granularity") or "auto",
        )  # fmt: skip
        if tl.data_first is None:
            raise LookupError(f"no measurements of {platform_name(platform)} from {cc}")
        return tl

    async def timeline_page(request: Request) -> Response:
        try:
            tl = await platform_timeline(request)
        except LookupError as exc:
            return not_found(str(exc))
        except InputError as exc:
            return bad_request(str(exc))
        return html(pages.timeline_html(tl, dict(request.query_params)))

    async def api_timeline(request: Request) -> Response:
        try:
            tl = await platform_timeline(request)
        except LookupError as exc:
            return json_error(str(exc), 404)
        except InputError as exc:
            return json_error(str(exc), 400)
        return JSONResponse(tl.as_dict())

    # -- search -------------------------------------------------------------------

    async def search_page(request: Request) -> Response:
        try:
            query = parse_query(request.query_params)
        except InputError as exc:
            return html(pages.search_html(parse_query({}), None, str(exc)), 400)
        try:
            result = await asyncio.to_thread(aggregate, store, query)
        except InputError as exc:
            return html(pages.search_html(query, None, str(exc)), 400)
        return html(pages.search_html(query, result))

    async def api_search(request: Request) -> Response:
        fmt = request.query_params.get("format") or "json"
        if fmt not in ("json", "csv"):
            return json_error(f"format must be json or csv, not {fmt!r}", 400)
        try:
            result = await asyncio.to_thread(aggregate, store, parse_query(request.query_params))
        except InputError as exc:
            return json_error(str(exc), 400)
        if fmt == "csv":
            return Response(
                result.to_csv(),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": 'attachment; filename="blockproof-search.csv"'},
            )
        return JSONResponse(
            result.as_dict(),
            headers={"content-disposition": 'inline; filename="blockproof-search.json"'},
        )

    # -- measurements -------------------------------------------------------------

    async def measurement_page(request: Request) -> Response:
        msm_id: str = request.path_params["msm_id"]
        if msm_id.endswith(".receipt.json"):
            return await receipt(msm_id[: -len(".receipt.json")])
        if msm_id.endswith(".json"):
            return await raw_measurement(msm_id[: -len(".json")])
        view = await asyncio.to_thread(measurement_view, store, msm_id)
        if view is None:
            return not_found(f"no measurement {msm_id!r} in this store")
        return html(pages.measurement_html(msm_id, view))

    async def raw_measurement(msm_id: str) -> Response:
        view = await asyncio.to_thread(measurement_view, store, msm_id)
        if view is None or view.raw is None:
            return json_error(f"no measurement {msm_id!r} in this store", 404)
        return Response(
            view.raw,
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{msm_id}.json"'},
        )

    async def receipt(msm_id: str) -> Response:
        view = await asyncio.to_thread(measurement_view, store, msm_id)
        if view is None or not view.row.get("receipt"):
            return json_error(f"no collector receipt for {msm_id!r} in this store", 404)
        return Response(
            str(view.row["receipt"]).encode(),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{msm_id}.receipt.json"'},
        )

    async def api_measurement(request: Request) -> Response:
        msm_id: str = request.path_params["msm_id"]
        view = await asyncio.to_thread(measurement_view, store, msm_id)
        if view is None:
            return json_error(f"no measurement {msm_id!r} in this store", 404)
        return JSONResponse(
            {
                "measurement": {k: _plain(v) for k, v in view.row.items()},
                "sha256": view.sha256,
                "signature": view.signature,
                "key_id": view.key_id,
                "steps": [dataclasses.asdict(s) for s in view.steps],
                "raw_url": f"/measurements/{msm_id}.json",
            }
        )

    # -- feeds --------------------------------------------------------------------

    async def feed_page(request: Request) -> Response:
        """Onsets and resolutions as Atom (blockproof.alerts.feed), ?country=&platform=."""
        from blockproof.alerts.atom import ATOM_MEDIA_TYPE
        from blockproof.alerts.feed import events_feed, parse_feed_query

        try:
            query = parse_feed_query(request.query_params, names)
        except InputError as exc:
            return Response(f"Bad request: {exc}\n", 400, media_type="text/plain; charset=utf-8")
        events = await asyncio.to_thread(load)
        body = await asyncio.to_thread(
            events_feed, events, query, explorer_url=str(request.base_url).rstrip("/"),
            platforms=names, events_path=store.events_path,
        )  # fmt: skip
        return Response(body, media_type=ATOM_MEDIA_TYPE)

    def route(path: str, endpoint: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(path, endpoint, methods=["GET", "HEAD"])

    app = Starlette(
        routes=[
            route("/", home),
            route("/events/{event_id}", event_page),
            route("/countries/{cc}", country_page),
            route("/countries/{cc}/{platform}", timeline_page),
            route("/search", search_page),
            route("/measurements/{msm_id}", measurement_page),
            route("/api/status", api_status),
            route("/api/events", api_events),
            route("/api/events/{event_id}", api_event),
            route("/api/countries/{cc}", api_country),
            route("/api/countries/{cc}/{platform}", api_timeline),
            route("/api/search", api_search),
            route("/api/measurements/{msm_id}", api_measurement),
            route("/feeds/events.atom", feed_page),
        ]
    )
    return SecurityHeaders(app)


def _plain(value: Any) -> Any:
    """A table value as JSON can carry it (times as ISO strings)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
