"""OONI fastpath-equivalent verdicts of the other OONI tests.

Two tables. ``SAMPLES``: every real sample file of tests/data/ooni-extra and
tests/data/ooni -> the expected (outcome, rule id), justified per row by what OONI's
fastpath says for it (ooni/backend ``fastpath/fastpath/tests/test_unit.py`` asserts the
scores of most of these very files; "anomaly" is blocking_general > 0.5, "failure" is
accuracy < 0.5). ``CASES``: measurements built here for the branches no sample
reaches, each following the OONI scorer's rule named in its comment.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockproof.codec.jsonl import BadRecord, iter_json_objects
from blockproof.verdict.fastpath import (
    FASTPATH_RULES,
    FASTPATH_RULES_BY_ID,
    KNOWN_TESTS,
    METHODS,
    OUTCOMES,
    score_test,
)

DATA = Path(__file__).parent.parent / "data"
EXTRA = DATA / "ooni-extra"

# file -> (outcome, rule id) of its measurement(s); None: judged elsewhere (web_connectivity)
SAMPLES: dict[str, tuple[str, str] | None] = {
    # OONI: all scores 0 (web app, registration and endpoints all reachable; the
    # probe's whatsapp_web_status "blocked" is an HTTP status quirk OONI ignores)
    "ooni-extra/fastpath-testdata/whatsapp.json": ("ok", "app.whatsapp.ok"),
    # OONI: scores_failed (a request without test_keys.requests[].request.url)
    "ooni-extra/fastpath-testdata/telegram_nourl.json": ("failure", "app.telegram.incomplete"),
    # OONI: all 0 (test 0.2.2 in 2022-11, backend ok)
    "ooni-extra/fastpath-testdata/signal_022.json": ("ok", "app.signal.ok"),
    # OONI: accuracy 0 (test 0.2.0 < 0.2.2 after 2022-10-19), despite status "blocked"
    "ooni-extra/fastpath-testdata/signal_2627.json": ("failure", "app.signal.probe-bug"),
    # OONI: accuracy 0 (engine 3.17.1 < 3.17.2 after 2023-05-02, ooni/backend#679)
    "ooni-extra/fastpath-testdata/signal_679.json": ("failure", "app.signal.probe-bug"),
    # OONI: blocking_general 0 (3 targets, none failed)
    "ooni-extra/fastpath-testdata/tor.json": ("ok", "tor.ok"),
    # OONI: accuracy 0 (targets as a list: early experimental format)
    "ooni-extra/fastpath-testdata/tor_list.json": ("failure", "tor.incomplete"),
    # OONI: 0.98 = 1 - 0.004 * 5% progress (CN)
    "ooni-extra/fastpath-testdata/vanilla_tor.json": ("anomaly", "tor.bootstrap-failed"),
    # OONI: all 0 ("Bootstrapped 100%", progress 100)
    "ooni-extra/fastpath-testdata/vanilla_tor_ok.json": ("ok", "tor.bootstrap-ok"),
    # OONI: 1.0 (failure generic_timeout_error)
    "ooni-extra/fastpath-testdata/torsf_1.json": ("anomaly", "torsf.bootstrap-failed"),
    # OONI: all 0 (bootstrapped in 79 s)
    "ooni-extra/fastpath-testdata/torsf_2.json": ("ok", "torsf.ok"),
    # OONI: accuracy 0 (ooniprobe-android 3.8.3)
    "ooni-extra/fastpath-testdata/torsf_383.json": ("failure", "torsf.probe-bug"),
    # OONI: 1.0 (HTTP 403 from CloudFront instead of 200)
    "ooni-extra/fastpath-testdata/meek.json": ("anomaly", "meek.failed"),
    # OONI: all 0 (200 from an "ECAcc" server)
    "ooni-extra/fastpath-testdata/meek2.json": ("ok", "meek.ok"),
    # OONI: 0.5 (one 200 from another server), not above the 0.5 threshold
    "ooni-extra/fastpath-testdata/meek3.json": ("ok", "meek.ok"),
    # OONI: {} (riseupvpn unscored since 2023-10, ooni/backend#745), although the
    # probe said api_status "blocked"
    "ooni-extra/fastpath-testdata/riseupvpn.json": ("ok", "riseupvpn.not-scored"),
    # OONI: all 0 (success true)
    "ooni-extra/fastpath-testdata/openvpn.json": ("ok", "openvpn.ok"),
    # OONI: scores_failed for the three (requests null; []; response null after
    # connection_refused_error to the helper, PK)
    "ooni-extra/fastpath-testdata/http_header_field_manipulation_1.json": (
        "failure",
        "hhfm.incomplete",
    ),
    "ooni-extra/fastpath-testdata/http_header_field_manipulation_2.json": (
        "failure",
        "hhfm.incomplete",
    ),
    "ooni-extra/fastpath-testdata/http_header_field_manipulation_3.json": (
        "failure",
        "hhfm.incomplete",
    ),
    # not in OONI's tests; by its rule (a sent line differs from the received one) 1.0:
    # 4 of 5 lines came back as "HTTP/1.1 400 Bad request" (PT), 4 of 4 altered (SD)
    "ooni-extra/fastpath-testdata/mbx-1.json": ("anomaly", "hirl.tampering"),
    "ooni-extra/fastpath-testdata/mbx-2.json": ("anomaly", "hirl.tampering"),
    # OONI: all 0 (result ok) / blocking_general 1.0 (result error)
    "ooni-extra/fastpath-testdata/browser_web.json": ("ok", "browser_web.ok"),
    "ooni-extra/fastpath-testdata/browser_web_error.json": ("anomaly", "browser_web.error"),
    # OONI: accuracy 0 (body_length_match null)
    "ooni-extra/fastpath-testdata/http_requests_1.json": (
        "failure",
        "http_requests.incomplete",
    ),
    # by OONI's rule: body length and headers match, no fingerprint: 0
    "ooni-extra/fastpath-testdata/yaml16_0.json": ("ok", "http_requests.ok"),
    # OONI: dns_consistency is not scored (all 0), though one resolver was inconsistent
    "ooni-extra/fastpath-testdata/yaml17_0.json": ("ok", "dns_consistency.not-scored"),
    # OONI: urlgetter has no scorer ("unsupported test name": accuracy 0)
    "ooni-extra/probe-cli-real/oonireport-testmeasurement.jsonl": (
        "failure",
        "urlgetter.not-scored",
    ),
    # not measurements of a scored test: rows of a detector query, all web_connectivity
    "ooni-extra/fastpath-testdata/detector_query_ww_BR_2018.json": None,
}
# Web Connectivity is judged elsewhere (verdict.judge): None for every one of them
SAMPLES |= {
    str(p.relative_to(DATA)): None
    for p in sorted((DATA / "ooni").rglob("*"))
    if p.is_file() and p.name != "SOURCES.md"
}
# legacy YAML reports and a JSON-with-comments file: unreadable as JSON, reported, no crash
UNREADABLE = [
    "ooni-extra/fastpath-testdata/binary_city.yaml",
    "ooni-extra/fastpath-testdata/dns_n_http_bin_body.yaml",
    "ooni-extra/fastpath-testdata/http_invalid_request_line.yaml",
    "ooni-extra/probe-cli-real/20230706183840.201925_PK_webconnectivity_19f5e0d803cbaea7.jsonc",
]


def records(name: str) -> list[dict[str, Any]]:
    return list(iter_json_objects(DATA / name))


def test_every_sample_file_is_in_a_table() -> None:
    on_disk = {
        str(p.relative_to(DATA))
        for p in (*EXTRA.rglob("*"), *(DATA / "ooni").rglob("*"))
        if p.is_file() and p.name != "SOURCES.md"
    }
    assert on_disk == set(SAMPLES) | set(UNREADABLE)


@pytest.mark.parametrize(("name", "expected"), SAMPLES.items(), ids=list(SAMPLES))
def test_ooni_samples(name: str, expected: tuple[str, str] | None) -> None:
    measurements = records(name)
    assert measurements
    for measurement in measurements:
        verdict = score_test(measurement)
        if expected is None:
            assert verdict is None
            continue
        assert verdict is not None
        assert (verdict.outcome, verdict.rule_id) == expected
        rule = FASTPATH_RULES_BY_ID[verdict.rule_id]
        assert verdict.method == rule.method
        assert measurement["test_name"] in rule.tests
        assert verdict.explanation
        assert "{" not in verdict.explanation


@pytest.mark.parametrize("name", UNREADABLE)
def test_unreadable_files_are_reported_not_a_crash(name: str) -> None:
    bad: list[BadRecord] = []
    assert list(iter_json_objects(DATA / name, on_error=bad.append)) == []
    assert bad


# --------------------------------------------------------------------------------------
# built measurements, for the branches no sample reaches


def sample(name: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A real sample with one change."""
    measurement = copy.deepcopy(records(f"ooni-extra/fastpath-testdata/{name}")[0])
    edit(measurement)
    return measurement


