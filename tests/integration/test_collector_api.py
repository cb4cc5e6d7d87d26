"""The collector's HTTP API in-process (ASGI) over a real data directory.

One table of bad inputs: each gets its documented 4xx and code (docs/collector.md)
and changes nothing stored. Then the good paths: OONI's bk-003 flow, the batch
endpoint, idempotent resubmission, reads, receipts and consistency proofs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from collector_kit import REPORT_ID, measurement
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blockproof.codec.jcs import canonicalize
from blockproof.collector.app import CollectorApp
from blockproof.collector.service import Collector
from blockproof.custody.merkle import verify_consistency
from blockproof.custody.proofs import Receipt, TreeHead, receipt_problems
from blockproof.custody.signing import sign_measurement
from figures import Figures

KEY = Ed25519PrivateKey.generate()


class Api:
    def __init__(self, client: httpx.AsyncClient, collector: Collector, data_dir: Path) -> None:
        self.client = client
        self.collector = collector
        self.data_dir = data_dir

    def stored_state(self) -> tuple[int, list[tuple[str, int]]]:
        files = sorted(
            (str(p.relative_to(self.data_dir)), p.stat().st_size)
            for p in (self.data_dir / "log").rglob("*")
            if p.is_file()
        )
        return len(self.collector), files

    async def submit(self, m: dict[str, Any], report_id: str = REPORT_ID) -> httpx.Response:
        return await self.client.post(f"/report/{report_id}", json={"format": "json", "content": m})


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    collector = await Collector.open(tmp_path / "data")
    app = CollectorApp(collector=collector)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
        yield Api(client, collector, tmp_path / "data")
    await collector.aclose()


def _submission(content: Any, fmt: Any = "json") -> bytes:
    return json.dumps({"format": fmt, "content": content}).encode()


def _without(key: str) -> dict[str, Any]:
    m = measurement()
    del m[key]
    return m


def _tampered_signature() -> dict[str, Any]:
    signed = sign_measurement(measurement(), KEY)
    signed["input"] = "https://x.com/altered"
    return signed


def _partial_signature() -> dict[str, Any]:
    signed = sign_measurement(measurement(), KEY)
    del signed["x_public_key"]
    return signed


SUBMIT = f"/report/{REPORT_ID}"
BIG = 9 * 1024 * 1024

# (id, method, path, body, headers, status, error code)
BAD: list[tuple[str, str, str, bytes | None, dict[str, str], int, str]] = [
    ("not-json", "POST", SUBMIT, b"{not json", {}, 400, "malformed_json"),
    ("empty-body", "POST", SUBMIT, b"", {}, 400, "malformed_json"),
    ("nan", "POST", SUBMIT, b'{"format":"json","content":{"x":NaN}}', {}, 400, "malformed_json"),
    ("array-body", "POST", SUBMIT, b"[1,2]", {}, 400, "not_an_object"),
    ("yaml-format", "POST", SUBMIT, _submission(measurement(), "yaml"), {}, 400,
     "unsupported_format"),
    ("no-content", "POST", SUBMIT, b'{"format":"json"}', {}, 400, "missing_field"),
    ("content-string", "POST", SUBMIT, _submission("hello"), {}, 400, "not_an_object"),
    ("no-test-name", "POST", SUBMIT, _submission(_without("test_name")), {}, 400, "missing_field"),
    ("test-name-number", "POST", SUBMIT, _submission(measurement(test_name=7)), {}, 400,
     "wrong_type"),
    ("test-name-spaces", "POST", SUBMIT, _submission(measurement(test_name="Web Conn")), {}, 400,
     "invalid_value"),
    ("cc-lower", "POST", SUBMIT, _submission(measurement(probe_cc="pk")), {}, 400,
     "invalid_value"),
    ("asn-bare-number", "POST", SUBMIT, _submission(measurement(probe_asn="17557")), {}, 400,
     "invalid_value"),
    ("start-time-words", "POST", SUBMIT,
     _submission(measurement(measurement_start_time="yesterday")), {}, 400, "invalid_value"),
    ("no-test-keys", "POST", SUBMIT, _submission(_without("test_keys")), {}, 400,
     "missing_field"),
    ("test-keys-array", "POST", SUBMIT, _submission(measurement(test_keys=[1])), {}, 400,
     "wrong_type"),
    ("input-number", "POST", SUBMIT, _submission(measurement(input=5)), {}, 400, "wrong_type"),
    ("report-id-mismatch", "POST", SUBMIT,
     _submission(measurement(report_id=REPORT_ID.replace("PK", "IR"))), {}, 400,
     "report_id_mismatch"),
    ("cc-not-the-reports", "POST", SUBMIT, _submission(measurement(probe_cc="IR")), {}, 400,
     "report_id_mismatch"),
    ("unscrubbed-ip", "POST", SUBMIT, _submission(measurement(probe_ip="203.0.113.5")), {}, 422,
     "unscrubbed_probe_ip"),
    ("tampered-signature", "POST", SUBMIT, _submission(_tampered_signature()), {}, 422,
     "bad_signature"),
    ("partial-signature", "POST", SUBMIT, _submission(_partial_signature()), {}, 422,
     "bad_signature"),
    ("oversize-declared", "POST", SUBMIT, b"{}", {"content-length": str(BIG)}, 413,
     "body_too_large"),
    ("oversize-body", "POST", "/measurements", b"x" * (33 * 1024 * 1024), {}, 413,
     "body_too_large"),
    ("bad-report-id", "POST", "/report/not-a-report", _submission(measurement()), {}, 404,
     "unknown_report"),
    ("open-without-cc", "POST", "/report",
     b'{"test_name":"web_connectivity","probe_asn":"AS1","software_name":"x",'
     b'"software_version":"1"}', {}, 400, "missing_field"),
    ("open-yaml", "POST", "/report",
     b'{"format":"yaml","test_name":"web_connectivity","probe_cc":"PK","probe_asn":"AS1",'
     b'"software_name":"x","software_version":"1"}', {}, 400, "unsupported_format"),
    ("close-bad-id", "POST", "/report/nope/close", b"", {}, 404, "unknown_report"),
    ("get-submit", "GET", SUBMIT, None, {}, 405, "method_not_allowed"),
    ("unknown-path", "GET", "/admin", None, {}, 404, "not_found"),
    ("batch-empty", "POST", "/measurements", b"\n\n", {}, 400, "invalid_value"),
    ("batch-too-many", "POST", "/measurements", b"{}\n" * 1001, {}, 413, "body_too_large"),
    ("consistency-words", "GET", "/log/consistency?first=abc", None, {}, 400, "invalid_value"),
    ("consistency-backwards", "GET", "/log/consistency?first=5&second=3", None, {}, 400,
     "invalid_value"),
    ("unknown-measurement", "GET", "/measurements/nope", None, {}, 404, "not_found"),
    ("unknown-receipt", "GET", "/measurements/nope/receipt", None, {}, 404, "not_found"),
    ("consistency-superscript", "GET", "/log/consistency?first=%C2%B2", None, {}, 400,
     "invalid_value"),
    ("consistency-huge", "GET", "/log/consistency?first=" + "9" * 5000, None, {}, 400,
     "invalid_value"),
    ("consistency-unknown-param", "GET", "/log/consistency?first=1&third=2", None, {}, 400,
     "invalid_value"),
    ("admin-off", "GET", "/admin/export", None, {"authorization": "Bearer x"}, 404, "not_found"),
    ("deep-path", "GET", "/report/a/b/c", None, {}, 404, "not_found"),
    ("put-health", "PUT", "/health", b"{}", {}, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.reliability
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
async def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    api: Api, method: str, path: str, body: bytes | None, headers: dict[str, str], status: int,
    code: str, figures: Figures, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    assert (await api.submit(measurement(999))).status_code == 200  # something to protect
    before = api.stored_state()
    response = await api.client.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == code
    figures.add("bad_inputs", server="collector", input=request.node.callspec.id,
                status=response.status_code, error=code)  # fmt: skip
    assert isinstance(answer["detail"], str)
    assert len(answer["detail"]) > 10
    assert api.stored_state() == before


def test_the_bad_input_table_is_big_enough() -> None:
    assert len(BAD) >= 25


@pytest.mark.asyncio
async def test_bk003_open_submit_close(api: Api) -> None:
    opened = await api.client.post(
        "/report",
        json={"test_name": "web_connectivity", "probe_cc": "PK", "probe_asn": "AS17557",
              "software_name": "ooniprobe-cli", "software_version": "3.20",
              "test_version": "0.5.28", "data_format_version": "0.2.0", "format": "json"},
    )  # fmt: skip
    assert opened.status_code == 200
    report_id = opened.json()["report_id"]
    assert opened.json()["supported_formats"] == ["json"]
    assert report_id.split("_")[1:4] == ["webconnectivity", "PK", "17557"]
    m = measurement(1, report_id=report_id)
    answer = (await api.submit(m, report_id)).json()
    uid = answer["measurement_uid"]
    assert uid.split("_")[1:3] == ["PK", "webconnectivity"]
    assert (await api.client.post(f"/report/{report_id}/close", json={})).status_code == 200
    stored = await api.client.get(f"/measurements/{uid}")
    assert stored.content == canonicalize(m)
    receipt = Receipt.from_json(answer["x_receipt"])
    assert receipt_problems(canonicalize(m), receipt) == []


@pytest.mark.asyncio
async def test_resubmission_returns_the_same_uid_and_stores_nothing(api: Api) -> None:
    m = sign_measurement(measurement(2), KEY)
    first = (await api.submit(m)).json()
    before = api.stored_state()
    # the same measurement, spelled differently (key order, whitespace)
    spelled = json.dumps({"content": dict(reversed(list(m.items()))), "format": "json"}, indent=2)
    again = await api.client.post(SUBMIT, content=spelled)
    assert again.json()["measurement_uid"] == first["measurement_uid"]
    assert again.json()["x_duplicate"] is True
    assert api.stored_state() == before


@pytest.mark.asyncio
async def test_batch_accepts_rejects_and_dedups_per_line(api: Api) -> None:
    good = [canonicalize(sign_measurement(measurement(i), KEY)) for i in range(10, 15)]
    lines = [*good, b'{"test_name": 5}', good[0]]
    response = await api.client.post("/measurements", content=b"\n".join(lines))
    assert response.status_code == 200
    answer = response.json()
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["accepted"] * 5 + ["rejected", "duplicate"]
    assert answer["results"][5]["error"] == "wrong_type"
    head = answer["tree_head"]
    for line, result in zip(lines, answer["results"], strict=True):
        if result["status"] == "rejected":
            continue
        receipt = Receipt.from_json({**result["receipt"], "tree_head": head})
        assert receipt_problems(line, receipt) == []
    assert len(api.collector) == 5


@pytest.mark.asyncio
async def test_consistency_proofs_between_tree_heads(api: Api) -> None:
    heads = []
    for i in range(20, 27):
        await api.submit(measurement(i))
        heads.append(TreeHead.from_json((await api.client.get("/log/tree-head")).json()))
    old, new = heads[1], heads[-1]
    answer = (
        await api.client.get(
            "/log/consistency", params={"first": old.tree_size, "second": new.tree_size}
        )
    ).json()
    proof = [bytes.fromhex(h) for h in answer["proof"]]
    assert verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof)
    assert not verify_consistency(
        old.tree_size, new.tree_size, heads[0].root_hash, new.root_hash, proof
    )


@pytest.mark.asyncio
async def test_reopening_rebuilds_the_same_tree(api: Api) -> None:
    for i in range(30, 40):
        await api.submit(measurement(i))
    head = api.collector.tree_head
    reopened = await Collector.open(api.data_dir)  # the first one is idle: a reader's view
    try:
        assert len(reopened) == head.tree_size
        assert reopened.tree_head.root_hash == head.root_hash
        assert reopened.read(3).canonical == api.collector.read(3).canonical
    finally:
        await reopened.aclose()


@pytest.mark.asyncio
async def test_405_names_the_allowed_methods(api: Api) -> None:
    for method, path, allowed in (
        ("GET", SUBMIT, "POST"),
        ("DELETE", "/measurements", "POST"),
        ("POST", "/log/tree-head", "GET"),
        ("PATCH", "/openapi.json", "GET"),
    ):
        response = await api.client.request(method, path)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed


@pytest.mark.asyncio
async def test_openapi_document_is_served(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "blockproof collector"
