"""Probe -> spool -> upload -> collector (a real process on loopback) -> verify.

Also: uploading while the collector is down keeps everything pending and exits
non-zero; a later upload sends each measurement exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from collector_kit import CollectorProcess, free_port, measurement, running_collector

from blockproof.cli import main
from blockproof.codec.jcs import canonicalize
from blockproof.custody.keys import load_or_create_key
from blockproof.custody.signing import sign_measurement
from blockproof.probe.spool import Spool


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _measurements(spool: Spool) -> list[Path]:
    return sorted(e.path for e in spool.entries(("uploaded",)))


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_run_in_the_lab_then_upload_then_verify(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    with running_collector(tmp_path / "collector") as collector:
        code, out, err = invoke(
            "run", "--lab", "pakistan-2024-x", "--spool", str(spool_dir), "--no-upload",
            "--collector", collector.url, "--json", "https://x.com/", "https://www.example.org/",
        )  # fmt: skip
        assert code == 0, err
        assert "2 measurements signed and spooled" in err
        assert len(Spool(spool_dir).pending()) == 2
        code, _, err = invoke("upload", "--spool", str(spool_dir), "--collector", collector.url)
        assert code == 0, err
        assert "2 accepted" in err
        # without --no-upload, run uploads by itself when a collector is configured
        code, _, err = invoke(
            "run", "--lab", "pakistan-2024-x", "--spool", str(spool_dir),
            "--collector", collector.url, "https://www.wikipedia.org/",
        )  # fmt: skip
        assert code == 0, err
        assert "1 accepted" in err
        health = httpx.get(collector.url + "/health").json()
    assert health["tree_size"] == 3
    lines = [json.loads(line) for line in out.splitlines()]
    assert {m["input"] for m in lines} == {"https://x.com/", "https://www.example.org/"}
    assert all(m["x_key_id"] == load_or_create_key().key_id for m in lines)

    spool = Spool(spool_dir)
    assert spool.pending() == []
    files = _measurements(spool)
    assert len(files) == 3
    code, _, err = invoke("verify", *map(str, files))
    assert code == 0, err
    assert err.count("VERIFIED") == 3

    # flip one byte of a stored measurement: a letter inside the URL it measured
    target = next(p for p in files if b"https://x.com/" in p.read_bytes())
    data = bytearray(target.read_bytes())
    at = data.index(b"https://x.com/") + len(b"https://")
    data[at] ^= 0x01  # 'x' -> 'y'
    target.write_bytes(bytes(data))
    code, _, err = invoke("verify", str(target))
    assert code == 1
    assert "FAILED" in err
    assert "signature: INVALID" in err
    assert "does not match the receipt" in err

    # a byte that breaks the JSON is reported as such
    target.write_bytes(b"{" + bytes(data))
    code, _, err = invoke("verify", str(target))
    assert code == 1
    assert "not valid JSON" in err


def _spool_with(spool: Spool, count: int) -> list[bytes]:
    key = load_or_create_key()
    lines = []
    for i in range(count):
        canonical = canonicalize(sign_measurement(measurement(i), key.private_key))
        spool.add(canonical, "2024-02-17 16:05:02")
        lines.append(canonical)
    return lines


@pytest.mark.timeout(120)
def test_upload_while_down_stays_pending_then_sends_each_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    lines = _spool_with(spool, 6)
    collector = CollectorProcess(tmp_path / "collector", port=free_port())

    # the collector is down: nothing leaves the spool, the exit code says so
    code, _, err = invoke(
        "upload", "--spool", str(spool.root), "--collector", collector.url, "--attempts", "2"
    )
    assert code == 1
    assert "6 still pending" in err
    assert len(spool.pending()) == 6

    collector.start()
    try:
        # two measurements reached the log earlier but their answers were lost
        for line in lines[:2]:
            response = httpx.post(collector.url + "/measurements", content=line)
            assert response.json()["results"][0]["status"] == "accepted"
        code, _, err = invoke("upload", "--spool", str(spool.root), "--collector", collector.url)
        assert code == 0, err
        assert "4 accepted, 2 already there" in err
        assert spool.pending() == []
        code, _, err = invoke("upload", "--spool", str(spool.root), "--collector", collector.url)
        assert code == 0
        assert "nothing pending" in err
        assert httpx.get(collector.url + "/health").json()["tree_size"] == 6
        uids = [e.sidecar_json()["measurement_uid"] for e in spool.entries(("uploaded",))]
        assert len(set(uids)) == 6
        for uid, line in zip(sorted(uids), sorted(lines), strict=False):
            assert httpx.get(f"{collector.url}/measurements/{uid}").status_code == 200
            del line
    finally:
        collector.stop()


@pytest.mark.timeout(120)
def test_list_show_rm(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    _spool_with(spool, 3)
    code, out, _ = invoke("list", "--spool", str(spool.root), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["state"] for r in rows] == ["pending"] * 3
    assert rows[0]["input"] == "https://x.com/0" or rows[0]["input"].startswith("https://x.com/")
    code, out, _ = invoke("show", "--spool", str(spool.root), rows[0]["id"][:20])
    assert code == 0
    assert json.loads(out)["measurement"]["probe_cc"] == "PK"
    code, _, err = invoke("rm", "--spool", str(spool.root), "--older-than", "1d")
    assert code == 0
    assert "would remove 0" in err  # pending measurements are kept unless asked
    code, _, err = invoke(
        "rm", "--spool", str(spool.root), "--older-than", "1d", "--include-pending", "--yes"
    )
    assert code == 0
    assert "removed 3" in err
    assert spool.entries() == []


@pytest.mark.timeout(120)
def test_verify_consistency_between_saved_tree_heads(tmp_path: Path) -> None:
    with running_collector(tmp_path / "collector") as collector:

        def submit(i: int) -> None:
            line = canonicalize(measurement(i))
            assert httpx.post(collector.url + "/measurements", content=line).status_code == 200

        def save_head(name: str) -> Path:
            code, out, err = invoke("collector", "head", collector.url)
            assert code == 0, err
            path = tmp_path / name
            path.write_text(out)
            return path

        for i in range(3):
            submit(i)
        old = save_head("monday.json")
        for i in range(3, 11):
            submit(i)
        new = save_head("friday.json")
        code, _, err = invoke(
            "verify", "--consistency", str(old), str(new), "--collector", collector.url
        )
        assert code == 0, err
        assert "contains, unchanged, all 3 measurements" in err

        # offline, with the proof saved beforehand
        proof = httpx.get(collector.url + "/log/consistency", params={"first": 3, "second": 11})
        proof_file = tmp_path / "proof.json"
        proof_file.write_bytes(proof.content)
        code, _, err = invoke(
            "verify", "--consistency", str(old), str(new), "--proof", str(proof_file)
        )
        assert code == 0, err

    # a rewritten history: the old head claims another root for the same size
    forged = json.loads(old.read_text())
    forged["root_hash"] = "00" * 32
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    code, _, err = invoke(
        "verify", "--consistency", str(forged_file), str(new), "--proof", str(proof_file)
    )
    assert code == 1
    assert "signature is not valid" in err
