"""Evidence reports on a simulated Pakistan-2024 store: content, hashes, escaping, offline."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from datetime import date, timedelta
from html.parser import HTMLParser
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


@pytest.mark.browser
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
        assert evidence["timeline"][0]["start"].endswith(":00:00Z")

        country = await client.get("/countries/PK")
        assert country.status_code == 200
        assert re.search(
            r'<td><a href="/countries/PK/x">X \(Twitter\)</a></td><td>AS17557</td>'
            r"<td>[^<]*PTCL</td><td>blocked \(",
            country.text,
        )
        assert 'href="/countries/PK"' in home.text

        for path in ("/events/nope", "/measurements/nope", "/api/events/nope", "/countries/pk",
                     "/countries/ZZ"):  # fmt: skip
            assert (await client.get(path)).status_code == 404, path


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_explorer_timeline_search_and_waterfall(campaign: tuple[Path, set[str]]) -> None:
    import csv
    import io

    import httpx

    from blockproof.explorer.app import create_app

    store, hashes = campaign
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as client:
        # every answer forbids scripts outright, on top of escaping
        home = await client.get("/")
        assert "script-src" not in home.headers["content-security-policy"]
        assert "default-src 'none'" in home.headers["content-security-policy"]
        assert 'id="board"' in home.text
        assert 'href="/countries/PK/x"' in home.text

        # platform in country: daily over 30 days, hourly over a week; no-data gaps drawn
        month = await client.get("/countries/PK/x")
        assert month.status_code == 200
        assert "Measurements per day" in month.text
        assert 'id="heatmap"' in month.text
        assert "AS17557" in month.text
        assert "&lt;script&gt;" in month.text
        assert "<script" not in month.text
        week = await client.get(
            "/countries/PK/x", params={"since": "2024-02-15", "until": "2024-02-21"}
        )
        assert "Measurements per hour" in week.text
        api = (
            await client.get(
                "/api/countries/PK/x", params={"since": "2024-02-15", "until": "2024-02-21"}
            )
        ).json()
        assert api["granularity"] == "hour"
        assert len(api["buckets"]) == 7 * 24
        assert sum(b["measurements"] for b in api["buckets"]) > 0
        # the store's measurements, counted directly, equal the buckets' sum
        search_all = (
            await client.get(
                "/api/search",
                params={"cc": "PK", "platform": "x", "since": "2024-02-15", "until": "2024-02-21"},
            )
        ).json()
        assert sum(r["measurements"] for r in search_all["rows"]) == sum(
            b["measurements"] for b in api["buckets"]
        )
        blocked = sum(b["anomaly"] + b["confirmed"] for b in api["buckets"])
        assert blocked > 0
        for network in api["networks"]:
            assert len(network["buckets"]) == 7 * 24
        # hours before the first measurement are there, as "no data", never as ok
        first_day = api["data_first"][:10]
        before = date.fromisoformat(first_day) - timedelta(days=3)
        edge = {"since": before.isoformat(), "until": first_day}
        edge_api = (await client.get("/api/countries/PK/x", params=edge)).json()
        assert edge_api["buckets"][0]["measurements"] == 0
        assert edge_api["buckets"][0]["ok"] == 0
        # the hour of the first measurement has data (the campaign is as sparse as OONI's
        # data: the day's last hour, which a dense campaign always filled, may have none)
        [first_hour] = [b for b in edge_api["buckets"] if b["start"] == api["data_first"]]
        assert first_hour["measurements"] > 0
        edge_page = await client.get("/countries/PK/x", params=edge)
        assert 'class="nodata"' in edge_page.text
        assert "no data" in edge_page.text

        # search: without dates, the last 30 days with data from the country asked
        default = (await client.get("/api/search", params={"cc": "PK"})).json()
        assert default["rows"]
        assert default["until"] == max(r["bucket"] for r in default["rows"])[:10]
        # search: filters, axis, CSV equal to JSON
        params = {"cc": "PK", "platform": "x", "granularity": "day", "axis": "asn"}
        page = await client.get("/search", params=params)
        assert page.status_code == 200
        assert 'id="results"' in page.text
        as_json = (await client.get("/api/search", params=params)).json()
        rows = as_json["rows"]
        assert rows
        assert {r["axis"] for r in rows} >= {"17557"}
        as_csv = await client.get("/api/search", params={**params, "format": "csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert len(parsed) == len(rows)
        assert [int(r["measurements"]) for r in parsed] == [r["measurements"] for r in rows]

        # measurement page: the waterfall with the control's view
        event_id = re.search(r'href="/events/(pk-x-20240217[^"]+)"', home.text).group(1)
        event = await client.get(f"/events/{event_id}")
        pages = [
            (link, await client.get(link))
            for link in re.findall(r'href="(/measurements/[^"]+)"', event.text)
        ]
        assert all('id="waterfall"' in page.text for _, page in pages)
        # a TLS-reset sample: its failed handshake highlighted, the control's success beside
        first, page = next((link, p) for link, p in pages if 'class="step tls failed"' in p.text)
        assert "control: succeeded" in page.text
        summary = (await client.get("/api/" + first.removeprefix("/"))).json()
        assert summary["sha256"] in hashes
        assert any(s["kind"] == "tls" and s["failure"] for s in summary["steps"])

        # bad input: a clear 400 (pages and API), unknown things 404
        for path, params, status, says in (
            ("/search", {"cc": "Pakistan"}, 400, "cc must be a two-letter country code"),
            ("/search", {"since": "17/02/2024"}, 400, "since must be a date like"),
            ("/search", {"axis": "colour"}, 400, "axis must be one of"),
            ("/search", {"asn": "AS-1"}, 400, "asn must be an AS number"),
            ("/search", {"since": "2024-02-20", "until": "2024-02-01"}, 400,
             "until must not be before since"),
            ("/search", {"domain": "<b>x</b>"}, 400, "domain must be a host name"),
            ("/api/search", {"format": "xml"}, 400, "format must be json or csv"),
            ("/api/search", {"granularity": "minute"}, 400, "granularity must be one of"),
            ("/countries/PK/x", {"granularity": "hour", "since": "2024-01-01",
                                 "until": "2024-03-30"}, 400, "hourly buckets cover at most"),
            ("/api/countries/PK/x", {"since": "2024-02-20", "until": "2024-02-01"}, 400,
             "until must not be before since"),
            ("/countries/PK/myspace", {}, 404, "is not a platform"),
            ("/api/countries/PK/myspace", {}, 404, "is not a platform"),
            ("/countries/QQ/x", {}, 404, "no measurements of X (Twitter) from QQ"),
            ("/api/measurements/nope", {}, 404, "no measurement"),
        ):  # fmt: skip
            answer = await client.get(path, params=params)
            assert answer.status_code == status, (path, params, answer.text[:300])
            assert says in answer.text, (path, params, answer.text[:300])
            assert "<b>x</b>" not in answer.text


# -- the compliance view (--since, ?since=) ------------------------------------------------

SINCE = "2024-02-22"  # the Sindh High Court's first order to restore X


class _Markup(HTMLParser):
    """Elements and attributes a browser would build from a page: none may come from data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "img", "iframe", "object", "embed"):
            self.problems.append(f"<{tag}>")
        self.problems.extend(f"{name}= on <{tag}>" for name, _ in attrs if name.startswith("on"))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _markup(html: str) -> tuple[list[str], str]:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser.problems, re.sub(r"\s+", " ", "".join(parser.text))


