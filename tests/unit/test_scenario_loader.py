"""Scenario files: malformed ones are refused with the file, the key and the problem named;
every shipped one loads; ``--check`` compares measurements with expectations exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blockproof.lab.check import compare, resolve_scenario_path, same_value
from blockproof.lab.internet import PathResponse, ProbeView
from blockproof.lab.scenario import (
    LAYERS,
    Expect,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
    shipped_scenario_groups,
    shipped_scenarios,
)
from blockproof.model.measurement import Measurement

RULE_TLS = '[[rule]]\nlayer = "tls"\nmatch = ["x.com"]\naction = "reset"\n'
HOST = '[[host]]\nname = "news.example.com"\naddresses = ["93.184.215.99"]\n'

# (id, file content, key named in the error, words of the problem)
MALFORMED: list[tuple[str, str, str, str]] = [
    ("unknown top-level key", 'colour = "red"\n', "colour", "unknown key"),
    ("unknown probe key", '[probe]\ncountry = "PK"\n', "probe.country", "unknown key"),
    ("unknown rule key", RULE_TLS + 'sni = "x.com"\n', "rule[0].sni", "unknown key"),
    ("unknown host key", HOST + "port = 8080\n", "host[0].port", "unknown key"),
    (
        "non-string item in null",
        '[[expect]]\nurl = "https://x.com/"\nnull = [1]\n',
        "expect[0].null[0]",
        "non-empty string",
    ),
    ("wrong type: string for a number", 'rtt_ms = "fast"\n', "rtt_ms", "expected a number"),
    ("wrong type: boolean for an integer", "[probe]\nasn = true\n", "probe.asn", "boolean"),
    ("wrong type: string for a boolean", HOST + 'http = "yes"\n', "host[0].http", "true or false"),
    ("wrong type: table for a list", "rule = 3\n", "rule", "expected a list"),
    ("wrong type: probe not a table", 'probe = "PK"\n', "probe", "expected a table"),
    (
        "bad action",
        '[[rule]]\nlayer = "tls"\nmatch = ["x.com"]\naction = "rst"\n',
        "rule[0].action",
        "'rst' is not a tls action (reset, fin, drop, mitm)",
    ),
    (
        "bad layer",
        '[[rule]]\nlayer = "ip"\nmatch = ["x.com"]\naction = "drop"\n',
        "rule[0].layer",
        "'ip' is not one of",
    ),
    (
        "missing action",
        '[[rule]]\nlayer = "dns"\nmatch = ["x.com"]\n',
        "rule[0].action",
        "is required",
    ),
    (
        "bad host address",
        '[[host]]\nname = "a.example"\naddresses = ["300.1.1.1"]\n',
        "host[0].addresses[0]",
        "'300.1.1.1' is not an IP address",
    ),
    (
        "bad forged answer",
        '[[rule]]\nlayer = "dns"\nmatch = ["x.com"]\naction = "forge"\nanswer = "blockpage"\n',
        "rule[0].answer",
        "'blockpage' is not an IP address",
    ),
    (
        "bad tcp ips",
        '[[rule]]\nlayer = "tcp"\nips = ["1.2.3"]\naction = "refuse"\n',
        "rule[0].ips[0]",
        "'1.2.3' is not an IP address",
    ),
    (
        "forge without answer",
        '[[rule]]\nlayer = "dns"\nmatch = ["x.com"]\naction = "forge"\n',
        "rule[0].answer",
        "needs the forged address",
    ),
    (
        "missing addresses",
        '[[host]]\nname = "a.example"\n',
        "host[0].addresses",
        "at least one address",
    ),
    (
        "empty addresses",
        '[[host]]\nname = "a.example"\naddresses = []\n',
        "host[0].addresses",
        "at least one address",
    ),
    ("missing host name", '[[host]]\naddresses = ["1.2.3.4"]\n', "host[0].name", "is required"),
    (
        "host defined twice",
        HOST + HOST,
        "host[1].name",
        "defined twice",
    ),
    (
        "bad expect URL",
        '[[expect]]\nurl = "x.com"\nblocking = false\n',
        "expect[0].url",
        "'x.com' is not an http:// or https:// URL",
    ),
    ("missing expect URL", "[[expect]]\nblocking = false\n", "expect[0].url", "is required"),
    (
        "bad redirect URL",
        HOST + 'redirect_https = "ftp://news.example.com/"\n',
        "host[0].redirect_https",
        "is not an http:// or https:// URL",
    ),
    (
        "redirect rule without location",
        '[[rule]]\nlayer = "http"\nmatch = ["x.com"]\naction = "redirect"\n',
        "rule[0].location",
        "needs an http:// or https:// location",
    ),
    (
        "unknown blockpage in a rule",
        '[[rule]]\nlayer = "http"\nmatch = ["x.com"]\naction = "blockpage"\nblockpage = "nope"\n',
        "rule[0].blockpage",
        "unknown blockpage 'nope'; known: ",
    ),
    (
        "unknown blockpage on a host",
        HOST + 'blockpage = "nope"\n',
        "host[0].blockpage",
        "unknown blockpage 'nope'",
    ),
    (
        "bad pattern: star inside a label",
        '[[rule]]\nlayer = "tls"\nmatch = ["x*.com"]\naction = "reset"\n',
        "rule[0].match[0]",
        "'*' is only allowed as '*' or '*.domain'",
    ),
    (
        "bad pattern: star without a dot",
        '[[rule]]\nlayer = "tls"\nmatch = ["x.com", "*x.com"]\naction = "reset"\n',
        "rule[0].match[1]",
        "'*' is only allowed",
    ),
    (
        "rule without patterns",
        '[[rule]]\nlayer = "tls"\naction = "reset"\n',
        "rule[0].match",
        "needs domain patterns",
    ),
    ("bad country code", '[probe]\ncc = "pk"\n', "probe.cc", "two-letter upper-case"),
    ("bad AS number", "[probe]\nasn = -1\n", "probe.asn", "is not an AS number"),
    ("rtt out of range", "rtt_ms = -5\n", "rtt_ms", "between 0 and 5000"),
    (
        "bad choice",
        HOST + 'cert = "bogus"\n',
        "host[0].cert",
        "'bogus' is not one of valid, expired, wrong_host, self_signed",
    ),
    (
        "bad port",
        '[[rule]]\nlayer = "tcp"\nmatch = ["x.com"]\naction = "refuse"\nports = [70000]\n',
        "rule[0].ports[0]",
        "70000 is not a port number",
    ),
    (
        "throttle without a rate or delay",
        '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\n',
        "rule[0].rate_kbps",
        "needs rate_kbps or delay_ms",
    ),
    (
        "expect key both valued and null",
        '[[expect]]\nurl = "https://x.com/"\nblocking = false\nnull = ["blocking"]\n',
        "expect[0].blocking",
        "both given a value and listed in null",
    ),
    # --- host: body, headers, paths, probe view, role ---
    ("body_bytes over 64 MiB", HOST + "body_bytes = 67108865\n", "host[0].body_bytes",
     "between 0 and 67108864"),
    ("body and body_bytes", HOST + 'body = "hi"\nbody_bytes = 3\n', "host[0].body_bytes",
     "either body"),
    ("body not a string", HOST + "body = 3\n", "host[0].body", "expected a string"),
    ("headers not a table", HOST + 'headers = "X: y"\n', "host[0].headers", "expected a table"),
    ("header value not a string", HOST + "headers = { X-A = 1 }\n", "host[0].headers.X-A",
     "expected a string"),
    ("bad header name", HOST + 'headers = { "X A" = "b" }\n', "host[0].headers.X A",
     "not an HTTP header name"),
    ("header value with CRLF", HOST + 'headers = { X-A = "b\\r\\nX-B: c" }\n',
     "host[0].headers.X-A", "control character"),
    ("framing header", HOST + 'headers = { Content-Length = "5" }\n',
     "host[0].headers.Content-Length", "sets Content-Length itself"),
    ("path without path", HOST + '[[host.path]]\nlocation = "/2"\n', "host[0].path[0].path",
     "is required"),
    ("path not a target", HOST + '[[host.path]]\npath = "1"\n', "host[0].path[0].path",
     "not a request target"),
    ("path with a bad redirect status", HOST + '[[host.path]]\npath = "/1"\nlocation = "/2"\n'
     "status = 200\n", "host[0].path[0].status", "200 is not a redirect status"),
    ("path page with a bad status", HOST + '[[host.path]]\npath = "/1"\nstatus = 99\n',
     "host[0].path[0].status", "not an HTTP status code of a page"),
    ("path redirect with a page", HOST + '[[host.path]]\npath = "/1"\nlocation = "/2"\n'
     'title = "t"\n', "host[0].path[0].title", "has no page"),
    ("path empty location", HOST + '[[host.path]]\npath = "/1"\nlocation = ""\n',
     "host[0].path[0].location", "cannot be empty"),
    ("path bad scheme", HOST + '[[host.path]]\npath = "/1"\nscheme = "ftp"\n',
     "host[0].path[0].scheme", "'ftp' is not one of"),
    ("path unknown key", HOST + '[[host.path]]\npath = "/1"\nmethod = "GET"\n',
     "host[0].path[0].method", "unknown key"),
    ("path twice", HOST + '[[host.path]]\npath = "/1"\n[[host.path]]\npath = "/1"\n'
     'scheme = "https"\n', "host[0].path[1].path", "'/1' is defined twice"),
    ("path body too large", HOST + '[[host.path]]\npath = "/1"\nbody_bytes = -1\n',
     "host[0].path[0].body_bytes", "between 0 and"),
    ("probe view not a table", HOST + 'probe = "captcha"\n', "host[0].probe",
     "expected a table"),
    ("probe view unknown key", HOST + "[host.probe]\ncode = 503\n", "host[0].probe.code",
     "unknown key"),
    ("probe view bad status", HOST + "[host.probe]\nstatus = 600\n", "host[0].probe.status",
     "not an HTTP status code"),
    ("probe view location with a body", HOST + '[host.probe]\nlocation = "http://"\n'
     'body = "x"\n', "host[0].probe.body", "has no page"),
    ("probe view bad redirect", HOST + '[host.probe]\nredirect_http = "x.com"\n',
     "host[0].probe.redirect_http", "not an http:// or https:// URL"),
    ("bad role", HOST + 'role = "router"\n', "host[0].role", "'router' is not one of site, "
     "isp_proxy"),
    ("isp proxy with a page", HOST + 'role = "isp_proxy"\ntitle = "x"\n', "host[0].title",
     "relays to the real sites"),
    ("paths on a blockpage server", HOST + 'blockpage = "isp_by_beltelecom_block"\n'
     '[[host.path]]\npath = "/1"\n', "host[0].path", "answers in its own way"),
    ("bad IDN host name", '[[host]]\nname = "a..b\u00e9"\naddresses = ["192.0.2.1"]\n',
     "host[0].name", "not a valid internationalized domain name"),
    # --- rules: ips/ports on more layers, http fin, blockpage status/body, loss ---
    ("ips on dns", '[[rule]]\nlayer = "dns"\nmatch = ["x.com"]\naction = "nxdomain"\n'
     'ips = ["1.2.3.4"]\n', "rule[0].ips", "unknown key"),
    ("bad tls ips", '[[rule]]\nlayer = "tls"\nips = ["1.2.3"]\naction = "reset"\n',
     "rule[0].ips[0]", "'1.2.3' is not an IP address"),
    ("bad http port", '[[rule]]\nlayer = "http"\nips = ["1.2.3.4"]\naction = "fin"\n'
     "ports = [0]\n", "rule[0].ports[0]", "0 is not a port number"),
    ("http rule without match or ips", '[[rule]]\nlayer = "http"\naction = "fin"\n'
     "ports = [80]\n", "rule[0].match", "needs domain patterns"),
    ("blockpage bad status", '[[rule]]\nlayer = "http"\nmatch = ["x.com"]\n'
     'action = "blockpage"\nstatus = 99\n', "rule[0].status", "not an HTTP status code"),
    ("blockpage body and file", '[[rule]]\nlayer = "http"\nmatch = ["x.com"]\n'
     'action = "blockpage"\nbody = "x"\nblockpage = "isp_by_beltelecom_block"\n',
     "rule[0].body", "either blockpage"),
    ("status on an http reset", '[[rule]]\nlayer = "http"\nmatch = ["x.com"]\n'
     'action = "reset"\nstatus = 451\n', "rule[0].status", "unknown key"),
    ("loss of one", '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nloss = 1.0\n',
     "rule[0].loss", "below 1"),
    ("negative loss", '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nloss = -0.1\n',
     "rule[0].loss", "at least 0"),
    ("loss not a number", '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nloss = "10%"\n',
     "rule[0].loss", "expected a number"),
    ("bad IDN pattern", '[[rule]]\nlayer = "tls"\nmatch = ["*.a..\u00e9"]\naction = "reset"\n',
     "rule[0].match[0]", "not a valid internationalized domain name"),
    # --- probe ---
    ("bad getaddrinfo", '[probe]\ngetaddrinfo = "ios"\n', "probe.getaddrinfo",
     "'ios' is not one of default, android"),
    ("invalid TOML", "rtt_ms = = 3\n", "", "not valid TOML"),
    ("invalid TOML: unclosed table", "[probe\n", "", "not valid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_scenario_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = tmp_path / "broken-scenario.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    message = str(error)
    assert "broken-scenario.toml" in message
    assert error.key == key
    if key:
        assert f": {key}: " in message
    assert problem in error.problem
    assert problem in message


# --- what the new keys become --------------------------------------------------------------


def _one(data: dict[str, Any]) -> Scenario:
    return parse_scenario(data, source="t.toml", name="t")


def _host(**keys: Any) -> Any:
    scenario = _one({"host": [{"name": "site.example", "addresses": ["192.0.2.7"], **keys}]})
    host = scenario.host("site.example")
    assert host is not None
    return host


# (id, host keys, attribute, expected value)
HOST_KEYS: list[tuple[str, dict[str, Any], str, Any]] = [
    ("32 MiB body", {"body_bytes": 32 << 20}, "body_bytes", 32 << 20),
    ("64 MiB body", {"body_bytes": 64 << 20}, "body_bytes", 64 << 20),
    ("exact body", {"body": "<html>hi</html>"}, "body", "<html>hi</html>"),
    ("headers", {"headers": {"Server": "cloudflare", "CF-RAY": "1"}}, "headers",
     (("Server", "cloudflare"), ("CF-RAY", "1"))),
    ("redirect path", {"path": [{"path": "/1", "location": "/2"}]}, "paths",
     (PathResponse(path="/1", location="/2"),)),
    ("broken location", {"path": [{"path": "/b", "location": "https://[::1", "status": 307}]},
     "paths", (PathResponse(path="/b", location="https://[::1", status=307),)),
    ("page path", {"path": [{"path": "/p?q=1", "scheme": "https", "status": 404,
                             "title": "Not here", "body_bytes": 10}]},
     "paths", (PathResponse(path="/p?q=1", scheme="https", status=404, title="Not here",
                            body_bytes=10),)),
    ("probe view", {"probe": {"status": 503, "title": "Just a moment...", "body": "captcha",
                              "headers": {"Server": "cloudflare"}}},
     "probe", ProbeView(status=503, title="Just a moment...", body="captcha",
                        headers=(("Server", "cloudflare"),))),
    ("probe redirect", {"probe": {"location": "http://"}}, "probe",
     ProbeView(location="http://")),
    ("probe redirect_https", {"probe": {"redirect_https": "https://x.com/"}}, "probe",
     ProbeView(redirect_https="https://x.com/")),
    ("isp proxy", {"role": "isp_proxy"}, "role", "isp_proxy"),
    ("site by default", {}, "role", "site"),
    ("IDN name", {"name": "Яндекс.РФ"}, "name", "xn--d1acpjx3f.xn--p1ai"),
    ("IDN alias", {"aliases": ["پاکستان.پاکستان"]}, "aliases",
     ("xn--mgbai9azgqp6j.xn--mgbai9azgqp6j",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "attribute", "expected"),
    [case[1:] for case in HOST_KEYS],
    ids=[case[0] for case in HOST_KEYS],
)
def test_host_keys(keys: dict[str, Any], attribute: str, expected: Any) -> None:
    name = keys.pop("name", "site.example")
    scenario = _one({"host": [{"name": name, "addresses": ["192.0.2.7"], **keys}]})
    host = scenario.host(name)
    assert host is not None
    assert getattr(host, attribute) == expected


# (id, rule table, attribute, expected value)
RULE_KEYS: list[tuple[str, dict[str, Any], str, Any]] = [
    ("http fin", {"layer": "http", "match": ["x.com"], "action": "fin"}, "action", "fin"),
    ("tls reset on one address", {"layer": "tls", "ips": ["104.244.42.1"], "ports": [443],
                                  "action": "reset"}, "ips", ("104.244.42.1",)),
    ("tls match and ips", {"layer": "tls", "match": ["x.com"], "ips": ["104.244.42.1"],
                           "action": "reset"}, "match", ("x.com",)),
    ("http ports", {"layer": "http", "ips": ["93.184.215.14"], "ports": [80], "action": "fin"},
     "ports", (80,)),
    ("throttle endpoint", {"layer": "throttle", "ips": ["93.184.215.14"], "ports": [80],
                           "delay_ms": 300, "loss": 0.1}, "loss", 0.1),
    ("throttle loss only", {"layer": "throttle", "match": ["x.com"], "loss": 0.5}, "loss", 0.5),
    ("blockpage 451", {"layer": "http", "match": ["x.com"], "action": "blockpage",
                       "status": 451}, "status", 451),
    ("inline blockpage", {"layer": "http", "match": ["x.com"], "action": "blockpage",
                          "body": "<html>blocked</html>"}, "body", "<html>blocked</html>"),
    ("IDN pattern", {"layer": "dns", "match": ["Яндекс.РФ", "*.яндекс.рф"], "action": "nxdomain"},
     "match", ("xn--d1acpjx3f.xn--p1ai", "*.xn--d1acpjx3f.xn--p1ai")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "attribute", "expected"),
    [case[1:] for case in RULE_KEYS],
    ids=[case[0] for case in RULE_KEYS],
)
def test_rule_keys(rule: dict[str, Any], attribute: str, expected: Any) -> None:
    (parsed,) = _one({"rule": [rule]}).rules
    assert getattr(parsed, attribute) == expected


def test_probe_getaddrinfo() -> None:
    assert _one({}).probe.getaddrinfo == "default"
    assert _one({"probe": {"getaddrinfo": "android"}}).probe.getaddrinfo == "android"


def test_idn_names_are_found_in_any_form() -> None:
    scenario = _one({"host": [{"name": "Яндекс.РФ", "addresses": ["192.0.2.9"]}]})
    host = scenario.host("xn--d1acpjx3f.xn--p1ai")
    assert host is not None
    assert host.title == "Яндекс.РФ"  # the page keeps the name as written
    assert scenario.host("яндекс.рф") is host
    assert scenario.host("ЯНДЕКС.рф.") is host


def test_resolver_patterns_are_idna_too() -> None:
    scenario = _one({"resolver": [{"hostile": "wrong_id", "match": ["Яндекс.РФ"]}]})
    assert scenario.hostile_dns("xn--d1acpjx3f.xn--p1ai") == "wrong_id"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "nowhere.toml" in str(info.value)
    assert "no such file" in str(info.value)


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'description = "caf\xe9"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "latin1.toml" in str(info.value)
    assert "cannot read" in str(info.value)


def test_a_minimal_scenario_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(RULE_TLS, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "tiny"
    assert scenario.probe.cc == "ZZ"
    assert scenario.rules[0].inspect == "reassemble"
    assert scenario.host("x.com") is not None


SHIPPED = shipped_scenarios()
OURS = shipped_scenario_groups()[0][1]


def test_there_are_enough_shipped_scenarios() -> None:
    assert len(OURS) >= 32


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description
    assert scenario.description.endswith(".")
    assert "\n" not in scenario.description
    assert scenario.expect, "a shipped scenario is a regression test: it needs [[expect]]"


@pytest.mark.parametrize("path", OURS, ids=[p.stem for p in OURS])
def test_our_scenarios_name_methods_and_the_main_keys(path: Path) -> None:
    """Ours state our verdict's method; the QA catalogue's state what OONI's cases state."""
    scenario = load_scenario(path)
    for expect in scenario.expect:
        assert expect.method is not None, f"{expect.url}: every expectation names a method"
        assert expect.rule_id is None, "rule ids belong to the classifier: assert method"
        named = set(expect.keys) | set(expect.null)
        required = {
            "blocking",
            "accessible",
            "dns_consistency",
            "http_experiment_failure",
            "x_blocking_flags",
        }
        assert required <= named, f"{expect.url}: missing {sorted(required - named)}"


