"""One verdict per measurement, from rules kept as data.

Every verdict is ``(outcome, ooni_outcome, method, rule_id, explanation,
fingerprint)``:

* ``outcome`` is ours: ``ok``, ``anomaly`` (something looked like interference),
  ``confirmed`` (a blockpage or a DNS answer matched a known fingerprint of a
  censor), ``down`` (the site failed for the control too: no evidence either way,
  "website down") and ``failure`` (the measurement cannot tell: the control was
  unavailable, the test itself failed). Cells and the detector count ours; ``down``
  abstains there, like ``failure``.
* ``ooni_outcome`` is exactly what OONI's fastpath and Explorer/MAT count for the
  same measurement (``ok`` / ``anomaly`` / ``confirmed`` / ``failure``), from the
  keys its probe recorded, by OONI's rules, OONI's known false positives included
  (``fastpath.ooni_web_outcome``; the other tests: ``fastpath.score_test``). A
  researcher reconciles our counts with OONI's through it; docs/classifier.md lists
  where and why the two differ.
* ``rule_id`` is a stable id from one of three rule tables, each listed by
  ``rules()`` with its plain-language template:
  - ``wc.*``: the Web Connectivity classifier (``core.webconnectivity.RULES``),
    recomputed from the observations, never taken from the probe's own
    ``blocking`` key;
  - ``fp.*``: confirmation by the OONI / Citizen Lab fingerprint databases
    (``verdict.fingerprints``), by OONI's rule: national and ISP fingerprints
    confirm anywhere, product and institution ones only in their expected
    countries, known false positives never;
  - ``app.*``, ``tor.*``, ...: OONI fastpath-equivalent scoring of the other
    OONI tests (``verdict.fastpath``).
* ``RULES_VERSION`` is stored with every verdict; bump it whenever a rule, a
  template or the fingerprint data changes, so stored verdicts say which rules
  produced them and ``blockproof rejudge`` knows what is stale.

Sans-IO: takes a parsed measurement, returns a ``Judgement``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from blockproof.core.webconnectivity import RULES as WC_RULES
from blockproof.core.webconnectivity import analyze
from blockproof.model.verdict import (
    ABSTAINING,
    OONI_OUTCOMES,
    OUTCOMES,
    Method,
    WebConnectivityAnalysis,
)
from blockproof.model.web import WebObservations
from blockproof.verdict import fastpath
from blockproof.verdict.fingerprints import Fingerprint, FingerprintDB, confirms

__all__ = ["ABSTAINING", "OONI_OUTCOMES", "OUTCOMES", "Judgement", "judge_app", "judge_web"]

RULES_VERSION = "2026.12.07"


@dataclass(frozen=True, slots=True)
class Judgement:
    outcome: str  # ours: one of OUTCOMES
    method: str
    rule_id: str
    explanation: str
    fingerprint: str | None = None
    blocking: str | None = None  # OONI's ``blocking`` as recomputed, as a string
    ooni_outcome: str = field(kw_only=True)  # what OONI counts: one of OONI_OUTCOMES


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One row of the rule catalogue (``blockproof rules``)."""

    id: str
    outcome: str
    method: str
    template: str


# Confirmation rules: a fingerprint of a censor's artefact was found.
FP_DNS = RuleInfo(
    "fp.dns",
    "confirmed",
    Method.DNS.value,
    "{host} resolved to {answer}, an address known to serve a censor's blockpage"
    " ({fingerprint}, {source}, scope {scope}).",
)
FP_HTTP = RuleInfo(
    "fp.http",
    "confirmed",
    Method.HTTP_DIFF.value,
    "The page received for {url} matches the blockpage fingerprint {fingerprint}"
    " ({source}, scope {scope}, found in the {location}).",
)
WC_UNREADABLE = RuleInfo(
    "wc.unreadable",
    "failure",
    Method.UNDETERMINED.value,
    "The measurement's test keys could not be read ({error}).",
)
THROTTLED = RuleInfo(
    "x.throttling",
    "anomaly",
    Method.THROTTLING.value,
    "{host} loads, but at {target_kbps:.0f} kbit/s, {ratio:.1f}x slower than the same"
    " download from the same address with another name in the ClientHello ({rule}).",
)
UNKNOWN_TEST = RuleInfo(
    "test.unknown",
    "failure",
    Method.UNDETERMINED.value,
    "No rule judges the OONI test {test_name!r}; counted as a failure, not as ok.",
)

# Outcome of a Web Connectivity verdict method.
_WC_OUTCOME = {
    Method.NONE: "ok",
    Method.DOWN: "down",
    Method.UNDETERMINED: "failure",
}


def _wc_outcome(rule_id: str, method: Method) -> str:
    if rule_id == "wc.control.unavailable":
        return "failure"
    return _WC_OUTCOME.get(method, "anomaly")


def rules() -> list[RuleInfo]:
    """Every rule a verdict can carry, with its outcome, method and template."""
    out = [
        RuleInfo(r.id, _wc_outcome(r.id, r.method), r.method.value, r.template) for r in WC_RULES
    ]
    out += [FP_DNS, FP_HTTP, THROTTLED, WC_UNREADABLE, UNKNOWN_TEST]
    out += [RuleInfo(r.id, r.outcome, r.method, r.template) for r in fastpath.FASTPATH_RULES]
    return out