@pytest.mark.timeout(300)
def test_report_since_a_date_shows_each_networks_compliance(
    campaign: tuple[Path, set[str]], tmp_path: Path
) -> None:
    store, _ = campaign
    out = tmp_path / "since.html"
    code, _, err = invoke(
        "report", "pk-x-20240217", "--store", str(store), "--out", str(out), "--since", SINCE
    )
    assert code == 0, err
    html = out.read_text()
    problems, text = _markup(html)
    assert problems == []
    assert '<h2 id="compliance">Compliance since 22 February 2024</h2>' in html
    assert 'id="compliance-strip"' in html
    assert 'id="compliance-table"' in html
    # one sentence per network, on the page and on stderr; the hostile name as text
    flat_err = re.sub(r"\s+", " ", err)
    sentences = re.findall(r"Since 22 February 2024, AS\d+ .*?\.(?= Since|$)", flat_err)
    assert sentences
    assert all(s in text for s in sentences)
    assert '<script>alert("x")</script> PTCL' in text  # displayed, escaped
    assert "<script" not in html
    ptcl = next(s for s in sentences if s.startswith("Since 22 February 2024, AS17557"))
    assert re.search(r"was blocked in [\d,]+ of [\d,]+ measured hours?", ptcl)

    # without --since: no section, and nothing printed about compliance
    plain = tmp_path / "plain.html"
    code, _, err = invoke("report", "pk-x-20240217", "--store", str(store), "--out", str(plain))
    assert code == 0, err
    assert "Compliance since" not in plain.read_text()
    assert "Since 22 February" not in err

    # a bad date: exit 2, one line, nothing written
    bad = tmp_path / "bad.html"
    for value in ("22/02/2024", "2024-02-30", "", "<b>x</b>"):
        code, _, err = invoke(
            "report", "pk-x-20240217", "--store", str(store), "--out", str(bad), "--since", value
        )
        assert code == 2, (value, err)
        assert err.count("\n") == 1, err
        assert "--since must be a date like" in err
        assert not bad.exists()


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_event_page_and_api_since_a_date(campaign: tuple[Path, set[str]]) -> None:
    import httpx

    from blockproof.explorer.app import create_app

    store, _ = campaign
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as client:
        home = await client.get("/")
        event_id = re.search(r'href="/events/(pk-x-20240217[^"]+)"', home.text).group(1)
        path = f"/events/{event_id}"

        page = await client.get(path, params={"since": SINCE})
        assert page.status_code == 200
        problems, text = _markup(page.text)
        assert problems == []
        assert "Compliance since 22 February 2024" in text
        assert '<script>alert("x")</script> PTCL' in text
        plain = await client.get(path)
        assert "Compliance since" not in plain.text
        empty = await client.get(path, params={"since": ""})  # an empty form field: no date
        assert "Compliance since" not in empty.text

        api = (await client.get(f"/api{path}", params={"since": SINCE})).json()
        view = api["compliance"]
        assert view["since"] == SINCE
        assert view["start"] == f"{SINCE}T00:00:00Z"
        event_asns = [n["asn"] for n in api["event"]["networks"]]
        assert [n["asn"] for n in view["networks"]][: len(event_asns)] == event_asns
        for network in view["networks"]:
            assert network["sentence"] in text
            assert network["measured_hours"] == (network["blocked_hours"] + network["clear_hours"])
            assert sum(s["hours"] for s in network["strip"]) == view["hours"]
        # the JSON of the event without a date is what it was: no compliance key
        plain_api = (await client.get(f"/api{path}")).json()
        assert set(plain_api) == {
            "event", "platform_name", "summary", "timeline", "samples", "methods",
            "generated", "context",
        }  # fmt: skip

        # a date after the data: an empty range, said so
        late = await client.get(path, params={"since": "2030-01-01"})
        assert late.status_code == 200
        assert "the data end before it" in late.text

        # bad dates: 400 with a sentence (escaped), page and API; unknown event still 404
        for value in ("22-02-2024", "2024-13-01", "<script>alert(1)</script>"):
            answer = await client.get(path, params={"since": value})
            assert answer.status_code == 400, value
            assert "since must be a date like" in answer.text
            assert "<script>alert(1)" not in answer.text
            answer = await client.get(f"/api{path}", params={"since": value})
            assert answer.status_code == 400, value
            assert "since must be a date like" in answer.json()["error"]
        assert (await client.get("/events/nope", params={"since": SINCE})).status_code == 404