def test_shipped_scenarios_cover_every_rule_action() -> None:
    seen = {(r.layer, r.action) for p in SHIPPED for r in load_scenario(p).rules}
    wanted = {(layer, action) for layer, actions in LAYERS.items() for action in actions}
    assert wanted <= seen, f"no shipped scenario uses {sorted(wanted - seen)}"


# --- compare ------------------------------------------------------------------------------


def measurement(url: str, **test_keys: Any) -> Measurement:
    return Measurement(
        test_name="web_connectivity",
        test_version="0.5.28",
        input=url,
        measurement_start_time="2024-02-17 10:00:00",
        test_start_time="2024-02-17 10:00:00",
        test_keys=test_keys,
    )


def scenario_expecting(*expects: Expect) -> Scenario:
    return Scenario(name="t", expect=expects)


BLOCKED = Expect(
    url="https://x.com/",
    keys={"blocking": "http-failure", "accessible": False, "x_blocking_flags": 4},
    null=("dns_experiment_failure",),
    method="tls",
)
BLOCKED_KEYS: dict[str, Any] = {
    "blocking": "http-failure",
    "accessible": False,
    "x_blocking_flags": 4,
    "dns_experiment_failure": None,
    "x_verdict": {"method": "tls", "rule_id": "wc.tls.failure", "explanation": "..."},
}


