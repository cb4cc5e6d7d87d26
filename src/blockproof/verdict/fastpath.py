"""OONI fastpath-equivalent verdicts for the OONI tests other than Web Connectivity.

Theory of operation
===================

OONI's fastpath (ooni/backend ``fastpath/fastpath/core.py``, ``score_measurement``)
gives every measurement two numbers: ``blocking_general`` (how much it looks like
blocking) and ``accuracy`` (whether the measurement can be trusted). The
measurement is stored as an *anomaly* when ``blocking_general > 0.5`` and as a
*failure* when ``accuracy < 0.5``; OONI's aggregations (MAT, Explorer) count a
failure as a failure whatever else it says. ``score_test`` gives the same
three-way outcome (``ok`` / ``anomaly`` / ``failure``) from the same test keys, by
the same criteria, test by test (what each test measures is in ooni/spec
``nettests/``):

* **whatsapp**: the web app (``https://web.whatsapp.com/``) and the registration
  server (``https://v.whatsapp.net/v2/register``) requests must not fail, and at
  least one TCP endpoint must connect. The probe's own ``*_status`` keys are not
  used (OONI ignores them: probe bugs). A request missing, no endpoint tried or an
  ``unknown_failure``: failure.
* **telegram**: score = share of unreachable data-centre endpoints + share of failed
  HTTP requests to them (0.5 each when none was tried) + 1 when web.telegram.org
  is ``blocked``; anomaly above 0.5. A request without a URL: failure.
* **facebook_messenger**: 0.5 per inconsistent DNS answer or unreachable service and
  per ``*_blocking`` flag; anomaly above 0.5 (so two problems at least).
* **signal**: ``signal_backend_status`` ``blocked`` is an anomaly, ``ok`` is ok; test
  versions with a known probe bug (0.2.4; <= 0.2.3 from 2023-11-07; < 0.2.2 from
  2022-10-19; engine < 3.17.2 from 2023-05-02) and measurements reporting a
  test-level failure are failures.
* **tor**: anomaly when more than half of the targets that ran failed.
  **vanilla_tor**: anomaly unless Tor bootstrapped to 100%. **torsf**: anomaly when
  it records a failure; ooniprobe-android 3.8.3 is a known bad probe (failure).
  **psiphon**, **openvpn**: anomaly when the tunnel failed.
* **meek_fronted_requests_test**: anomaly when a request got no answer or not HTTP 200,
  or (0.5 each) more than one answer came from a server other than the CDN's.
* **http_header_field_manipulation**: anomaly when the headers the echo server saw
  differ from those sent (``Connection: close`` aside) or its answer is missing or
  not the expected JSON; no answer at all is a failure. **http_invalid_request_line**:
  anomaly when a request line came back different (the probe's ``tampering`` flag is
  ignored, as OONI does: probe bug). Both say *a middlebox*, not *blocking*.
* **http_requests** (legacy): anomaly when the body length or headers differ from
  the fetch over Tor, or when the page matches a confirming blockpage fingerprint
  (OONI's *confirmed*; see ``verdict.fingerprints``); no comparison is a failure.
* **stunreachability**, **tcp_connect**, **browser_web** (result ``error``): anomaly on
  a failure. **dash**: any failure is a failure of the test.
* Not scored by OONI: **riseupvpn** (since 2023-10, unreliable), **dns_consistency**
  (legacy) and **ndt** give ``ok`` with method ``undetermined``, as OONI counts them;
  **dnscheck** and **urlgetter** have no scorer in OONI's fastpath, which counts them
  as failures, and so does this module.

Deviations, all towards *failure* on bad input: missing, null, non-object or empty
``test_keys`` are a failure (``test.no-keys``) for every test (OONI scores an empty
STUN or Snowflake measurement as ok), and an input OONI's code would crash on (it
then drops the measurement) is a failure (``test.malformed``). A header name is
matched without regard to case. OONI also discards measurements from country
``ZZ`` or ``AS0``; that filter is the pipeline's, not this module's.

Rules are data: every verdict carries exactly one rule of ``FASTPATH_RULES``, whose
``template`` is filled (``str.format``) from the measurement. Sans-IO, never raises.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OUTCOMES = ("ok", "anomaly", "failure")
METHODS = (
    "none",
    "dns",
    "tcp_ip",
    "tls",
    "http",
    "middlebox",
    "bootstrap",
    "down",
    "undetermined",
)
_MAX_DETAIL = 120


@dataclass(frozen=True, slots=True)
class FastpathRule:
    id: str
    tests: tuple[str, ...]  # the OONI test_name(s) the rule judges; () for any
    outcome: str  # ok | anomaly | failure
    method: str  # one of METHODS
    template: str  # one plain-language sentence, str.format fields from the measurement


@dataclass(frozen=True, slots=True)
class TestVerdict:
    __test__ = False  # not a pytest test class

    outcome: str  # "ok" | "anomaly" | "failure"
    method: str
    rule_id: str
    explanation: str


def _rule(rule_id: str, tests: str, outcome: str, method: str, template: str) -> FastpathRule:
    return FastpathRule(rule_id, tuple(tests.split()), outcome, method, template)


R = _rule
FASTPATH_RULES: tuple[FastpathRule, ...] = (
    # any test
    R("test.no-keys", "", "failure", "undetermined",
      "The {test_name} measurement has no test keys to judge."),
    R("test.malformed", "", "failure", "undetermined",
      "The {test_name} measurement's test keys are malformed ({error}), so it cannot be"
      " judged."),
    # WhatsApp
    R("app.whatsapp.ok", "whatsapp", "ok", "none",
      "WhatsApp's web app and registration server answered, and {reached} of {endpoints}"
      " WhatsApp endpoints accepted a connection."),
    R("app.whatsapp.registration-blocked", "whatsapp", "anomaly", "undetermined",
      "WhatsApp's registration server (v.whatsapp.net) could not be reached: {failure}."),
    R("app.whatsapp.web-blocked", "whatsapp", "anomaly", "undetermined",
      "WhatsApp's web app (web.whatsapp.com) could not be reached: {failure}."),
    R("app.whatsapp.endpoints-blocked", "whatsapp", "anomaly", "tcp_ip",
      "None of the {endpoints} WhatsApp endpoints tried accepted a TCP connection."),
    R("app.whatsapp.incomplete", "whatsapp", "failure", "undetermined",
      "The WhatsApp measurement is incomplete ({what}), so it cannot tell."),
    R("app.whatsapp.probe-error", "whatsapp", "failure", "undetermined",
      "The WhatsApp measurement hit an error of the probe itself ({failure}), so it"
      " cannot tell."),
    # Telegram
    R("app.telegram.ok", "telegram", "ok", "none",
      "Telegram was reachable: {unreachable} of {endpoints} data-centre endpoints"
      " unreachable, {http_failed} of {http_total} HTTP requests to them failed."),
    R("app.telegram.blocked", "telegram", "anomaly", "tcp_ip",
      "Telegram looked blocked: {unreachable} of {endpoints} data-centre endpoints"
      " unreachable, {http_failed} of {http_total} HTTP requests to them failed"
      " (score {score}, above OONI's 0.5)."),
    R("app.telegram.web-blocked", "telegram", "anomaly", "undetermined",
      "Telegram's data centres were reachable, but its web app (web.telegram.org) was"
      " not: {failure}."),
    R("app.telegram.incomplete", "telegram", "failure", "undetermined",
      "The Telegram measurement is incomplete ({what}), so it cannot tell."),
    # Facebook Messenger
    R("app.facebook_messenger.ok", "facebook_messenger", "ok", "none",
      "Facebook Messenger's services resolved consistently and were reachable."),
    R("app.facebook_messenger.dns", "facebook_messenger", "anomaly", "dns",
      "Facebook Messenger looked blocked by DNS: {problems}."),
    R("app.facebook_messenger.tcp", "facebook_messenger", "anomaly", "tcp_ip",
      "Facebook Messenger's services were unreachable: {problems}."),
    # Signal
    R("app.signal.ok", "signal", "ok", "none", "Signal's servers were reachable."),
    R("app.signal.blocked", "signal", "anomaly", "undetermined",
      "Signal's servers could not be reached: {failure}."),
    R("app.signal.probe-bug", "signal", "failure", "undetermined",
      "Signal measurements of {what} {when} are unreliable ({reason}); OONI counts them as"
      " failures."),
    R("app.signal.incomplete", "signal", "failure", "undetermined",
      "The Signal measurement cannot be judged ({what})."),
    # Tor and circumvention tools
    R("tor.ok", "tor", "ok", "none",
      "{reached} of the {total} Tor relays, bridges and directory authorities tried were"
      " reachable."),
    R("tor.blocked", "tor", "anomaly", "tcp_ip",
      "{failed} of the {total} Tor relays, bridges and directory authorities tried were"
      " unreachable."),
    R("tor.incomplete", "tor", "failure", "undetermined",
      "The Tor measurement cannot be judged ({what})."),
    R("tor.bootstrap-ok", "vanilla_tor", "ok", "none", "Tor bootstrapped to 100%."),
    R("tor.bootstrap-failed", "vanilla_tor", "anomaly", "bootstrap",
      "Tor did not finish bootstrapping: it stopped at {progress}% ({failure})."),
    R("tor.bootstrap-incomplete", "vanilla_tor", "failure", "undetermined",
      "The Tor bootstrap measurement has no Tor log, so it cannot tell."),
    R("torsf.ok", "torsf", "ok", "none",
      "Tor bootstrapped through a Snowflake bridge (in {bootstrap_time} s)."),
    R("torsf.bootstrap-failed", "torsf", "anomaly", "bootstrap",
      "Tor could not bootstrap through a Snowflake bridge: {failure}."),
    R("torsf.probe-bug", "torsf", "failure", "undetermined",
      "Snowflake measurements of ooniprobe-android 3.8.3 are unreliable; OONI counts them"
      " as failures."),
    R("psiphon.ok", "psiphon", "ok", "none",
      "Psiphon bootstrapped (in {bootstrap_time} s) and fetched a page through its tunnel."),
    R("psiphon.failed", "psiphon", "anomaly", "bootstrap",
      "Psiphon failed to bootstrap or to fetch a page through its tunnel: {failure}."),
    R("psiphon.incomplete", "psiphon", "failure", "undetermined",
      "The Psiphon measurement cannot be judged ({what})."),
    R("riseupvpn.not-scored", "riseupvpn", "ok", "undetermined",
      "OONI stopped scoring RiseupVPN in October 2023 as its results were unreliable (the"
      " probe said API {api_status}); counted as ok, as OONI does."),
    R("openvpn.ok", "openvpn", "ok", "none", "The OpenVPN tunnel to {remote} worked."),
    R("openvpn.failed", "openvpn", "anomaly", "bootstrap",
      "The OpenVPN tunnel to {remote} could not be set up: {failure}."),
    R("openvpn.incomplete", "openvpn", "failure", "undetermined",
      "The OpenVPN measurement does not say whether the tunnel worked."),
    R("meek.ok", "meek_fronted_requests_test", "ok", "none",
      "The {count} domain-fronted meek request(s) got HTTP 200 answers ({unexpected} from"
      " a server other than the CDN's, below OONI's anomaly threshold)."),
    R("meek.failed", "meek_fronted_requests_test", "anomaly", "http",
      "A domain-fronted meek request failed: {what}."),
    R("meek.unexpected-server", "meek_fronted_requests_test", "anomaly", "http",
      "{unexpected} of the {count} domain-fronted meek requests were answered by a server"
      " other than the CDN's ({server})."),
    R("meek.incomplete", "meek_fronted_requests_test", "failure", "undetermined",
      "The meek measurement has no request to judge."),
    # middleboxes
    R("hhfm.ok", "http_header_field_manipulation", "ok", "none",
      "The HTTP headers reached the echo server unchanged."),
    R("hhfm.tampering", "http_header_field_manipulation", "anomaly", "middlebox",
      "A middlebox changed the HTTP headers on the way to the echo server ({count}"
      " difference(s), e.g. {example})."),
    R("hhfm.no-echo", "http_header_field_manipulation", "anomaly", "middlebox",
      "The echo server's answer was {what}, so something on the path answered in its"
      " place."),
    R("hhfm.incomplete", "http_header_field_manipulation", "failure", "undetermined",
      "The header-manipulation test got no answer from the echo server ({failure}), so it"
      " cannot tell."),
    R("hirl.ok", "http_invalid_request_line", "ok", "none",
      "The {total} invalid HTTP request lines came back from the echo server unchanged."),
    R("hirl.tampering", "http_invalid_request_line", "anomaly", "middlebox",
      "{count} of the {total} invalid HTTP request lines came back altered: a middlebox"
      " is on the path."),
    R("hirl.incomplete", "http_invalid_request_line", "failure", "undetermined",
      "The invalid-request-line test sent or received nothing to compare."),
    # legacy and generic tests
    R("http_requests.ok", "http_requests", "ok", "none",
      "The page matches the one fetched over Tor (body length and headers)."),
    R("http_requests.diff", "http_requests", "anomaly", "http",
      "The page differs from the one fetched over Tor ({what})."),
    R("http_requests.blockpage", "http_requests", "anomaly", "http",
      "The page matches the blockpage fingerprint {fingerprint} (scope {scope}): OONI"
      " counts this as confirmed blocking."),
    R("http_requests.incomplete", "http_requests", "failure", "undetermined",
      "The page could not be compared with the one fetched over Tor ({what})."),
    R("dns_consistency.not-scored", "dns_consistency", "ok", "undetermined",
      "OONI does not score the legacy dns_consistency test ({count} resolver(s) reported"
      " inconsistent); counted as ok, as OONI does."),
    R("stun.ok", "stunreachability", "ok", "none", "The STUN server {endpoint} answered."),
    R("stun.failed", "stunreachability", "anomaly", "undetermined",
      "The STUN server {endpoint} did not answer: {failure}."),
    R("tcp_connect.ok", "tcp_connect", "ok", "none", "The TCP connection to {target} worked."),
    R("tcp_connect.failed", "tcp_connect", "anomaly", "tcp_ip",
      "The TCP connection to {target} failed ({failure})."),
    R("browser_web.ok", "browser_web", "ok", "none", "The browser loaded the page."),
    R("browser_web.error", "browser_web", "anomaly", "undetermined",
      "The browser could not load the page (the test records no reason)."),
    R("browser_web.incomplete", "browser_web", "failure", "undetermined",
      "The browser test records no result ({what})."),
    R("dash.ok", "dash", "ok", "none", "The video-streaming test ran."),
    R("dash.failed", "dash", "failure", "undetermined",
      "The video-streaming test failed ({failure}); OONI counts this as a failure of the"
      " test, not as blocking."),
    R("ndt.not-scored", "ndt", "ok", "undetermined",
      "OONI does not score speed tests (ndt); counted as ok, as OONI does."),
    R("dnscheck.not-scored", "dnscheck", "failure", "undetermined",
      "OONI's fastpath has no scorer for dnscheck and counts it as a failure; so does"
      " blockproof (the probe said: {failure})."),
    R("urlgetter.not-scored", "urlgetter", "failure", "undetermined",
      "OONI's fastpath has no scorer for urlgetter and counts it as a failure; so does"
      " blockproof (the probe said: {failure})."),
)  # fmt: skip
del R
FASTPATH_RULES_BY_ID: dict[str, FastpathRule] = {rule.id: rule for rule in FASTPATH_RULES}


# --------------------------------------------------------------------------------------
# helpers


class _Incomplete(Exception):
    """Raised by a scorer: the test keys lack what OONI needs (a failure verdict)."""

    def __init__(self, rule_id: str, **fields: Any) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id
        self.fields = fields


def _v(rule_id: str, **fields: Any) -> TestVerdict:
    rule = FASTPATH_RULES_BY_ID[rule_id]
    return TestVerdict(rule.outcome, rule.method, rule.id, rule.template.format(**fields))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _failure(value: Any) -> str:
    return _short(value) if value else "no failure recorded"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _tcp_counts(tk: Mapping[str, Any]) -> tuple[int, int]:
    """(accessible, unreachable) endpoints of the ``tcp_connect`` list (df-005)."""
    accessible = unreachable = 0
    for entry in _list(tk.get("tcp_connect")):
        success = _dict(_dict(entry).get("status")).get("success")
        if success is True:
            accessible += 1
        elif success is False:
            unreachable += 1
    return accessible, unreachable


def _requests(tk: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for request in _list(tk.get("requests")):
        yield _dict(request)


def _url(request: Mapping[str, Any]) -> str | None:
    url = _dict(request.get("request")).get("url")
    return url if isinstance(url, str) else None


def _maybe_binary(value: Any) -> bytes | str | None:
    """A df-001 body or header value: a string or ``{"format": "base64", "data": ...}``."""
    if isinstance(value, Mapping):
        if value.get("format") != "base64" or not isinstance(value.get("data"), str):
            return None
        try:
            return base64.b64decode(value["data"])
        except (binascii.Error, ValueError):
            return None
    return value if isinstance(value, str) else None


def _header_pairs(response: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs from ``headers_list`` or the ``headers`` map; a value that is
    a list (legacy probes) gives its first element."""
    raw = response.get("headers_list")
    pairs = raw if isinstance(raw, list) else list(_dict(response.get("headers")).items())
    out: list[tuple[str, str]] = []
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        name, value = pair
        if isinstance(value, list):
            value = value[0] if value else None
        decoded = _maybe_binary(value)
        if isinstance(decoded, bytes):
            decoded = decoded.decode("latin-1")
        if isinstance(name, str) and isinstance(decoded, str):
            out.append((name, decoded))
    return out


