"""The command line as a user meets it: help, errors with exit code 2, the lab, the demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from blockproof.cli import main
from blockproof.model.measurement import Measurement
from blockproof.platforms import profiles
from blockproof.probe.functions import by_function


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["lab", "run", "--help"],
                                  ["serve", "control", "--help"], ["demo", "--help"]])  # fmt: skip
def test_help_teaches(args: list[str]) -> None:
    code, out, _ = invoke(*args)
    assert code == 0
    assert "Usage:" in out
    assert "Exit codes" in out or args[-1] == "--help"


BAD = [
    (["run"], "give at least one URL"),
    (["run", "ftp://x.com/"], "only http:// and https://"),
    (["run", "--cc", "Pakistan", "https://x.com/"], "--cc"),
    (["run", "--asn", "17557", "https://x.com/"], "--asn"),
    (["lab", "run", "no-such-scenario"], "no-such-scenario"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    code, _, err = invoke(*args)
    assert code == 2
    assert message in err


def test_malformed_scenario_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nlayer = "tls"\nmatch = ["x.com"]\naction = "rst"\n')
    code, _, err = invoke("lab", "run", str(bad))
    assert code == 2
    assert "bad.toml: rule[0].action: 'rst' is not a tls action" in err


def test_lab_list_shows_the_shipped_scenarios() -> None:
    code, out, _ = invoke("lab", "list")
    assert code == 0
    ours, qa = out.split("\n\n")
    assert ours.startswith("blockproof's scenarios (")
    assert qa.startswith("OONI QA catalogue (probe-cli internal/webconnectivityqa) (49):")
    names = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert {"pakistan-2024-x", "no-censorship"} <= names  # what `lab run` accepts
    assert {"dns-blocking-nxdomain", "large-file-with-https"} <= names
    assert "dns-blocking-nxdomain" in qa
    assert "pakistan-2024-x" in ours


@pytest.mark.lab
def test_lab_run_prints_json_lines_and_checks(tmp_path: Path) -> None:
    code, out, err = invoke("lab", "run", "--check", "pakistan-2024-x", "https://x.com/",
                            "https://www.example.org/")  # fmt: skip
    lines = [json.loads(line) for line in out.splitlines()]
    by_input = {m["input"]: m["test_keys"] for m in lines}
    assert by_input["https://x.com/"]["blocking"] == "http-failure"
    assert by_input["https://x.com/"]["http_experiment_failure"] == "connection_reset"
    assert by_input["https://x.com/"]["x_verdict"]["method"] == "tls"
    assert by_input["https://www.example.org/"]["accessible"] is True
    assert code == 0, err
    for m in lines:
        assert m["probe_cc"] == "PK"
        assert m["probe_asn"] == "AS17557"
        assert m.get("probe_ip", "127.0.0.1") == "127.0.0.1"  # never the user's address


@pytest.mark.lab
def test_demo_shows_x_blocked_by_tls_and_the_control_site_accessible() -> None:
    code, _, err = invoke("demo", "--lab-only")
    assert code == 0
    assert "x.com" in err
    assert "connection_reset" in err
    assert "www.example.org" in err


@pytest.mark.lab
@pytest.mark.timeout(120)
def test_run_platform_in_the_lab_summarises_by_function(tmp_path: Path) -> None:
    code, _, err = invoke(
        "run", "--lab", "pakistan-2024-x", "--platform", "x", "--no-upload",
        "--spool", str(tmp_path / "spool"),
    )  # fmt: skip
    assert code == 0, err
    assert "X (Twitter), by function" in err
    for function in ("web", "api", "shortener", "media", "video", "static"):
        assert re.search(rf"│ {function} +│ +\d+ │ blocked by tls", err), function
    assert re.search(r"│ upload +│ +1 │ down for the control too", err)
    assert "8 measurements signed and spooled" in err


PLATFORM_RUNS = [
    # scenario, extra options, expected status per function (regex on the summary line)
    ("x-media-throttled", (), {
        "web": r"blocked by tls; not by DNS over HTTPS, ClientHello fragmentation",
        "api": r"reachable", "shortener": r"reachable", "static": r"reachable",
        "upload": r"reachable",
        "media": r"throttled to 1[2-7]\d kbit/s, \d+\.\dx slower than with",
        "video": r"throttled to 1[2-7]\d kbit/s, \d+\.\dx slower than with",
    }),
    ("slow-link", (), {
        "web": r"reachable", "api": r"reachable", "upload": r"reachable",
        "media": r"reachable \(a slow network: 1[2-7]\d kbit/s whatever",
        "video": r"reachable \(a slow network: 1[2-7]\d kbit/s whatever",
        "static": r"reachable \(a slow network: 1[2-7]\d kbit/s whatever",
    }),
    ("tls-reset-first-segment", ("--via", "socks5://vpn.proxy.example:1080", "--no-throttling"), {
        "web": r"blocked by tls \(1 of 2\); restored by ClientHello fragmentation, socks5 "
               r"proxy; not by DNS over HTTPS",
    }),
]  # fmt: skip


@pytest.mark.lab
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("scenario", "options", "expected"), PLATFORM_RUNS, ids=[r[0] for r in PLATFORM_RUNS]
)
def test_run_platform_reports_throttling_and_bypasses_by_function(
    tmp_path: Path, scenario: str, options: tuple[str, ...], expected: dict[str, str]
) -> None:
    code, out, err = invoke(
        "run", "--lab", scenario, "--platform", "x", "--no-upload", "--json",
        "--spool", str(tmp_path / "spool"), *options,
    )  # fmt: skip
    assert code == 0, err
    assert "X (Twitter), by function" in err
    measured = [json.loads(line) for line in out.splitlines()]
    # the summary the table prints, recomputed from the measurements printed as JSON
    statuses = by_function(
        profiles()["x"],
        [Measurement(test_name=m["test_name"], test_version=m["test_version"], input=m["input"],
                     measurement_start_time="", test_start_time="", test_keys=m["test_keys"])
         for m in measured],
    )  # fmt: skip
    texts = {s.function: s.text for s in statuses}
    for function, status in expected.items():
        assert re.fullmatch(status + ".*", texts[function]), (function, texts[function])
        assert texts[function].split(";")[0].split(",")[0][:20] in re.sub(r"\s+", " ", err)
    throttling = [
        m["test_keys"]["x_throttling"] for m in measured if "x_throttling" in m["test_keys"]
    ]
    if scenario == "x-media-throttled":  # the measured rate is within 20% of the 150 kbit/s cap
        rates = {t["verdict"]: t["target_kbps"] for t in throttling}
        assert set(rates) == {"throttled", "not_throttled"}, throttling
        for t in throttling:
            if t["verdict"] == "throttled":
                assert 120 <= t["target_kbps"] <= 180, t
                assert t["ratio"] >= 3, t
    if scenario == "slow-link":  # every name equally slow: never called throttling
        assert throttling
        assert {t["verdict"] for t in throttling} == {"slow_network"}, throttling