def test_compare_all_good() -> None:
    assert (
        compare(scenario_expecting(BLOCKED), [measurement("https://x.com/", **BLOCKED_KEYS)]) == []
    )


def test_compare_reports_a_wrong_value_like_the_docs_say() -> None:
    keys = {**BLOCKED_KEYS, "blocking": False}
    problems = compare(scenario_expecting(BLOCKED), [measurement("https://x.com/", **keys)])
    assert problems == ["https://x.com/: blocking: expected 'http-failure', got False"]


def test_compare_missing_measurement() -> None:
    problems = compare(scenario_expecting(BLOCKED), [measurement("https://t.co/", **BLOCKED_KEYS)])
    assert problems == ["https://x.com/: no measurement of this URL"]


@pytest.mark.parametrize(
    ("key", "got"),
    [
        ("accessible", 0),  # 0 == False in Python, not in JSON
        ("x_blocking_flags", True),  # hypothetically 4 vs True: never equal anyway
        ("x_blocking_flags", "4"),
    ],
)
def test_compare_is_type_strict(key: str, got: Any) -> None:
    keys = {**BLOCKED_KEYS, key: got}
    problems = compare(scenario_expecting(BLOCKED), [measurement("https://x.com/", **keys)])
    assert len(problems) == 1
    assert problems[0].startswith(f"https://x.com/: {key}: expected ")