def m(test_name: str, test_keys: Any, **top: Any) -> dict[str, Any]:
    return {"test_name": test_name, "test_keys": test_keys, **top}


def tcp(*successes: bool) -> list[dict[str, Any]]:
    return [{"ip": "1.2.3.4", "port": 443, "status": {"success": s}} for s in successes]


def wa_requests(web: str | None = None, registration: str | None = None) -> list[Any]:
    return [
        {"request": {"url": "https://web.whatsapp.com/"}, "failure": web},
        {"request": {"url": "https://v.whatsapp.net/v2/register"}, "failure": registration},
    ]


def tg_requests(*failures: str | None, web: str | None = None) -> list[Any]:
    dc = [{"request": {"url": "http://149.154.175.50/"}, "failure": f} for f in failures]
    return [*dc, {"request": {"url": "https://web.telegram.org/"}, "failure": web}]


FB_CLEAN = {
    f"facebook_{s}_{k}": True
    for s in ("b_api", "b_graph", "edge", "star")
    for k in ("dns_consistent", "reachable")
} | {"facebook_stun_dns_consistent": True, "facebook_tcp_blocking": False}

SIGNAL_OK = {"failure": None, "failed_operation": None, "signal_backend_status": "ok"}
SIGNAL_NEW = {"test_version": "0.2.5", "measurement_start_time": "2024-01-01 00:00:06",
              "annotations": {"engine_version": "3.20.0"}}  # fmt: skip

