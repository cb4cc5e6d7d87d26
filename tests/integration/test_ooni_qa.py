"""OONI's Web Connectivity QA catalogue, run in the lab.

probe-cli tests its probe against ``internal/webconnectivityqa`` (``AllTestCases()``):
one emulated censorship condition per case, with the test keys the 0.5 ("LTE") engine
must produce. ``src/blockproof/lab/scenarios/ooni-qa/`` holds one scenario per case,
named after it in kebab case; each carries OONI's expected keys, every key OONI's QA
compares (``x_status`` aside, as OONI's comparer ignores it for 0.5). This module runs
the real probe on each and demands OONI's exact keys.

A known difference from OONI is never hidden by editing OONI's value: the case is listed
in ``KNOWN_DIFFERENCES`` with the one key that differs, the value we give and why, and the
test fails if the difference disappears or changes. Cases the lab cannot express are in
``NOT_EXPRESSIBLE`` (docs/lab.md, "OONI's QA catalogue"). ``LONG`` cases (LongTest in
OONI's QA, and the large downloads) run with ``-m long``.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from blockproof.codec.ooni import measurement_to_json, web_observations_from_test_keys
from blockproof.lab.check import compare
from blockproof.lab.run import run_scenario
from blockproof.lab.scenario import Scenario, load_scenario
from blockproof.verdict.fastpath import ooni_web_outcome
from blockproof.verdict.fingerprints import confirms
from blockproof.verdict.judge import find_fingerprints, judge_web
from ooni_tools import assert_ooni_can_read

pytestmark = pytest.mark.lab

FOLDER = Path(str(resources.files("blockproof.lab") / "scenarios" / "ooni-qa"))
FILES = sorted(FOLDER.glob("*.toml"))

# Every key OONI's QA compares (webconnectivityqa/testkeys.go), x_status excepted.
OONI_KEYS = frozenset(
    {
        "blocking",
        "accessible",
        "dns_consistency",
        "dns_experiment_failure",
        "http_experiment_failure",
        "control_failure",
        "x_blocking_flags",
        "x_dns_flags",
        "x_null_null_flags",
        "body_proportion",
        "body_length_match",
        "status_code_match",
        "headers_match",
        "title_match",
    }
)

# AllTestCases() in probe-cli's internal/webconnectivityqa/testcase.go.
ALL_CASES = frozenset(
    {
        "badSSLWithUnknownAuthorityWithConsistentDNS",
        "badSSLWithExpiredCertificate",
        "badSSLWithWrongServerName",
        "badSSLWithUnknownAuthorityWithInconsistentDNS",
        "cloudflareCAPTCHAWithHTTP",
        "cloudflareCAPTCHAWithHTTPS",
        "controlFailureWithSuccessfulHTTPWebsite",
        "controlFailureWithSuccessfulHTTPSWebsite",
        "dnsBlockingAndroidDNSCacheNoData",
        "dnsBlockingBOGON",
        "dnsBlockingNXDOMAIN",
        "dnsHijackingToLocalhostWithHTTP",
        "dnsHijackingToLocalhostWithHTTPS",
        "dnsHijackingToProxyWithHTTPURL",
        "dnsHijackingToProxyWithHTTPSURL",
        "ghostDNSBlockingWithHTTP",
        "ghostDNSBlockingWithHTTPS",
        "httpBlockingConnectionReset",
        "httpDiffWithConsistentDNS",
        "httpDiffWithInconsistentDNS",
        "idnaWithoutCensorshipLowercase",
        "idnaWithoutCensorshipWithFirstLetterUppercase",
        "largeFileWithHTTP",
        "largeFileWithHTTPS",
        "localhostWithHTTP",
        "localhostWithHTTPS",
        "redirectWithBrokenLocationForHTTP",
        "redirectWithBrokenLocationForHTTPS",
        "redirectWithConsistentDNSAndThenConnectionRefusedForHTTP",
        "redirectWithConsistentDNSAndThenConnectionRefusedForHTTPS",
        "redirectWithConsistentDNSAndThenConnectionResetForHTTP",
        "redirectWithConsistentDNSAndThenConnectionResetForHTTPS",
        "redirectWithConsistentDNSAndThenNXDOMAIN",
        "redirectWithConsistentDNSAndThenEOFForHTTP",
        "redirectWithConsistentDNSAndThenEOFForHTTPS",
        "redirectWithConsistentDNSAndThenTimeoutForHTTP",
        "redirectWithConsistentDNSAndThenTimeoutForHTTPS",
        "redirectWithMoreThanTenRedirectsAndHTTP",
        "redirectWithMoreThanTenRedirectsAndHTTPS",
        "successWithHTTP",
        "successWithHTTPS",
        "tcpBlockingConnectTimeout",
        "tcpBlockingConnectionRefusedWithInconsistentDNS",
        "throttlingWithHTTP",
        "throttlingWithHTTPS",
        "tlsBlockingConnectionResetWithConsistentDNS",
        "tlsBlockingConnectionResetWithInconsistentDNS",
        "websiteDownNXDOMAIN",
        "websiteDownNoAddrs",
        "websiteDownTCPConnect",
    }
)

# LongTest in OONI's QA, and the large downloads (32 MiB, throttled or not).
LONG = frozenset(
    {
        "largeFileWithHTTP",
        "largeFileWithHTTPS",
        "redirectWithBrokenLocationForHTTP",
        "redirectWithBrokenLocationForHTTPS",
        "redirectWithConsistentDNSAndThenTimeoutForHTTP",
        "redirectWithConsistentDNSAndThenTimeoutForHTTPS",
        "redirectWithMoreThanTenRedirectsAndHTTP",
        "redirectWithMoreThanTenRedirectsAndHTTPS",
        "throttlingWithHTTP",
        "throttlingWithHTTPS",
    }
)


# case -> (the one key that differs, the value we give, why). At most three; none today
# (docs/classifier.md, "Deliberate differences from OONI").
KNOWN_DIFFERENCES: dict[str, tuple[str, Any, str]] = {}

# case -> why the lab cannot express it (docs/lab.md, "OONI's QA catalogue"). At most three.
NOT_EXPRESSIBLE: dict[str, str] = {
    "websiteDownNoAddrs": (
        "every resolver, the control's included, answers www.example.com with a CNAME and "
        "no address; a lab host needs an address and the control's resolver is never censored"
    ),
}

# The cases where the site fails for the control too: our outcome says "down" (no
# evidence either way), where OONI counts ok (or, with an unknown_failure, failure).
DOWN_FOR_EVERYONE = frozenset(
    {
        "badSSLWithExpiredCertificate",
        "badSSLWithUnknownAuthorityWithConsistentDNS",
        "badSSLWithWrongServerName",
        "localhostWithHTTP",
        "localhostWithHTTPS",
        "redirectWithMoreThanTenRedirectsAndHTTP",
        "redirectWithMoreThanTenRedirectsAndHTTPS",
        "websiteDownNXDOMAIN",
        "websiteDownTCPConnect",
    }
)

_CASE_RE = re.compile(r"^OONI webconnectivityqa case (\w+): ")


def case_name(path: Path) -> str:
    """The OONI case a file translates, from its description."""
    with path.open("rb") as file:
        description = tomllib.load(file).get("description", "")
    found = _CASE_RE.match(description)
    assert found, f"{path.name}: the description must start with 'OONI webconnectivityqa case X: '"
    return found.group(1)


def kebab(name: str) -> str:
    """``dnsBlockingNXDOMAIN`` -> ``dns-blocking-nxdomain``, as the files are named."""
    name = name.replace("HTTPSURL", "HTTPS-URL").replace("HTTPURL", "HTTP-URL")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", name)
    return name.lower().replace("--", "-")


CASES = {case_name(path): path for path in FILES}


def _params() -> list[Any]:
    marks = {name: [pytest.mark.long] if name in LONG else [] for name in CASES}
    return [pytest.param(name, CASES[name], id=name, marks=marks[name]) for name in sorted(CASES)]


def _with_value(scenario: Scenario, key: str, value: Any) -> Scenario:
    """The scenario with its expectation of ``key`` replaced by ``value``."""
    (expect,) = scenario.expect
    keys = {k: v for k, v in expect.keys.items() if k != key}
    null = tuple(k for k in expect.null if k != key)
    if value is None:
        null = (*null, key)
    else:
        keys[key] = value
    return replace(scenario, expect=(replace(expect, keys=keys, null=null),))


@pytest.mark.parametrize(("name", "path"), _params())
def test_ooni_qa_case(name: str, path: Path) -> None:
    scenario = load_scenario(path)
    measurements = asyncio.run(run_scenario(scenario))
    assert [m.input for m in measurements] == [e.url for e in scenario.expect]
    assert_ooni_can_read(measurements)
    _check_outcomes(name, scenario, measurements)
    problems = compare(scenario, measurements)
    if name not in KNOWN_DIFFERENCES:
        assert problems == [], "\n".join(problems)
        return
    key, ours, why = KNOWN_DIFFERENCES[name]
    url = scenario.expect[0].url
    changed = f"the known difference ({key}: {why}) changed:\n" + "\n".join(problems)
    assert len(problems) == 1, changed
    assert problems[0].startswith(f"{url}: {key}: "), changed
    assert compare(_with_value(scenario, key, ours), measurements) == []


def _check_outcomes(name: str, scenario: Scenario, measurements: list[Any]) -> None:
    """The pipeline's two outcomes for the measurement: OONI's count, from the keys
    OONI's QA expects, and ours ("down" exactly for the down-for-everyone cases)."""
    (expect,) = scenario.expect
    (measurement,) = measurements
    raw = measurement_to_json(measurement)
    keys = raw["test_keys"]
    obs = web_observations_from_test_keys(raw["input"], keys, binary=False)
    judged = judge_web(obs, probe_cc=raw["probe_cc"], recorded=keys)
    hits = [h.fingerprint for h in find_fingerprints(obs) if h.fingerprint.source == "ooni"]
    oonis = {**expect.keys, **dict.fromkeys(expect.null)}
    assert judged.ooni_outcome == ooni_web_outcome(
        oonis,
        matched=bool(hits),
        confirmed=any(confirms(fp, raw["probe_cc"]) for fp in hits),
    )
    assert (judged.outcome == "down") is (name in DOWN_FOR_EVERYONE), judged.rule_id


def test_catalogue_is_complete() -> None:
    assert len(FILES) == len(CASES), "two files translate the same case"
    assert set(CASES) | set(NOT_EXPRESSIBLE) == ALL_CASES
    assert not set(CASES) & set(NOT_EXPRESSIBLE)
    assert set(KNOWN_DIFFERENCES) <= set(CASES)
    assert set(CASES) >= LONG
    assert set(CASES) >= DOWN_FOR_EVERYONE
    assert len(KNOWN_DIFFERENCES) <= 3
    assert len(NOT_EXPRESSIBLE) <= 3


@pytest.mark.parametrize(("name", "path"), sorted(CASES.items()), ids=sorted(CASES))
def test_case_file_carries_every_ooni_key(name: str, path: Path) -> None:
    assert path.stem == kebab(name)
    scenario = load_scenario(path)
    (expect,) = scenario.expect
    assert set(expect.keys) | set(expect.null) == OONI_KEYS
    assert "x_status" not in expect.keys