def test_compare_bool_against_int_both_ways() -> None:
    expect = Expect(url="http://a.example/", keys={"x_null_null_flags": 1, "accessible": True})
    keys = {"x_null_null_flags": True, "accessible": 1}
    problems = compare(scenario_expecting(expect), [measurement("http://a.example/", **keys)])
    assert problems == [
        "http://a.example/: x_null_null_flags: expected 1, got True",
        "http://a.example/: accessible: expected True, got 1",
    ]


def test_compare_null_and_missing_keys() -> None:
    keys = {k: v for k, v in BLOCKED_KEYS.items() if k != "accessible"}
    keys["dns_experiment_failure"] = "dns_nxdomain_error"
    problems = compare(scenario_expecting(BLOCKED), [measurement("https://x.com/", **keys)])
    assert problems == [
        "https://x.com/: accessible: expected False, got (missing)",
        "https://x.com/: dns_experiment_failure: expected None, got 'dns_nxdomain_error'",
    ]


def test_compare_null_must_be_present() -> None:
    keys = {k: v for k, v in BLOCKED_KEYS.items() if k != "dns_experiment_failure"}
    problems = compare(scenario_expecting(BLOCKED), [measurement("https://x.com/", **keys)])
    assert problems == ["https://x.com/: dns_experiment_failure: expected None, got (missing)"]


