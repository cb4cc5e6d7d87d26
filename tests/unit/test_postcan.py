"""OONI's postcans read as measurement lines, and their atomic, reproducible conversion.

The postcans are built here the way OONI's uploader builds them (a tar.gz of
``{"format": "json", "content": MEASUREMENT}`` documents, one ``.post`` member each)
around a real OONI measurement (tests/data/ooni, see its SOURCES.md)."""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

from blockproof.sources.files import atomic_file, remove_stale_temps
from blockproof.sources.ooni_bucket import TEMP_SUFFIX
from blockproof.sources.postcan import convert_postcan, iter_postcan, measurement_line

DATA = Path(__file__).parent.parent / "data" / "ooni" / "fastpath-testdata"
REAL = json.loads((DATA / "web_connectivity_ir_fp.json").read_bytes())
DIR = "var/lib/ooniapi/measurements/incoming/2024021715_IR_webconnectivity/"
UID = "20220815190130.000000_IR_webconnectivity_0123456789abcdef"


def post(content: Any, fmt: Any = "json") -> bytes:
    return json.dumps({"format": fmt, "content": content}).encode()


def tarball(members: list[tuple[str, bytes]], *, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MEMBER_CASES = [
    # (member name, data, problem or None, measurement_uid expected)
    (DIR + UID + ".post", post(REAL), None, UID),
    (DIR + UID + ".post", post({**REAL, "measurement_uid": "kept"}), None, "kept"),
    ("flat-name.post", post(REAL), None, "flat-name"),
    (DIR + UID + ".post", post(REAL, "JSON"), None, UID),
    (DIR + UID + ".post", post("test_name: x", "yaml"), "format 'yaml'", None),
    (DIR + UID + ".post", post(REAL, None), "format None", None),
    (DIR + UID + ".post", post([1, 2]), "no measurement object", None),
    (DIR + UID + ".post", b"[1, 2]", "not a JSON object", None),
    (DIR + UID + ".post", b"{broken", "not JSON", None),
    (DIR + "notes.txt", b"hello", "not a .post file", None),
]


@pytest.mark.parametrize(("name", "data", "problem", "uid"), MEMBER_CASES)
def test_members(name: str, data: bytes, problem: str | None, uid: str | None) -> None:
    (member,) = list(iter_postcan(io.BytesIO(tarball([(name, data)]))))
    assert member.name == name
    if problem is None:
        assert member.problem is None
        assert member.line is not None
        assert b"\n" not in member.line
        measurement = json.loads(member.line)
        assert measurement["measurement_uid"] == uid
        assert measurement["report_id"] == REAL["report_id"]
        assert measurement["test_keys"] == REAL["test_keys"]
    else:
        assert member.line is None
        assert member.problem is not None
        assert problem in member.problem


def test_uncompressed_postcans_named_gz_are_read_too() -> None:
    data = tarball([(DIR + UID + ".post", post(REAL))], compress=False)
    (member,) = list(iter_postcan(io.BytesIO(data)))
    assert member.line is not None


def test_a_member_over_the_bound_is_left_out() -> None:
    data = tarball([(DIR + UID + ".post", post(REAL))])
    (member,) = list(iter_postcan(io.BytesIO(data), max_member=100))
    assert member.problem is not None
    assert "bound" in member.problem


def test_measurement_line_is_compact_json() -> None:
    member = measurement_line(UID + ".post", post({"a": 1}))
    assert member.line == b'{"a":1,"measurement_uid":"' + UID.encode() + b'"}'


def test_conversion_is_atomic_reproducible_and_loses_nothing(tmp_path: Path) -> None:
    can = tmp_path / "x.tar.gz"
    can.write_bytes(
        tarball(
            [
                (DIR + UID + ".post", post(REAL)),
                (DIR + "b.post", post("x: 1", "yaml")),
                (DIR + "c.post", post({**REAL, "report_id": "other"})),
            ]
        )
    )
    target = tmp_path / "x.postcan.jsonl.gz"
    first = convert_postcan(can, target)
    assert (first.lines, len(first.skipped), first.broke_off) == (2, 1, None)
    assert first.size == target.stat().st_size
    data = target.read_bytes()
    lines = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    assert [m["report_id"] for m in lines] == [REAL["report_id"], "other"]
    inode, mtime = target.stat().st_ino, target.stat().st_mtime_ns
    second = convert_postcan(can, target)
    assert target.read_bytes() == data  # same bytes: gzip without name or time
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (inode, mtime)  # untouched
    assert second.lines == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.postcan.jsonl.gz", "x.tar.gz"]


def test_a_postcan_that_breaks_off_gives_what_came_before(tmp_path: Path) -> None:
    noise = random.Random(1)  # incompressible members, so that a cut falls between them
    members = [
        (DIR + f"{i}.post", post({**REAL, "report_id": str(i), "x": noise.randbytes(9000).hex()}))
        for i in range(10)
    ]
    whole = tarball(members)
    can = tmp_path / "cut.tar.gz"
    can.write_bytes(whole[: len(whole) // 2])
    result = convert_postcan(can, tmp_path / "cut.postcan.jsonl.gz")
    assert result.broke_off is not None
    assert 0 < result.lines < 10
    got = gzip.decompress((tmp_path / "cut.postcan.jsonl.gz").read_bytes()).splitlines()
    assert len(got) == result.lines


def test_atomic_file_leaves_nothing_on_error_and_stale_parts_are_removed(tmp_path: Path) -> None:
    final = tmp_path / "f.jsonl.gz"
    final.write_bytes(b"old")

    def interrupted() -> None:
        with atomic_file(final) as handle:
            handle.write(b"new, but")
            raise RuntimeError("cut")

    with pytest.raises(RuntimeError):
        interrupted()
    assert final.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.jsonl.gz"]
    with atomic_file(final) as handle:
        handle.write(b"new")
    assert final.read_bytes() == b"new"
    (tmp_path / f".f.jsonl.gz.abc{TEMP_SUFFIX}").write_bytes(b"x")
    (tmp_path / f"visible{TEMP_SUFFIX}").write_bytes(b"not ours: no leading dot")
    assert remove_stale_temps(tmp_path) == 1
    assert remove_stale_temps(tmp_path / "missing") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl.gz", f"visible{TEMP_SUFFIX}"]