ECHOED = {"Host": "x.org", "Accept": "*/*"}
HHFM_REQUEST = {"request": {"headers": ECHOED, "url": "http://37.218.247.95:80"}}


def hhfm(body: Any) -> dict[str, Any]:
    request = HHFM_REQUEST | {"response": {"body": body}, "failure": None}
    return m("http_header_field_manipulation", {"requests": [request]})


def echo(headers: dict[str, str]) -> str:
    import json

    return json.dumps({"headers_dict": {k: [v] for k, v in headers.items()}})


NAYATEL = (DATA / "blockpages" / "http" / "isp_pk_nayatel_block_optin.html").read_text("utf-8")


def http_requests(body: str, **tk: Any) -> dict[str, Any]:
    request = {"request": {"tor": {"is_tor": False}}, "response": {"body": body, "headers": {}}}
    keys = {"body_length_match": True, "headers_match": True, "requests": [request]}
    return m("http_requests", keys | tk, probe_cc="PK")


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # -- any test: unusable test keys (OONI scores {} as ok for some tests; we do not)
    ("no test keys", {"test_name": "signal"}, "failure", "test.no-keys"),
    ("null test keys", m("signal", None), "failure", "test.no-keys"),
    ("empty test keys", m("stunreachability", {}), "failure", "test.no-keys"),
    ("test keys not an object", m("tor", "nope"), "failure", "test.no-keys"),
    # OONI's float(tor_progress) would raise and drop the measurement
    ("tor_progress not a number", m("vanilla_tor", {"tor_logs": ["x"], "tor_progress": "?"}),
     "failure", "test.malformed"),
    # -- whatsapp: OONI recomputes from the requests and tcp_connect
    ("whatsapp: registration fails",
     sample("whatsapp.json", lambda x: x["test_keys"]["requests"][-1].update(
         failure="connection_reset")), "anomaly", "app.whatsapp.registration-blocked"),
    ("whatsapp: web app fails", m("whatsapp", {"requests": wa_requests(web="eof_error"),
     "tcp_connect": tcp(True)}), "anomaly", "app.whatsapp.web-blocked"),
    ("whatsapp: no endpoint connects", m("whatsapp", {"requests": wa_requests(),
     "tcp_connect": tcp(False, False)}), "anomaly", "app.whatsapp.endpoints-blocked"),
    ("whatsapp: one endpoint of three is enough", m("whatsapp", {"requests": wa_requests(),
     "tcp_connect": tcp(False, True, False)}), "ok", "app.whatsapp.ok"),
    ("whatsapp: no endpoint tried", m("whatsapp", {"requests": wa_requests(),
     "tcp_connect": []}), "failure", "app.whatsapp.incomplete"),
    ("whatsapp: probe status only", m("whatsapp", {"whatsapp_endpoints_status": "blocked",
     "whatsapp_endpoints_blocked": 5}), "failure", "app.whatsapp.incomplete"),
    ("whatsapp: unknown_failure", m("whatsapp", {"requests": wa_requests(),
     "registration_server_failure": "unknown_failure: x"}), "failure",
     "app.whatsapp.probe-error"),
    # -- telegram: unreachable share + failed-HTTP share (+1 if web blocked) > 0.5
    ("telegram: all reachable", m("telegram", {"tcp_connect": tcp(*[True] * 12),
     "requests": tg_requests(None, None)}), "ok", "app.telegram.ok"),
    ("telegram: data centres unreachable", m("telegram", {"tcp_connect": tcp(*[False] * 12),
     "requests": tg_requests("generic_timeout_error")}), "anomaly", "app.telegram.blocked"),
    ("telegram: web app only", m("telegram", {"tcp_connect": tcp(True), "requests":
     tg_requests(None, web="ssl_invalid_hostname"), "telegram_web_status": "blocked"}),
     "anomaly", "app.telegram.web-blocked"),
    # OONI counts 0.5 + 0.5 when nothing was tried: an anomaly
    ("telegram: nothing tried", m("telegram", {"telegram_web_status": "ok"}), "anomaly",
     "app.telegram.blocked"),
    # -- facebook_messenger: 0.5 per problem, anomaly from two problems
    ("messenger: OONI's dns_blocking workaround", m("facebook_messenger", FB_CLEAN |
     {"facebook_dns_blocking": True}), "ok", "app.facebook_messenger.ok"),
    ("messenger: one inconsistent answer is 0.5", m("facebook_messenger", FB_CLEAN |
     {"facebook_b_api_dns_consistent": False}), "ok", "app.facebook_messenger.ok"),
    ("messenger: DNS", m("facebook_messenger", FB_CLEAN | {"facebook_b_api_dns_consistent":
     False, "facebook_dns_blocking": True}), "anomaly", "app.facebook_messenger.dns"),
    ("messenger: TCP", m("facebook_messenger", FB_CLEAN | {"facebook_edge_reachable": False,
     "facebook_tcp_blocking": True}), "anomaly", "app.facebook_messenger.tcp"),
    # -- signal: known probe bugs first, then the backend status
    ("signal: blocked", m("signal", SIGNAL_OK | {"signal_backend_status": "blocked",
     "signal_backend_failure": "connection_reset"}, **SIGNAL_NEW), "anomaly",
     "app.signal.blocked"),
    ("signal: 0.2.4", m("signal", SIGNAL_OK, **SIGNAL_NEW | {"test_version": "0.2.4"}),
     "failure", "app.signal.probe-bug"),
    ("signal: 0.2.3 after 2023-11-07", m("signal", SIGNAL_OK, **SIGNAL_NEW |
     {"test_version": "0.2.3"}), "failure", "app.signal.probe-bug"),
    ("signal: test-level failure", m("signal", SIGNAL_OK | {"failure": "eof_error"},
     **SIGNAL_NEW), "failure", "app.signal.incomplete"),
    ("signal: no start time", m("signal", SIGNAL_OK, test_version="0.2.5"), "failure",
     "app.signal.incomplete"),
    ("signal: engine 3.17.0-alpha < 3.17.2", m("signal", SIGNAL_OK, **SIGNAL_NEW |
     {"annotations": {"engine_version": "3.17.0-alpha"}}), "failure", "app.signal.probe-bug"),
    # -- tor: failed share of the targets that ran > 0.5
    ("tor: 2 of 3 failed", sample("tor.json", lambda x: [t.update(failure="connect_error")
     for t in list(x["test_keys"]["targets"].values())[:2]]), "anomaly", "tor.blocked"),
    # exactly half of the targets that ran failed: 0.5 is not above the threshold
    ("tor: 1 of 2 that ran failed", sample("tor.json", lambda x: [t.update(failure=f) for t, f
     in zip(x["test_keys"]["targets"].values(), ("connect_error", False, None),
            strict=True)]), "ok", "tor.ok"),
    ("tor: none ran", sample("tor.json", lambda x: [t.update(failure=False)
     for t in x["test_keys"]["targets"].values()]), "failure", "tor.incomplete"),
    ("vanilla_tor: no log", m("vanilla_tor", {"tor_progress": 100}), "failure",
     "tor.bootstrap-incomplete"),
    # -- psiphon, openvpn
    ("psiphon: ok", m("psiphon", {"failure": None, "bootstrap_time": 6.3},
     resolver_ip="1.1.1.1"), "ok", "psiphon.ok"),
    ("psiphon: failed", m("psiphon", {"failure": "generic_timeout_error"},
     resolver_ip="1.1.1.1"), "anomaly", "psiphon.failed"),
    ("psiphon: no bootstrap time", m("psiphon", {"failure": None, "bootstrap_time": 0},
     resolver_ip="1.1.1.1"), "failure", "psiphon.incomplete"),
    ("openvpn: failed", sample("openvpn.json", lambda x: x["test_keys"].update(success=False,
     failure="eof_error")), "anomaly", "openvpn.failed"),
    ("openvpn: no success key", m("openvpn", {"remote": "x"}), "failure", "openvpn.incomplete"),
    # -- meek: 0.5 per answer from another server; two of them make an anomaly
    ("meek: two unexpected servers", sample("meek2.json", lambda x: x["test_keys"].update(
     requests=[{"response": {"code": 200, "headers": {"Server": "nginx"}}}] * 2)),
     "anomaly", "meek.unexpected-server"),
    ("meek: no answer", m("meek_fronted_requests_test", {"requests": [{"response": None,
     "failure": "connection_reset"}]}), "anomaly", "meek.failed"),
    ("meek: no request", m("meek_fronted_requests_test", {"requests": [], "success": None}),
     "failure", "meek.incomplete"),
    # -- http_header_field_manipulation: compare what the echo server saw
    ("hhfm: unchanged", hhfm(echo(ECHOED | {"Connection": "close"})), "ok", "hhfm.ok"),
    ("hhfm: a header changed", hhfm(echo({"host": "x.org", "Accept": "*/*"})), "anomaly",
     "hhfm.tampering"),
    ("hhfm: empty answer", hhfm(None), "anomaly", "hhfm.no-echo"),
    ("hhfm: not the echo server", hhfm("<html>blocked</html>"), "anomaly", "hhfm.no-echo"),
    # -- http_invalid_request_line
    ("hirl: unchanged", m("http_invalid_request_line", {"sent": ["a", "b"],
     "received": ["a", "b"], "tampering": True}), "ok", "hirl.ok"),
    ("hirl: nothing sent", m("http_invalid_request_line", {"sent": [], "received": []}),
     "failure", "hirl.incomplete"),
    # -- http_requests: a confirming fingerprint is OONI's "confirmed"
    ("http_requests: Nayatel blockpage", http_requests(NAYATEL), "anomaly",
     "http_requests.blockpage"),
    ("http_requests: other page", http_requests("<html>x</html>", body_length_match=False),
     "anomaly", "http_requests.diff"),
    ("http_requests: fetch failed", http_requests("", experiment_failure="dns_lookup_error"),
     "failure", "http_requests.incomplete"),
    # -- stunreachability (OONI's own unit-test inputs), tcp_connect, browser_web, dash, ndt
    ("stun: ok", m("stunreachability", {"endpoint": "stun.l.google.com:19302",
     "failure": None}), "ok", "stun.ok"),
    ("stun: failed", m("stunreachability", {"failure": "boo"}), "anomaly", "stun.failed"),
    ("tcp_connect: ok", m("tcp_connect", {"connection": "success"}, input="1.2.3.4:443"),
     "ok", "tcp_connect.ok"),
    ("tcp_connect: refused", m("tcp_connect", {"connection": "connection_refused_error"},
     input="1.2.3.4:443"), "anomaly", "tcp_connect.failed"),
    ("browser_web: no result", m("browser_web", {"load_time_ms": 3}), "failure",
     "browser_web.incomplete"),
    ("dash: ok", m("dash", {"failure": None, "simple": {}}), "ok", "dash.ok"),
    ("dash: failed", m("dash", {"failure": "connection_aborted"}), "failure", "dash.failed"),
    ("ndt", m("ndt", {"summary": {}}), "ok", "ndt.not-scored"),
    ("dnscheck", m("dnscheck", {"lookups": {}, "failure": None}), "failure",
     "dnscheck.not-scored"),
]  # fmt: skip


