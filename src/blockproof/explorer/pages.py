"""The explorer's pages as HTML: pure functions from the explorer's data to strings.

Server-rendered; the charts are inline SVG with tooltips, so no page needs a
script. Every value that comes from a measurement (network names, URLs, bodies,
failures, explanations) goes through ``escape_html``: measurements carry hostile
HTML by design (blockpages). Filters are plain GET forms, so every page state is
a URL that can be shared, and every page links to the JSON behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

from blockproof.explorer.charts import bars_svg, heatmap_html, legend
from blockproof.explorer.evidence import NetworkStatus, receipt_summary
from blockproof.explorer.measurement import MeasurementView, Step
from blockproof.explorer.report import CSS, inclusion_text, signature_text
from blockproof.explorer.report import escape_html as _e
from blockproof.explorer.search import AXES, COLUMNS, Query, Result
from blockproof.explorer.timeline import GRANULARITIES, Timeline
from blockproof.pipeline.events import StoredEvent

PAGE_CSS = """
body { max-width: 72rem; }
nav { margin-bottom: 1rem; font-family: sans-serif; font-size: .9rem; }
nav a { margin-right: 1rem; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end;
       background: #f6f6f2; padding: .6rem .8rem; font-family: sans-serif; font-size: .85rem; }
form.filters label { display: flex; flex-direction: column; }
form.filters input, form.filters select { font: inherit; padding: .15rem .3rem; }
.heatmap-wrap { overflow-x: auto; } table.heatmap { width: auto; border-collapse: separate;
       border-spacing: 1px; } table.heatmap td { min-width: 10px; height: 18px; padding: 0; }
table.heatmap td.nodata { background: #f0f0f0; } table.heatmap th { font-size: .7rem;
       font-weight: normal; white-space: nowrap; padding: 0 .2rem; }
.board td.blocked { background: #fbe3e3; } .board td.was { background: #fff1e0; }
.board td.clear { background: #eef7ee; }
.waterfall .step { display: grid; grid-template-columns: 3rem 1fr 14rem; gap: .5rem;
       border-bottom: 1px solid #eee; padding: .3rem 0; font-size: .85rem; }
.waterfall .step.failed { background: #fdecec; } .waterfall .kind { font-weight: bold;
       text-transform: uppercase; font-family: sans-serif; }
.waterfall .track { position: relative; height: 8px; background: #f3f3f3; margin-top: .2rem; }
.waterfall .span { position: absolute; top: 0; height: 8px; background: #1565c0; min-width: 2px; }
.waterfall .failed .span { background: #c62828; }
.waterfall .control { color: #444; }
pre.mono { white-space: pre-wrap; overflow-wrap: anywhere; }
pre.body { max-height: 24rem; overflow: auto; background: #f8f8f8; padding: .5rem;
       white-space: pre-wrap; overflow-wrap: anywhere; }
"""

OUTCOME_TEXT = (
    "ok: the platform answered as it does from outside; anomaly: it did not, in a way "
    "that points to blocking; confirmed: a known blockpage or DNS fingerprint of a censor "
    "was found; down: the site failed for the uncensored control too (website down, no "
    "evidence either way; OONI counts it as ok); failure: the measurement itself failed, "
    "which says nothing either way."
)
COUNT_LABELS = {
    "auto": "OONI's for OONI's data, ours for ours",
    "ooni": "as OONI counts (Explorer, MAT)",
    "ours": "ours (website down apart)",
}


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}{PAGE_CSS}</style></head><body>"
        '<nav><a href="/">blockproof explorer</a><a href="/search">search</a>'
        '<a href="/api/status">API</a></nav>'
        f"{body}</body></html>"
    )


def problem(title: str, sentence: str) -> str:
    return page(title, f"<h1>{_e(title)}</h1><p>{_e(sentence)}</p>")


def _url(path: str, params: Mapping[str, str]) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{query}" if query else path


def _options(values: Iterable[str], chosen: str, labels: Mapping[str, str] | None = None) -> str:
    return "".join(
        f'<option value="{_e(v)}"{" selected" if v == chosen else ""}>'
        f"{_e((labels or {}).get(v, v))}</option>"
        for v in values
    )


# -- home ---------------------------------------------------------------------------

BOARD_TEXT = {"blocked": "blocked now", "was": "was blocked", "clear": "no block found"}


def board_states(events: list[StoredEvent]) -> dict[tuple[str, str], str]:
    """(platform, country) -> "blocked" (an ongoing block) or "was" (only ended ones);
    pairs without a platform block are absent ("clear")."""
    state: dict[tuple[str, str], str] = {}
    for e in events:
        if e.kind == "platform_block":
            key = (e.platform, e.country)
            state[key] = "blocked" if e.end is None else state.get(key, "was")
    return state


def home_html(
    events: list[StoredEvent], pairs: list[tuple[str, str]], names: Mapping[str, str]
) -> str:
    rows = "".join(
        f'<tr><td><a href="/events/{_e(e.id)}">{_e(e.id[:12])}</a></td>'
        f"<td>{_e(e.kind.replace('_', ' '))}</td>"
        f"<td>{_e(names.get(e.platform, e.platform))}</td>"
        f'<td><a href="/countries/{_e(e.country)}">{_e(e.country)}</a></td>'
        f"<td>{_e(e.start)}</td><td>{_e(e.end or 'ongoing')}</td>"
        f"<td class=num>{len(e.networks)}</td><td class=num>{e.n_measurements:,}</td>"
        f"<td class=num>{e.n_probes:,}</td><td>{_e(e.confidence)}</td></tr>"
        for e in sorted(events, key=lambda e: (e.end is not None, e.start), reverse=False)
    )
    events_html = (
        '<table id="events"><tr><th>event</th><th>kind</th><th>platform</th><th>country</th>'
        "<th>start (UTC)</th><th>end (UTC)</th><th class=num>networks</th>"
        "<th class=num>measurements</th><th class=num>probes</th><th>confidence</th></tr>"
        f"{rows}</table>"
        if events
        else "<p>No events: run <code>blockproof analyze</code> on the store.</p>"
    )
    state = board_states(events)
    platforms = sorted({p for p, _ in pairs})
    countries = sorted({c for _, c in pairs})
    have = set(pairs)
    text = BOARD_TEXT
    board_rows = []
    for platform in platforms:
        cells = []
        for cc in countries:
            if (platform, cc) not in have:
                cells.append("<td class=meta>no data</td>")
                continue
            status = state.get((platform, cc), "clear")
            cells.append(
                f'<td class="{status}"><a href="/countries/{_e(cc)}/{_e(platform)}">'
                f"{text[status]}</a></td>"
            )
        board_rows.append(f"<tr><th>{_e(names.get(platform, platform))}</th>{''.join(cells)}</tr>")
    board = (
        '<table id="board" class="board"><tr><th>platform</th>'
        + "".join(f'<th><a href="/countries/{_e(c)}">{_e(c)}</a></th>' for c in countries)
        + f"</tr>{''.join(board_rows)}</table>"
        if pairs
        else "<p>No measurements analysed yet.</p>"
    )
    return page(
        "blockproof explorer",
        "<h1>Events</h1><p>Blocks detected in the measurements: where, since when, how, "
        "and on how much evidence. Ongoing events first.</p>"
        f"{events_html}<h2>Platform by country</h2><p>Each platform in each country, "
        "from the detected events; each cell opens its timeline.</p>"
        f"{board}",
    )


# -- country ------------------------------------------------------------------------


def country_html(cc: str, statuses: list[NetworkStatus], names: Mapping[str, str]) -> str:
    rows = "".join(
        f'<tr><td><a href="/countries/{_e(cc)}/{_e(s.platform)}">'
        f"{_e(names.get(s.platform, s.platform))}</a></td><td>AS{s.asn}</td><td>{_e(s.name)}</td>"
        f"<td>{_e(s.state)}</td><td class=num>{s.measurements:,}</td>"
        f"<td>{s.last_hour:%Y-%m-%d %H:00}</td></tr>"
        for s in statuses
    )
    return page(
        f"{cc}: platforms by network",
        f"<h1>{_e(cc)}: each platform on each network</h1>"
        "<p>Over each network's last 24 hours of data, counted in probe-hours (a probe "
        "counts once per hour). Hours without measurements count for nothing.</p>"
        '<table id="networks"><tr><th>platform</th><th>network</th><th>name</th><th>status</th>'
        "<th class=num>measurements</th><th>last data (UTC)</th></tr>"
        f"{rows}</table>"
        f'<p><a href="/api/countries/{_e(cc)}">JSON</a></p>',
    )


# -- platform in country --------------------------------------------------------------


def timeline_html(tl: Timeline, asked: Mapping[str, str]) -> str:
    path = f"/countries/{quote(tl.cc)}/{quote(tl.platform)}"
    since = asked.get("since") or f"{tl.since:%Y-%m-%d}"
    until = asked.get("until") or f"{tl.until:%Y-%m-%d}"
    form = (
        f'<form id="filters" class="filters" method="get" action="{_e(path)}">'
        f'<label>from <input type="date" name="since" value="{_e(since)}"></label>'
        f'<label>to <input type="date" name="until" value="{_e(until)}"></label>'
        '<label>granularity <select name="granularity">'
        f"{_options(GRANULARITIES, asked.get('granularity') or 'auto')}</select></label>"
        '<button type="submit">Apply</button></form>'
    )
    b = tl.buckets
    blocked = sum(x.blocked for x in b)
    scored_ph = sum(x.blocked_probes + x.clear_probes for x in b)
    blocked_ph = sum(x.blocked_probes for x in b)
    empty = sum(1 for x in b if x.total == 0)
    span = (
        f"Data from {tl.data_first:%Y-%m-%d %H:00} to {tl.data_last:%Y-%m-%d %H:00} UTC."
        if tl.data_first and tl.data_last
        else "No data for this platform in this country."
    )
    share = f"{blocked_ph / scored_ph:.0%}" if scored_ph else "no"
    summary = (
        f"<p class=summary>{tl.measurements:,} measurements of {_e(tl.platform_name)} in "
        f"{_e(tl.cc)} from {tl.since:%Y-%m-%d %H:00} to {tl.until:%Y-%m-%d %H:00} UTC: "
        f"{blocked:,} showing a block; {blocked_ph:,} of {scored_ph:,} probe-hours "
        f"({share}) blocked; {empty} of {len(b)} {tl.granularity}s without data.</p>"
    )
    json_url = _url(f"/api/countries/{quote(tl.cc)}/{quote(tl.platform)}", asked)
    return page(
        f"{tl.platform_name} in {tl.cc}",
        f"<h1>{_e(tl.platform_name)} in {_e(tl.cc)}</h1><p class=meta>{span} "
        f'<a href="/countries/{_e(tl.cc)}">all platforms in {_e(tl.cc)}</a></p>'
        f"{form}{summary}<h2>Measurements per {tl.granularity}</h2>{legend()}"
        f"{bars_svg(tl.buckets, tl.granularity, element_id='timeline')}"
        f"<p class=meta>{_e(OUTCOME_TEXT)}</p>"
        f"<h2>Networks</h2><p>Each cell: the share of probe-hours judged blocked, "
        f"out of those judged at all (hover for the counts).</p>{heatmap_html(tl)}"
        f'<p><a id="export-json" href="{_e(json_url)}" download>JSON of this page</a></p>',
    )


# -- search -------------------------------------------------------------------------


def search_html(query: Query, result: Result | None, error: str = "") -> str:
    asked = query.params()
    axis_labels = {"none": "time only", "cc": "country", "asn": "network", "platform":
                   "platform", "domain": "domain", "test": "test"}  # fmt: skip
    fields = "".join(
        f'<label>{label} <input name="{name}" value="{_e(asked.get(name, ""))}" '
        f'placeholder="{placeholder}" size="{size}"></label>'
        for name, label, placeholder, size in (
            ("cc", "country", "PK", 3),
            ("asn", "network", "AS17557", 9),
            ("platform", "platform", "x", 10),
            ("domain", "domain", "x.com", 14),
            ("test", "test", "web_connectivity", 16),
        )
    )
    form = (
        '<form id="filters" class="filters" method="get" action="/search">'
        f"{fields}"
        f'<label>from <input type="date" name="since" value="{_e(asked.get("since", ""))}">'
        "</label>"
        f'<label>to <input type="date" name="until" value="{_e(asked.get("until", ""))}">'
        "</label>"
        '<label>granularity <select name="granularity">'
        f"{_options(GRANULARITIES, query.granularity)}</select></label>"
        '<label>rows by <select name="axis">'
        f"{_options(AXES, query.axis, axis_labels)}</select></label>"
        '<label>outcomes <select name="count">'
        f"{_options(COUNT_LABELS, query.count, COUNT_LABELS)}</select></label>"
        '<button type="submit">Apply</button></form>'
    )
    if error:
        return page("search", f"<h1>Search</h1>{form}<p class=summary>{_e(error)}</p>")
    assert result is not None
    totals = result.totals()
    csv_url = _url("/api/search", {**asked, "format": "csv"})
    json_url = _url("/api/search", {**asked, "format": "json"})
    head = "".join(
        f"<th{' class=num' if i > 1 else ''}>{_e(c)}</th>" for i, c in enumerate(COLUMNS)
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td class=num>{v:,}</td>" if isinstance(v, int) else f"<td>{_e(v)}</td>" for v in row
        )
        + "</tr>"
        for row in result.rows
    )
    note = (
        f"<p class=meta>Only the first {len(result.rows):,} rows are shown and exported; "
        "narrow the query.</p>"
        if result.truncated
        else ""
    )
    body = (
        f"<h1>Search</h1>{form}"
        f"<p class=summary>{totals['measurements']:,} measurements from "
        f"{result.since} to {result.until} (per {result.granularity}): {totals['ok']:,} ok, "
        f"{totals['anomaly']:,} anomaly, {totals['confirmed']:,} confirmed, "
        f"{totals['down']:,} website down, {totals['failure']:,} failure "
        f"(outcomes {_e(COUNT_LABELS[query.count])}).</p>"
        f'<p><a id="export-csv" href="{_e(csv_url)}" download>CSV</a> · '
        f'<a id="export-json" href="{_e(json_url)}" download>JSON</a></p>{note}'
        f'<table id="results"><tr>{head}</tr>{rows}</table>'
        f'<p class=meta>{_e(OUTCOME_TEXT)} "probes" counts distinct probes in the row.</p>'
    )
    return page("search", body)


# -- measurement --------------------------------------------------------------------


def _waterfall(steps: list[Step]) -> str:
    if not steps:
        return "<p>No network steps recorded (this test keeps none, or they were empty).</p>"
    end = max((s.t or s.t0 or 0.0) for s in steps) or 1.0
    rows = []
    for s in steps:
        t0 = s.t0 or 0.0
        t = s.t if s.t is not None else t0
        left = min(t0 / end * 100, 100)
        width = max(min((t - t0) / end * 100, 100 - left), 0.3)
        timing = f"{t0 * 1000:.0f}-{t * 1000:.0f} ms" if s.t0 is not None else "time not kept"
        rows.append(
            f'<div class="step {s.kind}{" failed" if s.failed else ""}">'
            f'<div class="kind">{_e(s.kind)}</div>'
            f"<div><div>{_e(s.what)}: <b>{_e(s.result)}</b> <span class=meta>{timing}</span></div>"
            f'<div class="track"><div class="span" style="left:{left:.2f}%;width:{width:.2f}%">'
            "</div></div></div>"
            f'<div class="control">{_e(s.control)}</div></div>'
        )
    return (
        '<section id="waterfall" class="waterfall"><h2>Steps</h2>'
        "<p class=meta>Each operation as the probe saw it (time since the measurement "
        "began; failures in red) and, on the right, what the uncensored control saw for "
        f"the same operation.</p>{''.join(rows)}</section>"
    )


def _bodies(raw: bytes | None) -> list[tuple[str, str]]:
    """(request URL, response body as text) of a Web Connectivity measurement's requests."""
    if raw is None:
        return []
    try:
        data = json.loads(raw)
        requests = data["test_keys"]["requests"] or []
    except (ValueError, KeyError, TypeError):
        return []
    out = []
    for request in requests if isinstance(requests, list) else []:
        try:
            body = request["response"]["body"]
            url = str(request["request"]["url"])
        except (KeyError, TypeError):
            continue
        if isinstance(body, dict):
            body = f"({body.get('format', 'encoded')} body, {len(str(body.get('data', '')))} "
            body += "characters, not shown)"
        if isinstance(body, str) and body:
            out.append((url, body[:65_536]))
    return out


def measurement_html(msm_id: str, view: MeasurementView) -> str:
    row = view.row
    receipt = receipt_summary(row.get("receipt"))
    pretty = "(the source file is not in the store)"
    if view.raw is not None:
        try:
            pretty = json.dumps(json.loads(view.raw), indent=2, ensure_ascii=False)
        except ValueError:
            pretty = view.raw.decode("utf-8", "replace")
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
        ("signature", signature_text(view.signature, view.key_id)),
        ("inclusion proof", inclusion_text(row.get("inclusion"), receipt)),
        ("source", f"{row.get('source')} line {row.get('source_line')}"),
    ]  # fmt: skip
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    bodies = "".join(
        f"<h3>{_e(url)}</h3><pre class=body>{_e(body)}</pre>" for url, body in _bodies(view.raw)
    )
    return page(
        f"measurement {msm_id}",
        f"<h1>Measurement <code>{_e(msm_id)}</code></h1>"
        f'<table id="facts">{table}</table>'
        f'<p><a id="download-raw" href="/measurements/{_e(quote(msm_id))}.json" download>'
        "download the raw measurement (JSON, exactly as received)</a> · "
        + (
            f'<a id="download-receipt" href="/measurements/{_e(quote(msm_id))}.receipt.json" '
            "download>its collector receipt</a> · "
            if receipt
            else ""
        )
        + f'<a href="/api/measurements/{_e(quote(msm_id))}">JSON summary</a></p>'
        f"{_waterfall(view.steps)}"
        + (
            "<h2>Response bodies</h2><p class=meta>As received, shown as text: a blockpage's "
            f"HTML is displayed, never run.</p>{bodies}"
            if bodies
            else ""
        )
        + f"<h2>Raw measurement</h2><pre class=mono>{_e(pretty)}</pre>",
    )
