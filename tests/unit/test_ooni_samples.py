"""Real OONI Web Connectivity measurements (tests/data/ooni, see SOURCES.md there).

For every sample: it loads, it round-trips without losing or altering a key, and
our classifier gives the ``blocking``/``accessible`` (and ``dns_consistency``)
OONI recorded. Every known difference is listed below with its reason; the same
list is in docs/classifier.md ("Differences from OONI's recorded values"). A
listed difference that stops differing fails the test too, so the list stays true.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from blockproof.codec.jsonl import iter_json_objects
from blockproof.codec.ooni import (
    measurement_from_json,
    measurement_to_json,
    web_observations_from_test_keys,
)
from blockproof.core.webconnectivity import analyze
from blockproof.model.verdict import WebConnectivityAnalysis

DATA = Path(__file__).resolve().parents[1] / "data" / "ooni"
EXPECTED_SAMPLES = 22  # 14 from ooni/backend, 8 from ooni/probe-cli (SOURCES.md)


@dataclass(frozen=True)
class Sample:
    id: str  # the file, relative to tests/data/ooni
    raw: dict[str, Any]  # the JSON object as stored
    input: str
    test_keys: dict[str, Any] | None
    test_version: str  # "" when the file holds test_keys only


@functools.cache
def samples() -> tuple[Sample, ...]:
    found = []
    for path in sorted(DATA.rglob("*")):
        if not path.name.endswith((".json", ".json.gz")):
            continue
        for raw in iter_json_objects(path):
            sample_id = path.relative_to(DATA).as_posix()
            if "test_name" not in raw:  # test_keys alone (the PK probe-cli test case)
                url = raw["x_control_request"]["http_request"]
                found.append(Sample(sample_id, raw, url, raw, ""))
            elif raw["test_name"] == "web_connectivity":
                found.append(
                    Sample(sample_id, raw, raw["input"], raw["test_keys"], raw["test_version"])
                )
    return tuple(found)


@functools.cache
def analysis_of(sample_id: str) -> WebConnectivityAnalysis:
    sample = next(s for s in samples() if s.id == sample_id)
    return analyze(web_observations_from_test_keys(sample.input, sample.test_keys))


SAMPLE_IDS = [s.id for s in samples()]

# Where our (blocking, accessible) differs from what the sample records, and why.
DIFFERENCES: dict[str, tuple[str | bool | None, bool | None, str]] = {
    "fastpath-testdata/bug_351.json": (
        None,
        None,
        "Python ooniprobe 2.2.0 (web_connectivity 0.3.0) crashed decoding the response and"
        " recorded no HTTP transaction (requests is empty); its http-failure/false rests on the"
        " crash text in http_experiment_failure, which is not an observation. With only a"
        " successful TCP connect to read, no decision row matches: null/null.",
    ),
    "fastpath-testdata/web_connectivity_no_body.json": (
        False,
        False,
        "measurement-kit (web_connectivity 0.0.1) reported accessible=true although both the"
        " probe's fetch (ssl_error ... certificate verify failed) and the control's fetch"
        " (unknown_error) failed; LTE row 2.2 reads that as a site down: false/false.",
    ),
    "fastpath-testdata/web_connectivity_null2.json": (
        False,
        False,
        "Web Connectivity 0.4 stops at the control's HTTP failure (x_status 16, control"
        " failure) and leaves null/null; LTE row 2.2 sees the probe's fetch fail"
        " (ssl_invalid_certificate) and the control's fail too (unknown_error): site down.",
    ),
    "probe-cli-real/manual-8844.measurement.json": (
        False,
        True,
        "recorded the day ooni/probe-cli#1472 (2024-01-24) fixed the classic filter for URLs"
        " whose host is an IP address: before it, the only endpoint was dropped and nothing"
        " decided (null/null). With the fix the HTTPS page fetched from 8.8.4.4 is row 1.1:"
        " false/true (x_blocking_flags 32 was already recorded).",
    ),
    "probe-cli-real/manual-dnsgoogle80.measurement.json": (
        False,
        False,
        "recorded by LTE 0.5.26 (2023-11-30) before the classic analysis existed"
        " (ooni/probe-cli#1420, 2023-12-01). Port 80 of every dns.google address timed out for"
        " the probe and for the control: row 4.2, site down (x_null_null_flags 2).",
    ),
}

# Samples with nothing recorded to compare with.
NOT_RECORDED = {
    "fastpath-testdata/test_keys_none.json": "test_keys is null: there is no observation and"
    " no recorded verdict; we give null/null",
}

# x_* flags recorded by Web Connectivity 0.5 that we compute differently, and why.
FLAG_DIFFERENCES: dict[str, tuple[dict[str, int], str]] = {
    "probe-cli-real/manual-dnsgoogle80.measurement.json": (
        {"x_null_null_flags": 2},
        "the orig engine had no expected-TCP-failure flag; both sides timed out on port 80",
    ),
    "probe-cli-real/20230706183840.201925_PK_webconnectivity_19f5e0d803cbaea7.test_keys.json": (
        {"x_null_null_flags": 4},
        "the 2023 orig engine did not set ExpectedTLSHandshakeFailure; probe and control both"
        " got eof_error from every address",
    ),
}

# Our verdict on every sample (method, rule id): what x_verdict would say.
VERDICTS: dict[str, tuple[str, str]] = {
    # a Kominfo blockpage reached through a redirect: OONI's header check matches on
    # "connection" alone (false/true); we see another page (see docs/classifier.md)
    "fastpath-testdata/20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json": (
        "http-diff",
        "wc.http.diff",
    ),
    "fastpath-testdata/bug_351.json": ("undetermined", "wc.undetermined"),
    "fastpath-testdata/bug_352.json": ("dns", "wc.dns.bogon"),
    "fastpath-testdata/report1.json": ("none", "wc.ok"),
    "fastpath-testdata/report2.json": ("none", "wc.ok.https"),
    "fastpath-testdata/requests_none.json": ("dns", "wc.dns.nxdomain"),
    "fastpath-testdata/test_keys_none.json": ("undetermined", "wc.control.unavailable"),
    "fastpath-testdata/web_connectivity_b64_hdr.json": ("http", "wc.http.failure"),
    "fastpath-testdata/web_connectivity_b64_incorrect.json": ("none", "wc.ok"),
    "fastpath-testdata/web_connectivity_ir_fp.json": ("dns", "wc.dns.bogon"),
    "fastpath-testdata/web_connectivity_no_body.json": ("down", "wc.down.http"),
    "fastpath-testdata/web_connectivity_null.json": ("undetermined", "wc.control.unavailable"),
    "fastpath-testdata/web_connectivity_null2.json": ("down", "wc.down.http"),
    "fastpath-testdata/web_connectivity_odd_hdr.json": ("dns", "wc.dns.ghost"),
    # the ooni/probe#2517 false positive: OONI says dns; the control failed the same way
    "probe-cli-real/20230706183840.201925_PK_webconnectivity_19f5e0d803cbaea7.test_keys.json": (
        "down",
        "wc.down.tls",
    ),
    "probe-cli-real/cmd-minipipeline-nexa.polito.it.measurement.json": ("none", "wc.ok.https"),
    "probe-cli-real/manual-8844.measurement.json": ("none", "wc.ok.https"),
    "probe-cli-real/manual-dnsgoogle80.measurement.json": ("down", "wc.down.tcp"),
    "probe-cli-real/manual-firefoxcom.measurement.json.gz": ("none", "wc.ok.https"),
    "probe-cli-real/manual-issue-2456.measurement.json.gz": ("none", "wc.ok.https"),
    "probe-cli-real/manual-noipv6.measurement.json.gz": ("none", "wc.ok.https"),
    "probe-cli-real/manual-youtube.measurement.json.gz": ("none", "wc.ok.https"),
}

# Samples where our CDN guard reads OONI's "inconsistent" DNS as a CDN: none so far.
# (The guard only affects x_verdict; OONI's keys are always OONI's.)
CDN_GUARDED: set[str] = set()


def test_every_sample_was_found() -> None:
    assert len(SAMPLE_IDS) == EXPECTED_SAMPLES
    assert len(set(SAMPLE_IDS)) == len(SAMPLE_IDS)
    listed = set(DIFFERENCES) | set(NOT_RECORDED) | set(FLAG_DIFFERENCES) | set(VERDICTS)
    assert listed <= set(SAMPLE_IDS), "a listed sample is missing from tests/data/ooni"
    assert set(VERDICTS) == set(SAMPLE_IDS)


def test_sources_list_every_file() -> None:
    sources = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    for path in DATA.rglob("*"):
        if path.is_file() and path.name != "SOURCES.md":
            assert path.name in sources, f"{path.name} is not in SOURCES.md"


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_round_trip_keeps_every_key(sample_id: str) -> None:
    raw = next(s for s in samples() if s.id == sample_id).raw
    back = measurement_to_json(measurement_from_json(raw))
    assert json.dumps(back, sort_keys=True) == json.dumps(raw, sort_keys=True)


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_blocking_and_accessible_match_ooni(sample_id: str) -> None:
    sample = next(s for s in samples() if s.id == sample_id)
    ours = analysis_of(sample_id)
    got = (ours.blocking, ours.accessible)
    if sample_id in NOT_RECORDED:
        assert sample.test_keys is None
        assert got == (None, None)
        return
    assert sample.test_keys is not None
    recorded = (sample.test_keys.get("blocking"), sample.test_keys.get("accessible"))
    if sample_id in DIFFERENCES:
        blocking, accessible, reason = DIFFERENCES[sample_id]
        assert got == (blocking, accessible), reason
        assert got != recorded, "documented difference no longer differs: update the list"
        return
    assert got == recorded


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_dns_consistency_matches_ooni(sample_id: str) -> None:
    sample = next(s for s in samples() if s.id == sample_id)
    if sample.test_keys is None or "dns_consistency" not in sample.test_keys:
        pytest.skip("no dns_consistency recorded")
    assert analysis_of(sample_id).dns_consistency == sample.test_keys["dns_consistency"]


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_lte_flags_match_ooni(sample_id: str) -> None:
    sample = next(s for s in samples() if s.id == sample_id)
    if sample.test_keys is None or "x_blocking_flags" not in sample.test_keys:
        pytest.skip("flags are Web Connectivity 0.5 keys")
    ours = analysis_of(sample_id)
    names = ("x_blocking_flags", "x_dns_flags", "x_null_null_flags")
    got = {name: getattr(ours, name) for name in names}
    expected = {name: sample.test_keys[name] for name in names}
    if sample_id in FLAG_DIFFERENCES:
        changed, reason = FLAG_DIFFERENCES[sample_id]
        assert {k: v for k, v in got.items() if v != expected[k]} == changed, reason
        return
    assert got == expected


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_our_verdict(sample_id: str) -> None:
    verdict = analysis_of(sample_id).verdict
    assert verdict is not None
    assert (str(verdict.method), verdict.rule_id) == VERDICTS[sample_id]
    assert verdict.explanation.endswith(".")
    guarded = "a CDN, not DNS tampering" in verdict.explanation
    assert guarded == (sample_id in CDN_GUARDED)
