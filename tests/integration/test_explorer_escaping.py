"""Every field of a measurement is hostile by design: the explorer shows it, never runs it.

Real OONI measurements (a blockpage, YouTube, Firefox, a fastpath sample) are
rewritten so that every string in them, keys of header maps included, carries
markup an attacker would plant: a script, an element with an event handler, an
attribute break-out, a ``javascript:`` URL. They are ingested and analysed like
any other data, then every page that can show them is parsed with an HTML
parser: no element or attribute may come from the data (no ``script``, ``img``,
``svg``, ``iframe``, no ``on*`` attribute, no ``javascript:`` link), and the
hostile text must be visible as text, so the test proves it was displayed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from blockproof.cli import main
from figures import Figures

pytestmark = pytest.mark.reliability

DATA = Path(__file__).resolve().parent.parent / "data" / "ooni"
SAMPLES = [
    "fastpath-testdata/web_connectivity_ir_fp.json",
    "fastpath-testdata/20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json",
    "probe-cli-real/manual-youtube.measurement.json.gz",
    "probe-cli-real/manual-firefoxcom.measurement.json.gz",
]
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "</textarea></pre><iframe src=javascript:alert(4)>",
    "javascript:alert(5)",
]
# Envelope fields ingest must be able to read to file a measurement at all (a day, a
# country, a test); hostile values there make the line a counted reject, shown nowhere.
KEPT_AS_IS = {
    "measurement_start_time", "test_start_time", "probe_cc", "probe_asn", "test_name",
    "data_format_version", "measurement_uid", "report_id", "resolver_asn", "resolver_ip",
    "probe_ip", "t", "t0",
}  # fmt: skip
FORBIDDEN_TAGS = {"script", "img", "svg", "iframe", "object", "embed", "frame", "textarea"}


def poisoned(value: Any, payload: str, key: str = "") -> Any:
    """``value`` with ``payload`` appended to every string and every mapping key."""
    if isinstance(value, dict):
        return {
            (k if k in KEPT_AS_IS or not isinstance(v, str | dict) or key != "headers"
             else k + payload): poisoned(v, payload, k)
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [poisoned(v, payload, key) for v in value]
    if isinstance(value, str) and key not in KEPT_AS_IS:
        return value + payload
    return value


def load(name: str) -> dict[str, Any]:
    raw = (DATA / name).read_bytes()
    document: dict[str, Any] = json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)
    return document


class Elements(HTMLParser):
    """Every element and attribute the browser would build, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{name}= attribute on <{tag}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"{name}={value!r} on <{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def inspect(html: str) -> tuple[list[str], str]:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.problems, "".join(parser.text)


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("hostile")
    lines = []
    for n, payload in enumerate(PAYLOADS):
        for name in SAMPLES:
            m = poisoned(load(name), payload)
            i = len(lines)
            m["measurement_uid"] = f"2024021716{n:02d}{i:02d}.000000_PK_webconnectivity_{i:016x}"
            m["measurement_start_time"] = f"2024-02-17 16:{n:02d}:{i:02d}"
            m["probe_cc"] = "PK"
            lines.append(json.dumps(m).encode())
    raw = root / "hostile.jsonl"
    raw.write_bytes(b"\n".join(lines) + b"\n")
    store = root / "store"
    runner = CliRunner()
    for args in (["ingest", str(raw), "--store", str(store)], ["analyze", "--store", str(store)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    return store, len(lines)


def pages(client_ids: list[str]) -> Iterator[str]:
    yield "/"
    yield "/countries/PK"
    yield "/search?cc=PK&since=2024-02-17&until=2024-02-18&axis=domain"
    yield "/search?cc=PK&since=2024-02-17&until=2024-02-18&axis=asn"
    for msm_id in client_ids:
        yield f"/measurements/{msm_id}"


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_every_hostile_field_is_shown_as_text_and_never_run(
    hostile_store: tuple[Path, int], figures: Figures
) -> None:
    from blockproof.explorer.app import create_app

    store, count = hostile_store
    transport = httpx.ASGITransport(app=create_app(store))
    checked = 0
    shown: set[str] = set()
    async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as client:
        ids = _ingested_ids(store)
        assert len(ids) == count, "every hostile measurement was ingested"
        for path in pages(ids):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            assert page.headers["content-security-policy"].startswith("default-src 'none'")
            problems, text = inspect(page.text)
            assert problems == [], (path, problems)
            shown.update(p for p in PAYLOADS if p in text)
            checked += 1
    assert shown == set(PAYLOADS), "each hostile payload was displayed, as text"
    figures.add(
        "abuse",
        check="explorer escapes hostile measurement fields",
        server="explorer",
        measurements=count,
        pages=checked,
        payloads=len(PAYLOADS),
        elements_from_data=0,
    )


def _ingested_ids(store: Path) -> list[str]:
    import pyarrow.parquet as pq

    files = sorted((store / "measurements").rglob("*.parquet"))
    return sorted(str(i) for f in files for i in pq.read_table(f, columns=["msm_id"])["msm_id"])
