"""The explorer in a real browser: Debian's Chromium, headless, driven by Playwright.

Each page type opens without a console error, filters are applied through the pages'
forms, home leads to an event and on to a measurement, exports download and match
what the page shows, and a measurement whose blockpage carries a script shows it as
text without running it. Full-page screenshots: test-artifacts/browser/NAME.png.
"""

from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_kit import HOSTILE_IMG, HOSTILE_SCRIPT, ExplorerStore, Ui, expect, sha256

# the first test also builds the store (~20 s)
pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

OUTCOMES = {"ok", "anomaly", "confirmed", "down", "failure"}
STEP_KINDS = {"dns", "tcp", "tls", "http"}
SEARCH_COLUMNS = ["bucket", "axis", "measurements", "ok", "anomaly", "confirmed", "down",
                  "failure", "probes"]  # fmt: skip


def query_of(ui: Ui) -> dict[str, str]:
    """The current URL's query (last value of each name, empty values kept)."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(ui.page.url).query, True).items()}


def cell_texts(ui: Ui, table: str) -> list[list[str]]:
    """Each row of ``table`` (a selector) as its cells' texts, header row first."""
    texts: list[list[str]] = ui.page.locator(table).evaluate(
        "t => Array.from(t.rows, r => Array.from(r.cells, c => c.textContent.trim()))"
    )
    return texts


# -- every page type opens ------------------------------------------------------------