def _blocking_str(value: str | bool | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "false" if not value else "true"
    return value


@dataclass(frozen=True, slots=True)
class FingerprintHit:
    fingerprint: Fingerprint
    where: str  # "dns" or the URL of the response
    detail: str  # the DNS answer, or the location in the response


def find_fingerprints(
    obs: WebObservations, db: FingerprintDB | None = None
) -> list[FingerprintHit]:
    """Every fingerprint matched by the DNS answers and HTTP responses, in that order."""
    db = db or FingerprintDB.default()
    hits: list[FingerprintHit] = []
    for query in obs.queries:
        for answer in query.answers:  # query.addresses, without building the tuple
            address = answer.address
            if address:
                hits.extend(FingerprintHit(fp, "dns", address) for fp in db.match_dns((address,)))
    for tx in obs.requests:
        if tx.response is None:
            continue
        for fp in db.match_http(body=tx.response.body, headers=tx.response.headers_list):
            hits.append(FingerprintHit(fp, tx.request.url, fp.location))
    return hits


def judge_web(
    obs: WebObservations,
    *,
    probe_cc: str | None = None,
    analysis: WebConnectivityAnalysis | None = None,
    hits: Iterable[FingerprintHit] | None = None,
    throttling: Any = None,
    recorded: Mapping[str, Any] | None = None,
) -> Judgement:
    """The verdict of one Web Connectivity measurement.

    ``recorded`` is the measurement's ``test_keys`` as its probe wrote them: OONI
    counts from those (``ooni_outcome``); without them, from the keys recomputed here.

    ``probe_cc`` is the measurement's country: as in OONI's fastpath, a fingerprint of
    a filtering product or an institution confirms only where it is expected (its
    ``expected_countries``); national and ISP fingerprints confirm anywhere.
    ``throttling`` is the measurement's ``x_throttling`` (blockproof's throttling
    experiment): a page that loads but was found throttled is an anomaly by
    ``throttling``, not ok."""
    analysis = analysis or analyze(obs)
    found = list(find_fingerprints(obs) if hits is None else hits)
    blocking = _blocking_str(analysis.blocking)
    ooni_hits = [h.fingerprint for h in found if h.fingerprint.source == "ooni"]
    ooni = fastpath.ooni_web_outcome(
        _recomputed_keys(obs, analysis) if recorded is None else recorded,
        matched=bool(ooni_hits),
        confirmed=any(confirms(fp, probe_cc) for fp in ooni_hits),
    )
    for hit in found:
        fp = hit.fingerprint
        if not confirms(fp, probe_cc):
            continue
        host = obs.input.split("/")[2] if "://" in obs.input else obs.input
        fields = {
            "host": host,
            "answer": hit.detail,
            "url": hit.where,
            "fingerprint": fp.name,
            "source": fp.source,
            "scope": fp.scope,
            "location": fp.location,
        }
        rule = FP_DNS if hit.where == "dns" else FP_HTTP
        text = rule.template.format(**fields)
        return Judgement(
            "confirmed", rule.method, rule.id, text, fp.name, blocking, ooni_outcome=ooni
        )
    verdict = analysis.verdict
    if verdict is None:  # the classifier always explains itself; keep a safe default
        return Judgement(
            "failure", Method.UNDETERMINED.value, "wc.undetermined", "", None, blocking,
            ooni_outcome=ooni,
        )  # fmt: skip
    outcome = _wc_outcome(verdict.rule_id, verdict.method)
    if outcome == "ok" and isinstance(throttling, Mapping):
        throttled = _throttled(obs.input, throttling, blocking, ooni)
        if throttled is not None:
            return throttled
    return Judgement(
        outcome, verdict.method.value, verdict.rule_id, verdict.explanation, None, blocking,
        ooni_outcome=ooni,
    )  # fmt: skip


def _recomputed_keys(obs: WebObservations, analysis: WebConnectivityAnalysis) -> dict[str, Any]:
    """The keys OONI's count reads, as this analysis computes them."""
    return {
        "blocking": analysis.blocking,
        "accessible": analysis.accessible,
        "title_match": analysis.title_match,
        "dns_experiment_failure": analysis.dns_experiment_failure,
        "http_experiment_failure": analysis.http_experiment_failure,
        "control_failure": obs.control_failure,
    }


def _throttled(
    url: str, found: Mapping[str, Any], blocking: str | None, ooni: str
) -> Judgement | None:
    """The throttling verdict, when the experiment found the page throttled."""
    if found.get("verdict") != "throttled":
        return None
    try:
        fields = {
            "host": url.split("/")[2] if "://" in url else url,
            "target_kbps": float(found["target_kbps"]),
            "ratio": float(found["ratio"]),
            "rule": str(found.get("rule") or "throttled"),
        }
    except (KeyError, TypeError, ValueError):
        return None
    text = THROTTLED.template.format(**fields)
    return Judgement(
        THROTTLED.outcome, THROTTLED.method, THROTTLED.id, text, None, blocking, ooni_outcome=ooni
    )


def judge_app(measurement: Mapping[str, Any]) -> Judgement:
    """The verdict of any OONI test other than Web Connectivity."""
    scored = fastpath.score_test(measurement)
    if scored is None:
        name = str(measurement.get("test_name"))
        return Judgement(
            "failure",
            UNKNOWN_TEST.method,
            UNKNOWN_TEST.id,
            UNKNOWN_TEST.template.format(test_name=name),
            ooni_outcome="failure",
        )
    # the fastpath-equivalent scorers are OONI's rules: ours and OONI's count agree
    return Judgement(
        scored.outcome,
        scored.method,
        scored.rule_id,
        scored.explanation,
        ooni_outcome=scored.outcome,
    )


def unreadable(error: str) -> Judgement:
    """The verdict of a Web Connectivity measurement whose test keys cannot be read."""
    rule = WC_UNREADABLE
    text = rule.template.format(error=error[:200])
    return Judgement(rule.outcome, rule.method, rule.id, text, ooni_outcome="failure")
