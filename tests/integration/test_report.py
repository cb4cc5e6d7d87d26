"""Evidence reports on a simulated Pakistan-2024 store: content, hashes, escaping, offline."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from blockproof.cli import main

HOSTILE = '<script>alert("x")</script> PTCL'


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A small simulated campaign whose PTCL network name is hostile HTML; its store."""
    root = tmp_path_factory.mktemp("report")
    raw = root / "pk.jsonl.gz"
    code, _, err = invoke(
        "simulate", "pakistan-2024-x", "--probes", "40", "--days", "30", "--out", str(raw)
    )
    assert code == 0, err
    lines = gzip.decompress(raw.read_bytes()).replace(
        b"Pakistan Telecommunication Company Limited", HOSTILE.replace('"', '\\"').encode()
    )
    raw.write_bytes(gzip.compress(lines))
    store = root / "store"
    for args in (("ingest", str(raw), "--store", str(store)), ("analyze", "--store", str(store))):
        code, _, err = invoke(*args)
        assert code == 0, err
    hashes = {hashlib.sha256(line).hexdigest() for line in lines.splitlines() if line}
    return store, hashes


@pytest.mark.timeout(300)
def test_report_of_the_x_block(campaign: tuple[Path, set[str]], tmp_path: Path) -> None:
    store, hashes = campaign
    out = tmp_path / "report.html"
    code, _, err = invoke("report", "pk-x-20240217", "--store", str(store), "--out", str(out))
    assert code == 0, err
    html = out.read_text()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "X (Twitter) has been blocked in PK on AS" in text
    assert "measurements from" in text
    assert "mostly by resetting or dropping the TLS connection" in text
    for heading in ("Timeline", "Networks", "How it is blocked", "Sample measurements",
                    "Methodology and its limits", "How to verify this report"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in html
    # every sample's hash is the SHA-256 of one measurement line exactly as simulated
    shown = set(re.findall(r"\b[0-9a-f]{64}\b", html))
    assert len(shown) >= 5
    assert shown <= hashes
    assert "unsigned" in text  # simulated measurements carry no signature
    # hostile HTML from a measurement is shown, escaped, never run
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; PTCL" in html
    # self-contained: nothing is fetched when the page renders
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\bsrc=", html)
    assert "<svg" in html


def test_report_errors_are_clear(campaign: tuple[Path, set[str]], tmp_path: Path) -> None:
    store, _ = campaign
    code, _, err = invoke(
        "report", "nope", "--store", str(store), "--out", str(tmp_path / "r.html")
    )
    assert code == 2
    assert "no event 'nope'" in err
    code, _, err = invoke("report", "pk-", "--store", str(store), "--out", str(tmp_path / "r.html"))
    assert code == 2
    assert "matches" in err
    code, _, err = invoke(
        "report", "pk-x-20240217", "--store", str(store), "--out", str(tmp_path / "r.docx")
    )
    assert code == 2
    assert "FILE.html or FILE.pdf" in err


@pytest.mark.timeout(300)
def test_pdf_report_carries_the_summary_and_the_hashes(
    campaign: tuple[Path, set[str]], tmp_path: Path
) -> None:
    """Printed by headless Chromium (installed by `make test`), read back with pdftotext."""
    store, hashes = campaign
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    for out in (html, pdf):
        code, _, err = invoke("report", "pk-x-20240217", "--store", str(store), "--out", str(out))
        assert code == 0, err
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    flat = re.sub(r"\s+", " ", text)
    assert "X (Twitter) has been blocked in PK on AS" in flat
    assert "How to verify this report" in flat
    in_html = set(re.findall(r"\b[0-9a-f]{64}\b", html.read_text()))
    assert in_html
    assert in_html <= hashes
    for digest in in_html:  # each on a line of its own, whole
        assert digest in text, digest


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_explorer_home_event_measurement_download(
    campaign: tuple[Path, set[str]],
) -> None:
    import httpx

    from blockproof.explorer.app import create_app

    store, hashes = campaign
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as client:
        home = await client.get("/")
        assert home.status_code == 200
        event_id = re.search(r'href="/events/(pk-x-20240217[^"]+)"', home.text).group(1)
        assert "blocked now" in home.text

        event = await client.get(f"/events/{event_id}")
        assert event.status_code == 200
        assert "X (Twitter) has been blocked in PK" in event.text
        links = re.findall(r'href="(/measurements/[^"]+)"', event.text)
        assert links

        page = await client.get(links[0])
        assert page.status_code == 200
        digest = re.search(r"\b[0-9a-f]{64}\b", page.text).group(0)
        assert digest in hashes
        assert "<script" not in page.text  # the raw JSON holds hostile HTML, escaped
        raw = await client.get(links[0] + ".json")
        assert raw.status_code == 200
        assert hashlib.sha256(raw.content).hexdigest() == digest
        assert "attachment" in raw.headers["content-disposition"]

        api = (await client.get("/api/events")).json()
        assert any(e["id"] == event_id for e in api["events"])
        evidence = (await client.get(f"/api/events/{event_id}")).json()
        assert evidence["summary"].startswith("X (Twitter) has been blocked in PK")
        assert evidence["timeline"][0]["hour"].endswith(":00:00Z")

        country = await client.get("/countries/PK")
        assert country.status_code == 200
        assert re.search(
            r"<td>x</td><td>AS17557</td><td>[^<]*PTCL</td><td>blocked \(", country.text
        )
        assert 'href="/countries/PK"' in home.text

        for path in ("/events/nope", "/measurements/nope", "/api/events/nope", "/countries/pk",
                     "/countries/ZZ"):  # fmt: skip
            assert (await client.get(path)).status_code == 404, path