@pytest.mark.parametrize(("measurement", "outcome", "rule"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_built_cases(measurement: dict[str, Any], outcome: str, rule: str) -> None:
    verdict = score_test(measurement)
    assert verdict is not None
    assert (verdict.outcome, verdict.rule_id) == (outcome, rule), verdict.explanation
    assert "{" not in verdict.explanation


def test_explanations_carry_the_measurement_facts() -> None:
    verdict = score_test(records("ooni-extra/fastpath-testdata/vanilla_tor.json")[0])
    assert verdict is not None
    assert "5%" in verdict.explanation
    assert "generic_timeout_error" in verdict.explanation
    verdict = score_test(http_requests(NAYATEL))
    assert verdict is not None
    assert "ooni.pk_2" in verdict.explanation
    verdict = score_test(m("vanilla_tor", {"tor_logs": ["x"], "tor_progress": "?"}))
    assert verdict is not None
    assert "ValueError" in verdict.explanation


def test_judged_elsewhere_or_not_at_all() -> None:
    assert score_test({"test_name": "web_connectivity", "test_keys": {"x": 1}}) is None
    assert score_test({"test_name": "no_such_test", "test_keys": {"x": 1}}) is None
    assert score_test({"test_name": None, "test_keys": {"x": 1}}) is None
    assert score_test({}) is None
    assert score_test(None) is None  # type: ignore[arg-type]
    assert score_test([1, 2]) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# the rule table


def test_rule_table() -> None:
    ids = [r.id for r in FASTPATH_RULES]
    assert len(ids) == len(set(ids))
    for rule in FASTPATH_RULES:
        assert not rule.id.startswith("fp."), rule.id  # taken by the fingerprint rules
        assert rule.outcome in OUTCOMES, rule.id
        assert rule.method in METHODS, rule.id
        assert set(rule.tests) <= KNOWN_TESTS, rule.id
        assert (rule.method == "none") == (rule.outcome == "ok" and "not-scored" not in rule.id)
        fields = {f for _, f, _, _ in string.Formatter().parse(rule.template) if f}
        text = rule.template.format(**dict.fromkeys(fields, "X"))
        assert text.endswith("."), rule.id
        assert "{" not in text, rule.id
    required = {"signal", "whatsapp", "telegram", "facebook_messenger", "tor", "vanilla_tor",
                "torsf", "psiphon", "riseupvpn", "openvpn", "http_header_field_manipulation",
                "http_invalid_request_line", "meek_fronted_requests_test", "browser_web",
                "http_requests", "dnscheck", "stunreachability", "urlgetter"}  # fmt: skip
    assert required <= KNOWN_TESTS
    assert "web_connectivity" not in KNOWN_TESTS


def test_every_rule_is_reached_by_a_sample_or_a_case() -> None:
    reached = {c[3] for c in CASES} | {e[1] for e in SAMPLES.values() if e is not None}
    assert reached == set(FASTPATH_RULES_BY_ID)


# --------------------------------------------------------------------------------------
# never raises

KEYS = sorted(
    {k for name, e in SAMPLES.items() if e for r in records(name) for k in r["test_keys"]}
    | {"targets", "tor_logs", "tor_progress", "sent", "received", "result", "connection"}
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    test_name=st.sampled_from(sorted(KNOWN_TESTS)),
    test_keys=st.dictionaries(st.sampled_from(KEYS), JSON, max_size=6) | JSON,
    top=st.dictionaries(
        st.sampled_from(
            [
                "test_version",
                "measurement_start_time",
                "annotations",
                "software_name",
                "software_version",
                "input",
                "probe_cc",
            ]
        ),
        JSON,
        max_size=4,
    ),
)
def test_score_test_never_raises(test_name: str, test_keys: Any, top: dict[str, Any]) -> None:
    verdict = score_test({**top, "test_name": test_name, "test_keys": test_keys})
    assert verdict is not None
    assert verdict.outcome in OUTCOMES
    assert verdict.rule_id in FASTPATH_RULES_BY_ID