def test_compare_method_and_rule_id() -> None:
    expect = Expect(url="https://x.com/", method="dns", rule_id="wc.dns.nxdomain")
    problems = compare(scenario_expecting(expect), [measurement("https://x.com/", **BLOCKED_KEYS)])
    assert problems == [
        "https://x.com/: method: expected 'dns', got 'tls'",
        "https://x.com/: rule_id: expected 'wc.dns.nxdomain', got 'wc.tls.failure'",
    ]


def test_compare_without_verdict() -> None:
    keys = {k: v for k, v in BLOCKED_KEYS.items() if k != "x_verdict"}
    problems = compare(scenario_expecting(BLOCKED), [measurement("https://x.com/", **keys)])
    assert problems == ["https://x.com/: method: expected 'tls', got no x_verdict in test_keys"]


def test_compare_several_expectations_for_one_url() -> None:
    first = Expect(url="https://x.com/", keys={"blocking": "http-failure"})
    second = Expect(url="https://x.com/", keys={"x_blocking_flags": 5})
    problems = compare(
        scenario_expecting(first, second), [measurement("https://x.com/", **BLOCKED_KEYS)]
    )
    assert problems == ["https://x.com/: x_blocking_flags: expected 5, got 4"]


def test_compare_ignores_unexpected_urls() -> None:
    extra = measurement("https://t.co/", blocking="dns")
    assert (
        compare(scenario_expecting(BLOCKED), [extra, measurement("https://x.com/", **BLOCKED_KEYS)])
        == []
    )