PAGES = [
    # screenshot name, path, the h1 says, elements that must be there
    ("home", "/", "Events",
     ["table#events a[href^='/events/']", "table#board a[href='/countries/PK/x']"]),
    ("country", "/countries/PK", "PK", ["a[href='/countries/PK/x']"]),
    ("timeline", "/countries/PK/x", "X (Twitter) in PK",
     ["form#filters", "svg#timeline rect.bar", "table#heatmap", "a#export-json"]),
    ("search", "/search", "Search",
     ["form#filters", "table#results", "a#export-csv[download]", "a#export-json[download]"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "heading", "selectors"), PAGES, ids=[p[0] for p in PAGES])
def test_page_opens(ui: Ui, name: str, path: str, heading: str, selectors: list[str]) -> None:
    ui.visit(path)
    expect(ui.page.locator("h1")).to_contain_text(heading)
    for selector in selectors:
        expect(ui.page.locator(selector).first).to_be_attached()
    ui.shot(name)
    ui.assert_clean()


# -- home -> event -> measurement -> raw download ---------------------------------------


def test_home_to_event_to_measurement_and_raw_download(
    ui: Ui, explorer_store: ExplorerStore
) -> None:
    ui.visit("/")
    first_event = ui.page.locator("table#events a[href^='/events/']").first
    href = first_event.get_attribute("href")
    assert href is not None
    # ongoing events first: the X block of 17 February, not the 10 February disruption (on
    # data as sparse as OONI's, the detector may date its start a day or so early from a
    # thinly measured network: the id's date is its estimate)
    assert re.fullmatch(r"/events/pk-x-202402(1[4-9])\d\d-[0-9a-f]+", href), href
    first_event.click()
    ui.wait_for_path(href)
    expect(ui.page.locator("body")).to_contain_text("X (Twitter) has been blocked in PK")
    ui.shot("event")

    sample = ui.page.locator("a[href^='/measurements/']").first
    msm_href = sample.get_attribute("href")
    assert msm_href is not None
    sample.click()
    ui.wait_for_path(msm_href)
    expect(ui.page.locator("h1")).to_contain_text(msm_href.removeprefix("/measurements/"))
    verdict = ui.page.locator("#facts tr", has_text="verdict").locator("td").inner_text()
    assert verdict.split(" / ")[0] in {"anomaly", "confirmed"}, verdict  # a blocked sample

    # the waterfall: the steps as the probe saw them, the failed ones marked
    steps = ui.page.locator("#waterfall .step")
    expect(steps.first).to_be_visible()
    kinds = {k.strip().lower() for k in ui.page.locator("#waterfall .step .kind").all_inner_texts()}
    assert "dns" in kinds, kinds
    assert kinds <= STEP_KINDS, kinds
    expect(ui.page.locator("#waterfall .step.failed").first).to_be_visible()
    ui.shot("measurement")

    # the raw measurement downloads as the bytes whose SHA-256 the page shows
    shown = ui.page.locator("#facts tr", has_text="SHA-256").locator("td").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", shown), shown
    assert shown in explorer_store.hashes
    raw = ui.download("a#download-raw", "measurement-raw.json")
    assert sha256(raw) == shown
    assert json.loads(raw)["test_name"] == "web_connectivity"
    ui.assert_clean()


# -- hostile HTML inside a measurement -----------------------------------------------------


def test_blockpage_script_in_a_measurement_is_shown_never_run(
    ui: Ui, explorer_store: ExplorerStore
) -> None:
    ui.visit(f"/measurements/{explorer_store.hostile_id}")
    page = ui.page
    # the injected HTML is there, as text, in the response body and in the raw JSON
    body = page.locator("pre.body").first
    expect(body).to_be_visible()
    expect(body).to_contain_text(HOSTILE_SCRIPT)
    expect(body).to_contain_text(HOSTILE_IMG)
    expect(body).to_contain_text("Internet Positif")  # the real blockpage around it
    expect(page.get_by_text("window.__pwned = 1").first).to_be_visible()
    # ...and nothing of it ran or became an element
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.title() == f"measurement {explorer_store.hostile_id}"
    assert page.title() != "PWNED"
    assert page.locator("script, iframe, object, embed, img, link[rel=stylesheet]").count() == 0
    ui.shot("measurement-hostile")

    shown = page.locator("#facts tr", has_text="SHA-256").locator("td").inner_text().strip()
    assert shown == explorer_store.hostile_sha256
    raw = ui.download("a#download-raw", "measurement-hostile-raw.json")
    assert sha256(raw) == shown
    assert page.evaluate("typeof window.__pwned") == "undefined"
    ui.assert_clean()


# -- timeline: filters through the form, bars and gaps, the JSON export -------------------

TIMELINES = [
    # since, until, granularity asked, heading says, buckets
    ("2024-02-15", "2024-02-21", "hour", "Measurements per hour", 7 * 24),
    ("2024-02-01", "2024-02-24", "day", "Measurements per day", 24),
]


@pytest.mark.parametrize(("since", "until", "granularity", "heading", "buckets"), TIMELINES,
                         ids=[t[2] for t in TIMELINES])  # fmt: skip
def test_timeline_filters(
    ui: Ui, since: str, until: str, granularity: str, heading: str, buckets: int
) -> None:
    ui.visit("/countries/PK")  # each platform links to its timeline
    ui.page.locator("a[href='/countries/PK/x']").first.click()
    ui.wait_for_path("/countries/PK/x")

    form = ui.page.locator("form#filters")
    form.locator("input[name=since]").fill(since)
    form.locator("input[name=until]").fill(until)
    form.locator("select[name=granularity]").select_option(granularity)
    form.get_by_role("button", name="Apply").click()
    ui.wait_for_path(f"/countries/PK/x?since={since}")
    assert query_of(ui) == {"since": since, "until": until, "granularity": granularity}
    expect(ui.page.get_by_role("heading", name=heading)).to_be_visible()
    # the form shows what was asked
    expect(form.locator("input[name=since]")).to_have_value(since)
    expect(form.locator("select[name=granularity]")).to_have_value(granularity)

    bars = ui.page.locator("svg#timeline rect.bar")
    expect(bars.first).to_be_attached()
    classes = set(" ".join(bars.evaluate_all("rs => rs.map(r => r.getAttribute('class'))")).split())
    assert classes - {"bar"} <= OUTCOMES, classes
    assert classes & {"anomaly", "confirmed"}, classes  # the X block is in both ranges

    # the page's JSON: downloaded from its export link, it agrees with the chart
    link = ui.page.locator("a#export-json")
    href = link.get_attribute("href")
    assert href is not None
    assert href.startswith("/api/countries/PK/x?"), href
    assert parse_qs(urlsplit(href).query)["since"] == [since]
    data = json.loads(ui.download("a#export-json", f"timeline-{granularity}.json"))
    assert data["granularity"] == granularity
    assert len(data["buckets"]) == buckets
    empty = sum(1 for b in data["buckets"] if b["measurements"] == 0)
    nodata = ui.page.locator("svg#timeline rect.nodata").count()
    assert nodata == empty  # hours (or days) without data are drawn as such
    bar_slots = set(bars.evaluate_all("rs => rs.map(r => r.getAttribute('x'))"))
    assert len(bar_slots) + nodata == buckets
    expect(ui.page.locator("p.summary")).to_contain_text(f"{data['measurements']:,} measurements")
    assert ui.page.locator("table#heatmap tr").count() == 1 + len(data["networks"])
    ui.shot(f"timeline-{granularity}")
    ui.assert_clean()


# -- search: filters through the form, the table, the CSV export ---------------------------

SEARCHES = [
    # rows by (axis), what the axis column holds
    ("none", r""),
    ("asn", r"[0-9]+"),
]


@pytest.mark.parametrize(("axis", "axis_value"), SEARCHES, ids=[s[0] for s in SEARCHES])
def test_search_filters_and_csv(ui: Ui, axis: str, axis_value: str) -> None:
    # explicit dates fix the rows expected (without them the range is the last 30 days
    # with data from the country asked)
    since, until = "2024-02-10", "2024-02-20"
    ui.visit("/search")
    before = ui.page.locator("p.summary").inner_text()

    form = ui.page.locator("form#filters")
    form.locator("[name=cc]").fill("PK")
    form.locator("[name=platform]").fill("x")
    form.locator("[name=since]").fill(since)
    form.locator("[name=until]").fill(until)
    form.locator("select[name=granularity]").select_option("day")
    form.locator("select[name=axis]").select_option(axis)
    form.get_by_role("button", name="Apply").click()
    ui.wait_for_path("/search?")
    asked = query_of(ui)
    assert {k: v for k, v in asked.items() if v} == {
        "cc": "PK", "platform": "x", "since": since, "until": until, "granularity": "day",
        "axis": axis, "count": "auto",
    }  # fmt: skip
    expect(form.locator("[name=cc]")).to_have_value("PK")
    expect(form.locator("select[name=axis]")).to_have_value(axis)

    # the results changed accordingly: daily rows in the range, rows by the axis asked
    summary = ui.page.locator("p.summary").inner_text()
    assert summary != before
    assert f"from {since} to {until} (per day)" in summary, summary
    table = cell_texts(ui, "table#results")
    assert table[0] == SEARCH_COLUMNS
    rows = table[1:]
    assert rows
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row[0]), row
        assert since <= row[0] <= until, row
        assert re.fullmatch(axis_value, row[1]), row
    total = sum(int(row[2].replace(",", "")) for row in rows)
    assert f"{total:,} measurements from {since}" in summary, (total, summary)
    assert sum(int(row[4].replace(",", "")) + int(row[5].replace(",", "")) for row in rows) > 0

    # the CSV export: the table's header and rows, exactly
    link = ui.page.locator("a#export-csv")
    href = link.get_attribute("href")
    assert href is not None
    assert href.startswith("/api/search?"), href
    assert parse_qs(urlsplit(href).query)["format"] == ["csv"]
    text = ui.download("a#export-csv", f"search-{axis}.csv").decode("utf-8")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == SEARCH_COLUMNS
    assert parsed[1:] == [[cell.replace(",", "") for cell in row] for row in rows]
    as_json = json.loads(ui.download("a#export-json", f"search-{axis}.json"))
    assert [r["measurements"] for r in as_json["rows"]] == [int(r[2]) for r in parsed[1:]]
    ui.shot(f"search-{axis}")
    ui.assert_clean()
