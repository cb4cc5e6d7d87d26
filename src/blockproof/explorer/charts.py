"""Charts as inline SVG and HTML: stacked outcome bars, the per-network heatmap, and the
per-network compliance strip (blocked, clear, no data since a date).

Shared by the evidence reports (which must render offline, without scripts) and the
explorer's pages. A bucket without measurements is drawn as "no data" (a grey
stub, class ``nodata``), never as "ok"; every bar and heatmap cell carries its
counts and denominators in a tooltip (``<title>``), so the chart needs no script.
"""

from __future__ import annotations

from html import escape

from blockproof.explorer.compliance import BLOCKED, CLEAR, Compliance, Span, judge
from blockproof.explorer.compliance import NO_DATA as NO_DATA_STATE
from blockproof.explorer.timeline import Bucket, Timeline

COLOURS = {
    "ok": "#2e7d32",
    "anomaly": "#ef6c00",
    "confirmed": "#c62828",
    "down": "#78909c",  # down for everyone: no evidence either way
    "failure": "#bdbdbd",
}
NO_DATA = "#e0e0e0"


def _label(bucket: Bucket, granularity: str) -> str:
    return (
        f"{bucket.start:%Y-%m-%d %H:00} UTC"
        if granularity == "hour"
        else f"{bucket.start:%Y-%m-%d}"
    )


def legend() -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{name}</span>'
        for name, colour in COLOURS.items()
    )
    return f'<p class="legend">{items}<span><i style="background:{NO_DATA}"></i>no data</span></p>'


def bars_svg(
    buckets: list[Bucket],
    granularity: str = "hour",
    *,
    width: int = 900,
    height: int = 180,
    element_id: str = "",
) -> str:
    """Stacked bars (ok/anomaly/confirmed/failure) per bucket, with date ticks."""
    if not buckets:
        return "<p>No data for this platform and country.</p>"
    peak = max((b.total for b in buckets), default=0) or 1
    bar = width / len(buckets)
    ident = f' id="{escape(element_id)}"' if element_id else ""
    parts = [
        f'<svg{ident} xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 30}" '
        f'width="100%" role="img" aria-label="measurements per {granularity}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa"/>',
    ]
    for i, b in enumerate(buckets):
        x = i * bar
        w = max(bar - (1 if bar > 4 else 0), 0.5)
        when = _label(b, granularity)
        if b.total == 0:
            parts.append(
                f'<rect class="nodata" x="{x:.2f}" y="{height - 3}" width="{w:.2f}" height="3" '
                f'fill="{NO_DATA}"><title>{when}: no data</title></rect>'
            )
            continue
        y = float(height)
        title = escape(
            f"{when}: {b.total} measurements: {b.ok} ok, {b.anomaly} anomaly, "
            f"{b.confirmed} confirmed, {b.down} website down, {b.failure} failure; "
            f"{b.blocked_probes} of {b.blocked_probes + b.clear_probes} probe-hours blocked"
        )
        for key in COLOURS:
            count: int = getattr(b, key)
            if not count:
                continue
            h = count / peak * (height - 14)
            y -= h
            parts.append(
                f'<rect class="bar {key}" x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" '
                f'height="{h:.2f}" fill="{COLOURS[key]}"><title>{title}</title></rect>'
            )
    parts.extend(_ticks(buckets, granularity, bar, height))
    parts.append(
        f'<text x="2" y="10" font-size="10" font-family="sans-serif">'
        f"{peak:,} measurements per {granularity} at most</text></svg>"
    )
    return "".join(parts)


def _ticks(buckets: list[Bucket], granularity: str, bar: float, height: int) -> list[str]:
    """A tick at each day (hourly) or each week's Monday and month start (daily)."""
    out: list[str] = []
    days = len(buckets) / 24 if granularity == "hour" else len(buckets)
    label_every = max(1, round(days / 10))
    shown = 0
    for i, b in enumerate(buckets):
        if granularity == "hour" and b.start.hour != 0:
            continue
        x = i * bar
        out.append(
            f'<line x1="{x:.2f}" y1="{height}" x2="{x:.2f}" y2="{height + 5}" stroke="#555"/>'
        )
        if shown % label_every == 0:
            out.append(
                f'<text x="{x + 2:.2f}" y="{height + 18}" font-size="10" '
                f'font-family="sans-serif">{b.start:%m-%d}</text>'
            )
        shown += 1
    return out


def _shade(blocked: int, scored: int) -> str:
    """Green (reachable) to red (blocked) by the blocked share of scored probe-hours: red
    when the hour is blocked by the explorer's one judgement (``compliance.judge``: half
    or more), orange when some but fewer were, grey when none was judged."""
    state = judge(blocked, scored - blocked)
    if state == NO_DATA_STATE:
        return "#bdbdbd"
    red = (198, 40, 40) if state == BLOCKED else (46, 125, 50) if blocked == 0 else (239, 108, 0)
    return "#{:02x}{:02x}{:02x}".format(*red)


