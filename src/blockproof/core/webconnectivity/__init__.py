"""The Web Connectivity classifier: observations in, OONI's verdict plus our own out.

Theory of operation (sans-IO: no sockets, no clock, no event loop)
------------------------------------------------------------------

``analyze`` reproduces the analysis of OONI Web Connectivity 0.5 ("LTE", its
"classic" engine) on a ``WebObservations`` and adds an explained verdict, in five
steps, each in its own module (the dependencies run one way, down this list):

``rules``
    The two tables, as data: OONI's decision rows (``OONI_ROWS``) and the rules
    of our verdict (``RULES``), each with its one-sentence template.
``observations``
    1-2. The records as OONI's "web observations" (one per resolved address or
    failed lookup, one per endpoint extended by its TLS handshake and HTTP round
    trip), cross-referenced with the control's view; the "classic" subset that
    Web Connectivity 0.4 measured; older data read as classic, depth 0.
``metrics``
    3. Valid and invalid lookups; expected, unexpected and unexplained failures;
    the final response against the control's page. From all observations, the
    extended flags (``x_blocking_flags``...); from the classic ones,
    ``dns_consistency`` and the v0.4 comparison keys.
``decision``
    4. The walk over the classic observations that picks the deciding one and
    its row of OONI's table (``blocking``/``accessible``), and our DNS view
    with its CDN guard.
``explain``
    5. Our verdict (``x_verdict``): the same decisive observation read with
    finer methods and three rules of our own that never change OONI's keys,
    and its explanation.

docs/classifier.md lists the rows, the rules and every known difference from
OONI's recorded values.
"""

from __future__ import annotations

from collections.abc import Callable

from blockproof.core.http import extract_title
from blockproof.core.webconnectivity.decision import apply_row, decide, walk_order
from blockproof.core.webconnectivity.explain import explained_verdict
from blockproof.core.webconnectivity.metrics import (
    BODY_PROPORTION_THRESHOLD,
    COMMON_HEADERS,
    TRANSPORT_HEADERS,
    HTTPDiff,
    asn_lookup,
    compute_metrics,
    dns_consistency,
    extended_flags,
)
from blockproof.core.webconnectivity.observations import (
    classic_subset,
    ingest,
    keeps_everything,
    url_hostname,
)
from blockproof.core.webconnectivity.rules import OONI_ROWS, RULES, RULES_BY_ID, OoniRow, Rule
from blockproof.model.verdict import WebConnectivityAnalysis
from blockproof.model.web import WebObservations

__all__ = [
    "BODY_PROPORTION_THRESHOLD",
    "COMMON_HEADERS",
    "OONI_ROWS",
    "RULES",
    "RULES_BY_ID",
    "TRANSPORT_HEADERS",
    "OoniRow",
    "Rule",
    "analyze",
    "extract_title",
    "url_hostname",
]


def analyze(
    obs: WebObservations, *, asn_of: Callable[[str], int] | None = None
) -> WebConnectivityAnalysis:
    """Classify one Web Connectivity measurement: OONI's keys plus our explained verdict.

    ``asn_of`` maps an IP address to its AS number (0 when unknown); without it
    the ASNs recorded in the DNS answers and in the control's ``ip_info`` are used.
    """
    asn = asn_lookup(obs, asn_of)
    full = ingest(obs)
    full_metrics = compute_metrics(full, asn)
    blocking_flags, dns_flags, null_null_flags = extended_flags(full_metrics)
    classic = classic_subset(full)
    # most often the classic subset is every observation: then its metrics are the same
    m = full_metrics if keeps_everything(classic, full) else compute_metrics(classic, asn)
    consistency = dns_consistency(m)
    diff = HTTPDiff.of(m)
    row, entry = decide(walk_order(classic), diff)
    blocking, accessible = apply_row(row, consistency == "inconsistent")
    http_failure = entry.failure if row is not None and row.sets_http_failure and entry else None
    return WebConnectivityAnalysis(
        blocking=blocking,
        accessible=accessible,
        dns_experiment_failure=m.dns_experiment_failure,
        dns_consistency=consistency,
        http_experiment_failure=http_failure or None,
        body_proportion=diff.body_proportion or 0.0,
        body_length_match=diff.body_length_match,
        headers_match=diff.headers_match,
        status_code_match=diff.status_code_match,
        title_match=diff.title_match,
        x_blocking_flags=blocking_flags,
        x_dns_flags=dns_flags,
        x_null_null_flags=null_null_flags,
        verdict=explained_verdict(obs, row, entry, classic, m, diff, consistency, asn),
    )
