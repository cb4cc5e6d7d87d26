"""Evidence reports: one self-contained, printable HTML page per event.

For a non-technical reader first (the summary sentence, a timeline chart, the
networks, with a date each network's compliance since then (``explorer.compliance``),
how the block works in plain words) and an expert second
(methodology and its limits, a sample of measurements with the SHA-256 of
their exact bytes and their signature status, and how to check them with
``blockproof verify``). No scripts, no external resources: the chart is inline
SVG, the style inline CSS, so the file renders offline and prints as it shows.
Every value taken from a measurement is HTML-escaped: measurements carry
hostile HTML (blockpages) by nature.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape
from typing import Any

from blockproof.explorer.charts import bars_svg, compliance_legend, compliance_svg, legend
from blockproof.explorer.compliance import long_date, stamp_hour
from blockproof.explorer.evidence import CONTEXT_HOURS, Evidence

CSS = """
body { font: 15px/1.5 Georgia, 'DejaVu Serif', serif; color: #1a1a1a; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
       border-bottom: 1px solid #ccc; }
.summary { font-size: 1.1rem; background: #f6f6f2; padding: .8rem 1rem; border-left: 4px solid
       #c62828; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .4rem; text-align: left;
       vertical-align: top; }
td.num, th.num { text-align: right; } code, .mono { font-family: 'DejaVu Sans Mono', monospace;
       font-size: .8rem; overflow-wrap: anywhere; }
.legend span { display: inline-block; margin-right: 1rem; } .legend i { display: inline-block;
       width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
.meta { color: #555; font-size: .85rem; }
ol.hashes code { font-size: .75rem; word-break: normal; white-space: nowrap; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
       tr { break-inside: avoid; } }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


escape_html = _e  # for the explorer's pages


def signature_text(status: str, key_id: str | None) -> str:
    """How a measurement's signature status reads on a page (not yet escaped)."""
    if status == "valid":
        return f"valid (probe key {key_id})"
    return status


def _when(text: str | None) -> str:
    if not text:
        return "ongoing"
    return f"{datetime.fromisoformat(text.replace('Z', '+00:00')):%Y-%m-%d %H:%M}"


def _networks(evidence: Evidence) -> str:
    rows = []
    for n in evidence.event.networks:
        share = (
            f"{n.blocked_probe_hours / n.scored_probe_hours:.0%}" if n.scored_probe_hours else "-"
        )
        restorations = ", ".join(f"{_when(a)}-{_when(b)[-5:]}" for a, b in n.restorations)
        rows.append(
            f"<tr><td>AS{_e(n.asn)}</td><td>{_e(n.name)}</td>"
            f"<td>{_e(_when(n.start))} (earliest {_e(_when(n.start_earliest))})</td>"
            f"<td>{_e(_when(n.end))}</td>"
            f"<td class=num>{_e(n.blocked_probe_hours)} / "
            f"{_e(n.scored_probe_hours)} ({share})</td>"
            f"<td>{_e(restorations) or '-'}</td></tr>"
        )
    return (
        "<table><tr><th>network</th><th>name</th><th>start (UTC)</th><th>end (UTC)</th>"
        "<th class=num>blocked / measured probe-hours</th><th>brief restorations</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _hour(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:00}"


UNIT_TEXT = {
    "hour": "one cell per hour",
    "day": "one cell per day, blocked when at least half of its measured hours were",
    "week": "one cell per week, blocked when at least half of its measured hours were",
}


def _compliance(evidence: Evidence) -> str:
    """The compliance section (``--since``, ``?since=``); nothing without a date."""
    view = evidence.compliance
    if view is None:
        return ""
    since = long_date(view.since)
    head = f'\n\n<h2 id="compliance">Compliance since {_e(since)}</h2>\n'
    if view.hours == 0:
        return (
            f"{head}<p>No measurement of {_e(evidence.platform_name)} in "
            f"{_e(evidence.event.country)} since {_e(since)}: the data end before it.</p>"
        )
    last = view.end - timedelta(hours=1)
    sentences = "".join(f"<li>{_e(n.sentence(view.since))}</li>" for n in view.networks)
    rows = "".join(
        f"<tr><td>AS{_e(n.asn)}</td><td>{_e(n.name)}</td><td>{'yes' if n.in_event else 'no'}</td>"
        f"<td class=num>{n.blocked_hours:,} / {n.measured_hours:,}</td>"
        f"<td class=num>{n.hours - n.measured_hours:,}</td>"
        f"<td>{_hour(n.first_clear)}</td><td class=num>{n.blocked_after_first_clear:,}</td>"
        f"<td>{_hour(n.last_blocked)}</td></tr>"
        for n in view.networks
    )
    return (
        f"{head}<p>Each network's state hour by hour from {_e(stamp_hour(view.start))} to "
        f"{_e(stamp_hour(last))} (the last hour with data): <b>blocked</b> when at least "
        "half of the hour's probes judged found the platform blocked, <b>clear</b> when "
        "fewer did, <b>no data</b> when no measurement could be judged. Hours without data "
        "are counted apart, never as clear; the first clear hour is the first hour judged "
        "clear, and the blocked hours after it say whether the block came back.</p>"
        f'<ul id="compliance-sentences">{sentences}</ul>'
        f"<p class=meta>{_e(UNIT_TEXT[view.unit])}.</p>{compliance_legend()}"
        f"{compliance_svg(view, element_id='compliance-strip')}"
        '<table id="compliance-table"><tr><th>network</th><th>name</th><th>in the event</th>'
        "<th class=num>blocked / measured hours</th><th class=num>hours without data</th>"
        "<th>first clear hour (UTC)</th><th class=num>blocked hours after it</th>"
        f"<th>last blocked hour (UTC)</th></tr>{rows}</table>"
    )


def _methods(evidence: Evidence) -> str:
    items = "".join(
        f"<li><b>{_e(m.method)}</b> ({m.share:.0%} of the blocked measurements, "
        f"{m.count:,}): {_e(m.meaning)}.</li>"
        for m in evidence.methods
    )
    return f"<ul>{items}</ul>" if items else "<p>No method recorded.</p>"


def inclusion_text(inclusion: str | None, receipt: dict[str, Any] | None) -> str:
    """How a measurement's place in a collector's log reads on a page (not yet escaped)."""
    if inclusion is None or receipt is None:
        return "no receipt (not uploaded through a blockproof collector)"
    if inclusion != "valid":
        return f"INVALID: {inclusion}"
    return (
        f"valid: leaf {receipt['leaf_index']} of a log of {receipt['tree_size']} "
        f"(log {str(receipt['log_id'])[:16]}...)"
    )


def _samples(evidence: Evidence, link: Callable[[str], str] | None) -> str:
    rows = []
    for s in evidence.samples:
        shown = _e(s.msm_id)
        if link is not None:
            shown = f'<a href="{_e(link(s.msm_id))}">{shown}</a>'
        signature = _e(signature_text(s.signature, s.key_id))
        rows.append(
            f"<tr><td class=mono>{shown}</td><td>{_e(s.measurement_start_time)}</td>"
            f"<td>AS{_e(s.probe_asn)}</td><td class=mono>{_e(s.input)}</td>"
            f"<td>{_e(s.outcome)} / {_e(s.method)}<br><span class=mono>{_e(s.rule_id)}</span>"
            f"<br>OONI counts: {_e(s.ooni_outcome or 'unknown')}"
            f"</td><td>{_e(s.explanation)}</td><td>{signature}</td>"
            f"<td>{_e(inclusion_text(s.inclusion, s.receipt))}</td></tr>"
        )
    if not rows:
        return "<p>No sample measurements are stored for this event.</p>"
    hashes = "".join(
        f"<li><code>{_e(s.msm_id)}</code><br><code>{_e(s.sha256) or 'source not kept'}</code></li>"
        for s in evidence.samples
    )
    checked = sorted({s.checked for s in evidence.samples})
    proofs = "".join(
        f"<li><code>{_e(s.msm_id)}</code>: leaf {_e(s.receipt['leaf_index'])}, leaf hash "
        f"<code>{_e(s.receipt['leaf_hash'])}</code>, in the tree of size "
        f"{_e(s.receipt['tree_size'])} with root <code>{_e(s.receipt['root_hash'])}</code> "
        f"of log <code>{_e(s.receipt['log_id'])}</code>; inclusion proof: "
        f"{len(s.receipt['inclusion_proof'])} hashes; {_e(inclusion_text(s.inclusion, s.receipt))}"
        "</li>"
        for s in evidence.samples
        if s.receipt and "leaf_index" in s.receipt
    )
    return (
        "<table><tr><th>measurement</th><th>time (UTC)</th><th>network</th><th>URL</th>"
        "<th>verdict / rule</th><th>why</th><th>signature</th><th>inclusion proof</th></tr>"
        + "".join(rows)
        + "</table><p>The SHA-256 of each sample measurement's bytes, as received "
        f"(hashes, signatures and proofs checked {_e(' and '.join(checked))}):</p>"
        + f'<ol class="hashes">{hashes}</ol>'
        + (
            "<p>Their places in the collector's transparency log (RFC 9162 Merkle tree; "
            f'each tree head signed by the collector):</p><ol class="hashes">{proofs}</ol>'
            if proofs
            else "<p>None of these measurements came with a collector's receipt (simulated "
            "and OONI measurements have none), so none has an inclusion proof.</p>"
        )
    )


def _context(evidence: Evidence) -> str:
    c = evidence.context
    if c is None:
        return ""
    return (
        "<p><b>Measured here.</b> In the "
        f"{CONTEXT_HOURS} hours before the event, {c.before_blocked:,} of "
        f"{c.before_measurements:,} measurements of this platform in this country looked "
        f"blocked ({c.rate(c.before_blocked, c.before_measurements)}): the rate at which "
        "the rules flag a reachable platform on these networks, its false positives included. "
        f"During the event: {c.during_blocked:,} of {c.during_measurements:,} "
        f"({c.rate(c.during_blocked, c.during_measurements)}). Coverage: "
        f"{c.event_hours_with_data:,} of the event's {c.event_hours:,} hours have measurements; "
        f"{c.networks_in_event} of the {c.networks_measured} networks measured in the window "
        "are part of the event.</p>"
    )


METHODOLOGY = """
<p>Each measurement is a <a href="https://github.com/ooni/spec">Web Connectivity</a> test:
the probe resolves the site's name, connects to its addresses, performs the TLS handshake
naming the site, and fetches the page, recording every step and its failure; a control
server outside the censorship does the same. Each measurement is judged by explicit rules
(rules version {rules}): OONI's Web Connectivity classification, recomputed, plus an
explicit TLS method; a verdict is <i>confirmed</i> only when the page or DNS answer matches
a known blockpage fingerprint of the OONI or Citizen Lab databases.</p>
<p>Measurements are grouped per platform, country, network and hour, counted in distinct
probes. An event starts where a change-point detector (Bernoulli likelihood-ratio CUSUM)
finds the share of blocked probes rising far above the network's own past, confirmed by a
binomial evidence floor; start and end are given with the interval in which they lie.
Hours without measurements are shown as "no data", never as accessible.</p>
<p><b>Limits.</b> A single measurement can be wrong: networks fail, sites go down, CDNs
answer differently in different places. The rules count a failure the control also saw as
the site being down, not as censorship, and an event needs many blocked probe-hours on
the same network. Coverage is limited to the networks and hours where probes ran; a
network absent from this report was not measured, not found free. Fingerprint matches
("confirmed") are the strongest evidence; other anomalies are strong in number, weaker
one by one.</p>
"""

VERIFY = """
<ol>
<li>Obtain the measurement files (the collector's export, or the probe's spool) and install
blockproof (<code>pip install blockproof</code>).</li>
<li>Check a measurement's bytes. A collector export holds one measurement per line of
<code>DAY_CC_TEST.jsonl.gz</code>, and its receipt on the same line of
<code>DAY_CC_TEST.receipts.jsonl.gz</code>; the hash is of the line without its newline:
<code>zcat DAY_CC_TEST.jsonl.gz | sed -n 'Np' | tr -d '\\n' | sha256sum</code> (N the
line number) must print the SHA-256 shown above for that measurement.</li>
<li>Check its signature and its place in the collector's transparency log: save the line
as <code>m.json</code> and the receipt's line as <code>m.receipt.json</code>, then
<code>blockproof verify m.json</code> prints VERIFIED when the probe's Ed25519 signature
covers exactly this content and the receipt's inclusion proof leads from the
measurement's leaf hash to a tree head signed by the collector (a measurement from the
probe's spool has its receipt beside it already). An unsigned measurement (simulated, or
an OONI probe's) is checked with <code>--allow-unsigned</code>.</li>
<li>Check that the log was never rewritten: save the collector's tree head now
(<code>blockproof collector head URL &gt; head.json</code>) and later run
<code>blockproof verify --consistency head.json newer-head.json --collector URL</code>.</li>
</ol>
"""


def render_html(evidence: Evidence, *, measurement_url: Callable[[str], str] | None = None) -> str:
    """The report page; ``measurement_url`` links sample ids (the explorer's pages)."""
    event = evidence.event
    title = (
        f"{evidence.platform_name} blocked in {event.country}"
        if event.kind != "outage"
        else f"Internet outage in {event.country}"
    )
    first, last = (
        (evidence.timeline[0].start, evidence.timeline[-1].start)
        if evidence.timeline
        else (None, None)
    )
    span = f"{first:%Y-%m-%d %H:00} to {last:%Y-%m-%d %H:00} UTC" if first and last else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}: evidence report {_e(event.id)}</title>
<style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="meta">Evidence report for event <code>{_e(event.id)}</code>, generated
{_e(evidence.generated)} by blockproof (rules version {_e(event.rules_version)}).</p>
<p class="summary">{_e(evidence.summary)}</p>

<h2>Timeline</h2>
<p>Measurements of {_e(evidence.platform_name)} in {_e(event.country)} per hour, all
networks, {_e(span)}: accessible (ok), blocked (anomaly), blocked and matched to a known
blockpage (confirmed), and failed measurements.</p>
{legend()}
{bars_svg(evidence.timeline, "hour", element_id="timeline")}

<h2>Networks</h2>
{_networks(evidence)}{_compliance(evidence)}

<h2>How it is blocked</h2>
{_methods(evidence)}

<h2>Sample measurements</h2>
<p>{len(evidence.samples)} of the event's measurements, the ones showing the block most
clearly (fingerprint matches first). Each can be checked independently (below).</p>
{_samples(evidence, measurement_url)}

<h2>Methodology and its limits</h2>
{METHODOLOGY.format(rules=_e(event.rules_version))}
{_context(evidence)}

<h2>How to verify this report</h2>
{VERIFY}
</body></html>
"""
