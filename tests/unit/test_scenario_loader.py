"""Scenario files: malformed ones are refused with the file, the key and the problem named;
every shipped one loads; ``--check`` compares measurements with expectations exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blockproof.lab.check import compare, resolve_scenario_path, same_value
from blockproof.lab.scenario import (
    LAYERS,
    Expect,
    Scenario,
    ScenarioError,
    load_scenario,
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
    ("invalid TOML", "rtt_ms = = 3\n", "", "not valid TOML"),
    ("invalid TOML: unclosed table", "[probe\n", "", "not valid TOML"),
]


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


def test_there_are_enough_shipped_scenarios() -> None:
    assert len(SHIPPED) >= 32


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description
    assert scenario.description.endswith(".")
    assert "\n" not in scenario.description
    assert scenario.expect, "a shipped scenario is a regression test: it needs [[expect]]"
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


def test_resolve_an_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        resolve_scenario_path("atlantis-2031")
    message = str(info.value)
    assert "atlantis-2031" in message
    assert "pakistan-2024-x" in message
    assert "tls-reset" in message