def heatmap_html(tl: Timeline) -> str:
    """One row per network, one cell per bucket: blocked share of its probe-hours."""
    if not tl.networks:
        return "<p>No network has data in this range.</p>"
    head = "".join(
        f'<th title="{_label(b, tl.granularity)}">'
        f"{(b.start.strftime('%d') if tl.granularity == 'day' else b.start.strftime('%H'))}</th>"
        for b in tl.buckets
    )
    rows = []
    for network in tl.networks:
        cells = []
        for slot, b in zip(tl.buckets, network.buckets, strict=True):
            when = _label(slot, tl.granularity)
            if b is None:
                cells.append(f'<td class="nodata" title="{when}: no data"></td>')
                continue
            scored = b.blocked_probes + b.clear_probes
            tip = escape(
                f"{when}: {b.blocked_probes} of {scored} probe-hours blocked; "
                f"{b.total} measurements ({b.blocked} blocked, {b.failure} failed)"
            )
            cells.append(
                f'<td class="cell" style="background:{_shade(b.blocked_probes, scored)}" '
                f'title="{tip}"></td>'
            )
        rows.append(
            f"<tr><th>AS{network.asn} {escape(network.name)}<br>"
            f'<span class="meta">{network.measurements:,} measurements</span></th>'
            f"{''.join(cells)}</tr>"
        )
    return (
        '<div class="heatmap-wrap"><table id="heatmap" class="heatmap">'
        f"<tr><th>network</th>{head}</tr>{''.join(rows)}</table></div>"
        '<p class="legend"><span><i style="background:#2e7d32"></i>no probe-hour blocked</span>'
        '<span><i style="background:#ef6c00"></i>under half blocked</span>'
        '<span><i style="background:#c62828"></i>half or more blocked</span>'
        '<span><i style="background:#bdbdbd"></i>only failures</span>'
        f'<span><i style="background:{NO_DATA}"></i>no data</span></p>'
    )


# -- compliance since a date -------------------------------------------------------------

STATE_COLOURS = {BLOCKED: "#c62828", CLEAR: "#2e7d32", NO_DATA_STATE: NO_DATA}
# heights as well as colours tell the states apart (in grey print, for colour-blind readers)
_STATE_HEIGHT = {BLOCKED: 1.0, CLEAR: 0.5, NO_DATA_STATE: 0.15}


def compliance_legend() -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{name}</span>'
        for name, colour in STATE_COLOURS.items()
    )
    return f'<p class="legend">{items}</p>'


def _span_label(span: Span, unit: str) -> str:
    if unit == "hour":
        return f"{span.start:%Y-%m-%d %H:00} UTC"
    if unit == "day":
        return f"{span.start:%Y-%m-%d}"
    return f"week from {span.start:%Y-%m-%d}"


def compliance_svg(view: Compliance, *, width: int = 900, element_id: str = "") -> str:
    """One row per network, one cell per hour, day or week of ``view``: blocked (tall,
    red), clear (half height, green), no data (a grey line), each with its counts in a
    tooltip. Its text equivalent is the networks' sentences and table beside it."""
    rows = [n for n in view.networks if n.strip]
    if not rows:
        return "<p>No data in this range.</p>"
    cells = len(rows[0].strip)
    step = width / cells
    row_height, bar = 34, 16
    ticks = 18
    height = row_height * len(rows) + ticks
    ident = f' id="{escape(element_id)}"' if element_id else ""
    caption = escape(
        f"Each network's state per {view.unit} since {view.since:%Y-%m-%d}: blocked (tall, "
        "red), clear (half height, green), no data (a grey line)"
    )
    parts = [
        f'<svg{ident} xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{caption}">'
    ]
    for r, network in enumerate(rows):
        top = r * row_height
        parts.append(
            f'<text x="0" y="{top + 11}" font-size="11" font-family="sans-serif">'
            f"{escape(network.label)}{'' if network.in_event else ' (not part of the event)'}: "
            f"{network.blocked_hours:,} of {network.measured_hours:,} measured hours blocked"
            "</text>"
        )
        base = top + 14 + bar
        for i, span in enumerate(network.strip):
            state = span.state
            h = bar * _STATE_HEIGHT[state]
            w = max(step - (1 if step > 4 else 0), 0.5)
            counts = (
                state
                if view.unit == "hour"
                else f"{state} ({span.blocked} of {span.measured} measured hours blocked, "
                f"{span.hours - span.measured} without data)"
            )
            tip = escape(f"AS{network.asn}, {_span_label(span, view.unit)}: {counts}")
            parts.append(
                f'<rect class="{state.replace(" ", "")}" x="{i * step:.2f}" y="{base - h:.2f}" '
                f'width="{w:.2f}" height="{h:.2f}" fill="{STATE_COLOURS[state]}">'
                f"<title>{tip}</title></rect>"
            )
    axis = row_height * len(rows) + 12
    shown = max(1, round(cells / 8))
    for i, span in enumerate(rows[0].strip):
        if i % shown == 0:
            label = f"{span.start:%m-%d %H:00}" if view.unit == "hour" else f"{span.start:%m-%d}"
            parts.append(
                f'<text x="{i * step:.2f}" y="{axis}" font-size="10" font-family="sans-serif">'
                f"{label}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