_VERSION = re.compile(r"\s*v?(\d+(?:\.\d+)*)(.*)")


def _version(text: Any) -> tuple[int, ...]:
    """A comparable version: 3.17.0-alpha < 3.17.0 < 3.17.0.1 < 3.17.2. ValueError if
    there is no leading number (OONI's ``packaging.Version`` raises too)."""
    match = _VERSION.fullmatch(str(text))
    if match is None:
        raise ValueError(f"not a version: {_short(text)}")
    numbers = [int(n) for n in match[1].split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    pre_release = match[2].strip() != "" and not match[2].startswith("+")
    return (*numbers, -1 if pre_release else 0)


def _start_time(msm: Mapping[str, Any]) -> datetime:
    value = msm.get("measurement_start_time")
    if not isinstance(value, str):
        raise _Incomplete("app.signal.incomplete", what="no measurement_start_time")
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise _Incomplete("app.signal.incomplete", what="unreadable start time") from None


# --------------------------------------------------------------------------------------
# scorers: (measurement, test_keys) -> verdict

Scorer = Callable[[Mapping[str, Any], Mapping[str, Any]], TestVerdict]


def _whatsapp(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    for key, value in tk.items():
        if str(key).endswith("_failure") and str(value).startswith("unknown_failure"):
            return _v("app.whatsapp.probe-error", failure=_short(value))
    requests = list(_requests(tk))
    if not requests:
        return _v("app.whatsapp.incomplete", what="no HTTP request recorded")
    web: Mapping[str, Any] | None = None
    registration: Mapping[str, Any] | None = None
    for request in requests:
        if _url(request) == "https://web.whatsapp.com/":
            web = request
        elif _url(request) == "https://v.whatsapp.net/v2/register":
            registration = request
    if web is None or registration is None:
        missing = "web.whatsapp.com" if web is None else "v.whatsapp.net"
        return _v("app.whatsapp.incomplete", what=f"no request to {missing}")
    if registration.get("failure") is not None:
        return _v("app.whatsapp.registration-blocked", failure=_failure(registration["failure"]))
    if web.get("failure", True) not in (None, "", False):
        return _v("app.whatsapp.web-blocked", failure=_failure(web.get("failure")))
    accessible, unreachable = _tcp_counts(tk)
    if accessible + unreachable == 0:
        return _v("app.whatsapp.incomplete", what="no endpoint was tried")
    if accessible == 0:
        return _v("app.whatsapp.endpoints-blocked", endpoints=unreachable)
    return _v("app.whatsapp.ok", reached=accessible, endpoints=accessible + unreachable)


def _telegram(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    accessible, unreachable = _tcp_counts(tk)
    http_ok = http_failed = 0
    web_failure: Any = None
    for request in _requests(tk):
        url = _url(request)
        if url is None:
            return _v("app.telegram.incomplete", what="an HTTP request has no URL")
        if "failure" not in request:
            return _v("app.telegram.incomplete", what="an HTTP request has no failure key")
        if url in ("https://web.telegram.org/", "http://web.telegram.org/"):
            web_failure = request["failure"] or web_failure
        elif request["failure"] is None:
            http_ok += 1
        else:
            http_failed += 1
    endpoints = accessible + unreachable
    dc_score = unreachable / endpoints if endpoints else 0.5
    dc_score += http_failed / (http_ok + http_failed) if http_ok + http_failed else 0.5
    web_blocked = tk.get("telegram_web_status") == "blocked"
    score = dc_score + (1.0 if web_blocked else 0.0)
    counts = {
        "unreachable": unreachable,
        "endpoints": endpoints,
        "http_failed": http_failed,
        "http_total": http_ok + http_failed,
    }
    if dc_score > 0.5:
        return _v("app.telegram.blocked", score=f"{score:.2f}", **counts)
    if web_blocked:
        failure = web_failure or tk.get("telegram_web_failure")
        return _v("app.telegram.web-blocked", failure=_failure(failure))
    return _v("app.telegram.ok", **counts)


_FB_SERVICES = ("b_api", "b_graph", "edge", "external_cdn", "scontent_cdn", "star")
_FB_CLEAN = (
    "facebook_b_api_dns_consistent",
    "facebook_b_api_reachable",
    "facebook_b_graph_dns_consistent",
    "facebook_b_graph_reachable",
    "facebook_dns_blocking",
    "facebook_edge_dns_consistent",
    "facebook_edge_reachable",
    "facebook_star_dns_consistent",
    "facebook_star_reachable",
    "facebook_stun_dns_consistent",
)


def _messenger(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    # OONI's workaround: a probe bug sets facebook_dns_blocking on clean measurements
    if all(tk.get(k) is True for k in _FB_CLEAN) and tk.get("facebook_tcp_blocking") is False:
        return _v("app.facebook_messenger.ok")
    dns = [s for s in (*_FB_SERVICES, "stun") if tk.get(f"facebook_{s}_dns_consistent") is False]
    tcp = [s for s in _FB_SERVICES if tk.get(f"facebook_{s}_reachable") is False]
    flags = [k for k in ("facebook_tcp_blocking", "facebook_dns_blocking") if tk.get(k) is True]
    if 0.5 * (len(dns) + len(tcp) + len(flags)) <= 0.5:
        return _v("app.facebook_messenger.ok")
    problems = []
    if dns:
        problems.append("inconsistent DNS answers for " + ", ".join(dns))
    if tcp:
        problems.append("unreachable " + ", ".join(tcp))
    if flags:
        problems.append("the probe flagged " + " and ".join(f[9:] for f in flags))
    rule = "app.facebook_messenger.dns" if dns else "app.facebook_messenger.tcp"
    return _v(rule, problems="; ".join(problems))


def _signal(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    start = _start_time(msm)
    raw_version = msm.get("test_version") or "0.0.0"
    raw_engine = _dict(msm.get("annotations")).get("engine_version") or "0.0.0"
    try:
        version, engine = _version(raw_version), _version(raw_engine)
    except ValueError as exc:
        return _v("app.signal.incomplete", what=str(exc))
    tv = f"test version {_short(raw_version)}"
    bugs = (
        (version == _version("0.2.4"), tv, "of any date", "a probe bug, ooni/probe#2636"),
        (version <= _version("0.2.3") and start >= datetime(2023, 11, 7), tv,
         "from 2023-11-07 on", "Signal changed the endpoints it serves, ooni/probe#2627"),
        (version < _version("0.2.2") and start >= datetime(2022, 10, 19), tv,
         "from 2022-10-19 on", "Signal changed its certificate authority, ooni/probe#2344"),
        (engine < _version("3.17.2") and start >= datetime(2023, 5, 2),
         f"probe engine {_short(raw_engine)}", "from 2023-05-02 on",
         "engines before 3.17.2 test a retired endpoint, ooni/probe#2477"),
    )  # fmt: skip
    for applies, what, when, reason in bugs:
        if applies:
            return _v("app.signal.probe-bug", what=what, when=when, reason=reason)
    if "failure" not in tk or "failed_operation" not in tk:
        return _v("app.signal.incomplete", what="no failure or failed_operation key")
    if tk["failed_operation"] or tk["failure"]:
        what = f"the test itself failed: {_failure(tk['failure'] or tk['failed_operation'])}"
        return _v("app.signal.incomplete", what=what)
    status = tk.get("signal_backend_status")
    if status == "ok":
        return _v("app.signal.ok")
    if status == "blocked":
        return _v("app.signal.blocked", failure=_failure(tk.get("signal_backend_failure")))
    return _v("app.signal.incomplete", what=f"backend status {_short(status)}")


def _tor(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    targets = tk.get("targets")
    if isinstance(targets, list):
        return _v("tor.incomplete", what="targets in the early list format")
    if not isinstance(targets, Mapping) or not targets:
        return _v("tor.incomplete", what="no targets")
    failed = reached = 0
    for target in targets.values():
        if not isinstance(target, Mapping) or not {"failure", "network_events"} <= set(target):
            return _v("tor.incomplete", what="a target lacks its failure or network events")
        failure = target["failure"]
        if failure is None:
            reached += 1
        elif failure is False:
            continue  # did not run
        elif isinstance(failure, str) and failure:
            failed += 1
        else:
            return _v("tor.incomplete", what=f"a target's failure is {_short(failure)}")
    if failed + reached == 0:
        return _v("tor.incomplete", what="no target ran")
    if failed / (failed + reached) > 0.5:
        return _v("tor.blocked", failed=failed, total=failed + reached)
    return _v("tor.ok", reached=reached, total=failed + reached)


_BOOTSTRAPPED = ("Bootstrapped 100%: Done", "Bootstrapped 100% (done): Done")


def _vanilla_tor(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    logs = tk.get("tor_logs") or tk.get("tor_log")
    if logs is None:
        return _v("tor.bootstrap-incomplete")
    lines = [logs] if isinstance(logs, str) else [x for x in _list(logs) if isinstance(x, str)]
    if any(marker in line for line in lines for marker in _BOOTSTRAPPED):
        return _v("tor.bootstrap-ok")
    progress = min(100.0, max(0.0, float(tk.get("tor_progress", 0))))
    if progress == 100:
        return _v("tor.bootstrap-ok")
    # OONI: blocking_general = 1 - 0.004 * progress, above 0.5 for any progress below 100
    failure = tk.get("failure") or tk.get("error")
    return _v("tor.bootstrap-failed", progress=f"{progress:g}", failure=_failure(failure))


def _torsf(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    name = msm.get("software_name")
    if msm.get("software_version") == "3.8.3" and str(name).startswith("ooniprobe-android"):
        return _v("torsf.probe-bug")
    if tk.get("failure"):
        return _v("torsf.bootstrap-failed", failure=_failure(tk["failure"]))
    return _v("torsf.ok", bootstrap_time=_short(tk.get("bootstrap_time")))


def _psiphon(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    if "resolver_ip" not in msm:
        return _v("psiphon.incomplete", what="no resolver_ip")
    if tk.get("failure") is not None:
        return _v("psiphon.failed", failure=_failure(tk["failure"]))
    if not tk.get("bootstrap_time"):
        return _v("psiphon.incomplete", what="no failure but no bootstrap time either")
    return _v("psiphon.ok", bootstrap_time=_short(tk["bootstrap_time"]))


def _riseupvpn(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    return _v("riseupvpn.not-scored", api_status=_short(tk.get("api_status", "unknown")))


def _openvpn(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    remote = _short(tk.get("remote") or "the server")
    success = tk.get("success")
    if success is None:
        return _v("openvpn.incomplete")
    if success is False:
        return _v("openvpn.failed", remote=remote, failure=_failure(tk.get("failure")))
    return _v("openvpn.ok", remote=remote)


def _meek(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    requests = _list(tk.get("requests"))
    if not requests:
        return _v("meek.incomplete")
    unexpected: list[str] = []
    for request in requests:
        response = _dict(request).get("response", {})
        if response is None:
            return _v("meek.failed", what=f"no answer ({_failure(_dict(request).get('failure'))})")
        code = _dict(response).get("code", 0)
        if code != 200:
            return _v("meek.failed", what=f"HTTP status {_short(code)} instead of 200")
        server = next((v for n, v in _header_pairs(_dict(response)) if n.lower() == "server"), "")
        if not server.startswith("ECAcc "):
            unexpected.append(_short(server or "no Server header"))
    count = len(requests)
    if 0.5 * len(unexpected) > 0.5:
        return _v("meek.unexpected-server", unexpected=len(unexpected), count=count,
                  server=", ".join(sorted(set(unexpected))))  # fmt: skip
    return _v("meek.ok", count=count, unexpected=len(unexpected))


def _hhfm(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    requests = tk.get("requests")
    if not isinstance(requests, list) or not requests or not isinstance(requests[0], Mapping):
        return _v("hhfm.incomplete", failure="no request recorded")
    first = requests[0]
    response = first.get("response", {})
    if response is None:
        return _v("hhfm.incomplete", failure=_failure(first.get("failure")))
    body = _maybe_binary(_dict(response).get("body"))
    if body is None:
        return _v("hhfm.no-echo", what="empty")
    try:
        echoed = json.loads(body)["headers_dict"]
        received = {(name, values[0]) for name, values in echoed.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return _v("hhfm.no-echo", what="not the expected JSON")
    sent_headers = _dict(_dict(first.get("request")).get("headers"))
    sent = {(name, value) for name, value in sent_headers.items() if isinstance(value, str)}
    received.discard(("Connection", "close"))  # not always handled correctly (OONI)
    sent.discard(("Connection", "close"))
    changed = sorted(name for name, _ in sent ^ received)
    if not changed:
        return _v("hhfm.ok")
    return _v("hhfm.tampering", count=len(sent ^ received), example=_short(changed[0]))


def _hirl(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    sent, received = _list(tk.get("sent")), _list(tk.get("received"))
    if not sent and not received:
        return _v("hirl.incomplete")
    altered = sum(1 for s, r in zip(sent, received, strict=False) if s != r)
    if altered:
        return _v("hirl.tampering", count=altered, total=len(sent))
    return _v("hirl.ok", total=len(sent))


def _http_requests(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    failed = next(
        (
            src.get(key)
            for src in (msm, tk)
            for key in ("control_failure", "experiment_failure")
            if src.get(key)
        ),
        None,
    )
    if failed:
        return _v("http_requests.incomplete", what=f"a fetch failed: {_short(failed)}")
    length_match, headers_match = tk.get("body_length_match"), tk.get("headers_match")
    if length_match is None or headers_match is None:
        return _v("http_requests.incomplete", what="no body length or header comparison")
    from blockproof.verdict.fingerprints import FingerprintDB, confirms

    db = FingerprintDB.default()
    probe_cc = msm.get("probe_cc") if isinstance(msm.get("probe_cc"), str) else None
    for request in _requests(tk):
        if _dict(_dict(request.get("request")).get("tor")).get("is_tor"):
            continue  # the control fetch, over Tor
        response = _dict(request.get("response"))
        found = db.match_http(
            body=_maybe_binary(response.get("body")), headers=_header_pairs(response)
        )
        for fp in found:
            if confirms(fp, probe_cc):
                return _v("http_requests.blockpage", fingerprint=fp.name, scope=fp.scope)
    if not (length_match and headers_match):
        what = [] if length_match else ["body length"]
        what += [] if headers_match else ["headers"]
        return _v("http_requests.diff", what=" and ".join(what) + " differ")
    return _v("http_requests.ok")


def _dns_consistency(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    return _v("dns_consistency.not-scored", count=len(_list(tk.get("inconsistent"))))


def _stun(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    endpoint = _short(tk.get("endpoint") or msm.get("input") or "(unnamed)")
    if tk.get("failure"):
        return _v("stun.failed", endpoint=endpoint, failure=_failure(tk["failure"]))
    return _v("stun.ok", endpoint=endpoint)


def _tcp_connect(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    target = _short(msm.get("input") or "the target")
    connection = tk.get("connection")
    if connection == "success":
        return _v("tcp_connect.ok", target=target)
    return _v("tcp_connect.failed", target=target, failure=_failure(connection))


def _browser_web(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    result = tk.get("result")
    if result == "ok":
        return _v("browser_web.ok")
    if result == "error":
        return _v("browser_web.error")
    return _v("browser_web.incomplete", what=f"result {_short(result)}")


def _dash(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
    if tk.get("failure") is None:
        return _v("dash.ok")
    return _v("dash.failed", failure=_failure(tk["failure"]))


def _not_scored(rule_id: str) -> Scorer:
    def score(msm: Mapping[str, Any], tk: Mapping[str, Any]) -> TestVerdict:
        return _v(rule_id, failure=_failure(tk.get("failure")))

    return score


SCORERS: dict[str, Scorer] = {
    "whatsapp": _whatsapp,
    "telegram": _telegram,
    "facebook_messenger": _messenger,
    "signal": _signal,
    "tor": _tor,
    "vanilla_tor": _vanilla_tor,
    "torsf": _torsf,
    "psiphon": _psiphon,
    "riseupvpn": _riseupvpn,
    "openvpn": _openvpn,
    "meek_fronted_requests_test": _meek,
    "http_header_field_manipulation": _hhfm,
    "http_invalid_request_line": _hirl,
    "http_requests": _http_requests,
    "dns_consistency": _dns_consistency,
    "stunreachability": _stun,
    "tcp_connect": _tcp_connect,
    "browser_web": _browser_web,
    "dash": _dash,
    "ndt": lambda msm, tk: _v("ndt.not-scored"),
    "dnscheck": _not_scored("dnscheck.not-scored"),
    "urlgetter": _not_scored("urlgetter.not-scored"),
}
KNOWN_TESTS = frozenset(SCORERS)


def score_test(measurement: Mapping[str, Any]) -> TestVerdict | None:
    """The fastpath-equivalent verdict of one OONI measurement (parsed JSON).

    None for web_connectivity and for tests no rule judges (they are judged
    elsewhere). Never raises: unusable test keys give a ``failure`` verdict.
    """
    if not isinstance(measurement, Mapping):
        return None
    test_name = measurement.get("test_name")
    if not isinstance(test_name, str) or test_name not in SCORERS:
        return None
    tk = measurement.get("test_keys")
    if not isinstance(tk, Mapping) or not tk:
        return _v("test.no-keys", test_name=test_name)
    try:
        return SCORERS[test_name](measurement, tk)
    except _Incomplete as exc:
        return _v(exc.rule_id, **exc.fields)
    except Exception as exc:  # never raise on a measurement, whatever it holds
        error = f"{type(exc).__name__}: {_short(str(exc))}"
        return _v("test.malformed", test_name=test_name, error=error)


# --------------------------------------------------------------------------------------
# Web Connectivity: what OONI counts (``ooni_outcome``)
#
# OONI's fastpath scores a Web Connectivity measurement from the keys the probe
# recorded, not from a re-analysis (``score_web_connectivity`` in ooni/backend
# ``fastpath/fastpath/core.py``): ``blocking`` one of tcp_ip / dns / http-diff /
# http-failure is an anomaly; a confirming fingerprint match is confirmed; and the
# measurement is a failure (``accuracy`` 0) when ``blocking`` is null or
# ``accessible`` is null with no fingerprint matched at all, when ``blocking`` has
# any other value, when ``title_match`` is not a boolean or null, or when any
# ``*_failure`` key starts with ``unknown_failure``. So a site down for everyone
# (``blocking`` false, ``accessible`` false) counts as ok. Explorer and MAT then
# count a measurement once: failure, else confirmed, else anomaly, else ok
# (ooniapi ``aggregation.py``).

OONI_BLOCKING_TYPES = frozenset({"tcp_ip", "dns", "http-diff", "http-failure"})


def ooni_web_outcome(test_keys: Any, *, matched: bool, confirmed: bool) -> str:
    """OONI's count (``ok`` / ``anomaly`` / ``confirmed`` / ``failure``) of a Web
    Connectivity measurement with these recorded ``test_keys``.

    ``matched``: some fingerprint of OONI's database matched its DNS answers or
    HTTP responses (whatever its scope); ``confirmed``: one of them confirms blocking
    in the measurement's country (``fingerprints.confirms``).
    """
    if not isinstance(test_keys, Mapping):
        return "failure"  # test_keys null (or missing: then blocking is null too)
    failed = False
    anomaly = confirmed
    if test_keys.get("title_match") not in (True, False, None):
        return "failure"
    blocking = test_keys.get("blocking")
    if isinstance(blocking, str) and blocking in OONI_BLOCKING_TYPES:
        anomaly = True
    elif blocking is None:
        failed = not matched  # ooni/backend#610: a confirmed measurement is good
    elif not (blocking is False or _is_zero(blocking)):
        return "failure"  # "unexpected value for blocking"
    if _has_unknown_failure(test_keys):
        failed = True
    if "accessible" in test_keys and test_keys["accessible"] is None and not matched:
        failed = True
    if failed:
        return "failure"
    if confirmed:
        return "confirmed"
    return "anomaly" if anomaly else "ok"


def _is_zero(value: Any) -> bool:
    """Python's ``value == False`` for a number, as OONI's comparison reads a JSON 0."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def _has_unknown_failure(test_keys: Mapping[str, Any]) -> bool:
    return any(
        isinstance(key, str)
        and key.endswith("_failure")
        and isinstance(value, str)
        and value.startswith("unknown_failure")
        for key, value in test_keys.items()
    )
