"""Internationalized sites, measured end to end in the lab: IDN hosts (Unicode, mixed case)
are measured like any other, and a long non-Latin title matches the control's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

URDU_TITLE = ("پاکستان کی خبریں " * 20)[:300]  # 300 characters, about 550 UTF-8 bytes
RUSSIAN_TITLE = ("Новости России и мира " * 20)[:300]

SCENARIO = f"""
name = "idn-sites"
description = "Uncensored sites with internationalized names and long non-Latin titles."

[[host]]
name = "پاکستان.پاکستان"
addresses = ["103.31.104.10"]
title = "{URDU_TITLE}"

[[host]]
name = "xn--d1acpjx3f.xn--p1ai"
addresses = ["213.180.204.62"]
title = "{RUSSIAN_TITLE}"

[[host]]
name = "urdu.example.pk"
addresses = ["103.31.104.11"]
title = "{URDU_TITLE}"
"""


def _lab_run(tmp_path: Path, *urls: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    scenario = tmp_path / "idn-sites.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "blockproof", "lab", "run", str(scenario), *urls],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, lines


def test_idn_urls_are_measured_and_accessible(tmp_path: Path) -> None:
    urls = ("https://پاکستان.پاکستان/", "http://яндекс.рф/", "http://Яндекс.РФ/")
    result, measurements = _lab_run(tmp_path, *urls)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert [m["input"] for m in measurements] == list(urls)  # kept as given
    for m in measurements:
        keys = m["test_keys"]
        assert keys["accessible"] is True, m["input"]
        assert keys["blocking"] is False, m["input"]
        assert keys["dns_consistency"] == "consistent"
        # what went on the wire: the IDNA form, in DNS, the Host header, and the control
        assert all(q["hostname"].startswith("xn--") for q in keys["queries"])
        host = next(v for k, v in keys["requests"][0]["request"]["headers_list"] if k == "Host")
        assert host.startswith("xn--")
        assert keys["x_control_request"]["http_request"].split("/")[2].startswith("xn--")


@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("http://urdu.example.pk/", URDU_TITLE),
        ("http://яндекс.рф/", RUSSIAN_TITLE),
    ],
)
def test_a_long_non_latin_title_matches_the_controls(tmp_path: Path, url: str, title: str) -> None:
    assert len(title) == 300
    assert len(title.encode()) > 512
    result, [measurement] = _lab_run(tmp_path, url)
    assert result.returncode == 0, result.stderr
    keys = measurement["test_keys"]
    assert keys["control"]["http_request"]["title"] == title  # the control saw it whole
    assert keys["title_match"] is True
    assert keys["blocking"] is False
    assert keys["accessible"] is True