@pytest.mark.parametrize(
    ("expected", "got", "same"),
    [
        (False, False, True),
        (False, 0, False),
        (0, False, False),
        (1, True, False),
        (4, 4, True),
        (1, 1.0, True),
        ("4", 4, False),
        (None, None, True),
        (None, False, False),
        (False, None, False),
        ([1, 2], [1, 2], True),
        ([1, True], [1, 1], False),
        ({"a": False}, {"a": 0}, False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ("abc", ["a", "b", "c"], False),
    ],
)
def test_same_value(expected: Any, got: Any, same: bool) -> None:
    assert same_value(expected, got) is same


# --- resolve_scenario_path ------------------------------------------------------------------


def test_resolve_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(RULE_TLS, encoding="utf-8")
    assert resolve_scenario_path(str(path)) == path


@pytest.mark.parametrize("name", ["pakistan-2024-x", "pakistan-2024-x.toml"])
def test_resolve_a_shipped_name(name: str) -> None:
    path = resolve_scenario_path(name)
    assert path.name == "pakistan-2024-x.toml"
    assert path.is_file()


def test_shipped_groups_ours_first_then_the_qa_catalogue() -> None:
    groups = shipped_scenario_groups()
    assert [heading for heading, _ in groups] == [
        "blockproof's scenarios",
        "OONI QA catalogue (probe-cli internal/webconnectivityqa)",
    ]
    ours, qa = groups[0][1], groups[1][1]
    assert all(p.parent.name == "scenarios" for p in ours)
    assert all(p.parent.name == "ooni-qa" for p in qa)
    assert shipped_scenarios() == ours + qa


def test_resolve_a_qa_catalogue_name() -> None:
    qa = shipped_scenario_groups()[1][1]
    if not qa:
        pytest.skip("the QA catalogue has no scenario yet")
    assert resolve_scenario_path(qa[0].stem) == qa[0]
    assert resolve_scenario_path(qa[0].name) == qa[0]


def test_resolve_an_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        resolve_scenario_path("atlantis-2031")
    message = str(info.value)
    assert "atlantis-2031" in message
    assert "pakistan-2024-x" in message
    assert "tls-reset" in message


def test_the_example_in_the_docs_is_a_valid_scenario() -> None:
    """docs/lab.md's annotated scenario parses, and says what it shows."""
    import re
    import tomllib

    docs = (Path(__file__).parents[2] / "docs" / "lab.md").read_text(encoding="utf-8")
    found = re.search(r"```toml\n(.*?)```", docs, re.DOTALL)
    assert found, "docs/lab.md lost its example scenario"
    scenario = parse_scenario(tomllib.loads(found.group(1)), source="lab.md", name="example")
    news = scenario.host("news.example.com")
    assert news is not None
    assert news.paths[0].location == "/redirect/2"
    assert news.probe is not None
    assert news.probe.status == 503
    assert not any(ip.startswith("203.0.113.") for ip in news.addresses), "a bogon"
