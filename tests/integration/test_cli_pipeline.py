"""The pipeline's commands as a user meets them: simulate, ingest, analyze, events,
verdicts, rules, rejudge, the demo; help that teaches and bad input answered with exit 2."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from blockproof.cli import main

DATA = Path(__file__).parent.parent / "data"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "command", ["ingest", "analyze", "events", "verdicts", "rules", "rejudge", "simulate"]
)
def test_help_teaches(command: str) -> None:
    code, out, _ = invoke(command, "--help")
    assert code == 0
    assert "Usage:" in out
    assert "--" in out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    data = tmp / "outage.jsonl.gz"
    code, out, err = invoke("simulate", "test-outage", "--probes", "60", "--days", "40",
                            "--out", str(data))  # fmt: skip
    assert code == 0, err
    assert "measurements" in out
    assert (tmp / "outage.truth.json").exists()
    code, out, err = invoke("ingest", str(data), str(DATA / "ooni"), "--store", str(tmp / "s"))
    assert code == 0, err
    assert "new measurement" in out
    return tmp / "s"


def test_analyze_then_events(store: Path) -> None:
    code, out, err = invoke("analyze", "--store", str(store))
    assert code == 0, err
    assert "1 event(s)" in out
    code, out, _ = invoke("events", "--store", str(store), "--json")
    assert code == 0
    events = json.loads(out)["events"]
    assert [e["kind"] for e in events] == ["outage"]
    assert events[0]["networks"][0]["asn"] == 64498
    code, out, _ = invoke("events", "--store", str(store))
    assert code == 0
    assert "outage" in out


def test_verdicts_one_line_per_measurement(store: Path) -> None:
    code, out, _ = invoke("verdicts", "--store", str(store), "--json", "--outcome", "anomaly")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines
    expected = {
        "report_id",
        "input",
        "test_name",
        "probe_cc",
        "probe_asn",
        "measurement_start_time",
        "outcome",
        "ooni_outcome",
        "method",
        "rule_id",
        "fingerprint",
    }
    for line in lines:
        assert set(line) == expected
        assert line["outcome"] == "anomaly"
        assert line["ooni_outcome"] in ("ok", "anomaly", "confirmed", "failure")
        assert line["probe_asn"].startswith("AS")
    code, out, _ = invoke("verdicts", "--store", str(store), "--limit", "3", "--explain")
    assert code == 0
    assert len(out.splitlines()) == 3


def test_reingest_adds_nothing(store: Path) -> None:
    code, out, _ = invoke("ingest", str(DATA / "ooni"), "--store", str(store), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["new"] == 0
    assert report["skipped"] == report["files"] > 0  # ingested whole before: not read
    code, out, _ = invoke("ingest", str(DATA / "ooni"), "--store", str(store))
    assert code == 0
    assert "0 new measurement(s)" in out
    assert "not read again" in out
    code, out, _ = invoke("ingest", str(DATA / "ooni"), "--store", str(store), "--json", "--reread")
    assert code == 0
    report = json.loads(out)
    assert (report["new"], report["skipped"]) == (0, 0)
    assert report["duplicate"] > 0


def test_rejudge_reproduces_the_verdicts(store: Path) -> None:
    code, out, err = invoke("rejudge", "--store", str(store))
    assert code == 0, err
    assert "0 verdict(s) changed" in out


def test_rules_lists_every_rule() -> None:
    code, out, _ = invoke("rules", "--json")
    assert code == 0
    listed = json.loads(out)["rules"]
    ids = [r["id"] for r in listed]
    assert len(ids) == len(set(ids))
    assert {"wc.tls.reset", "fp.dns", "fp.http"} <= set(ids)
    assert {r["outcome"] for r in listed} <= {"ok", "anomaly", "confirmed", "down", "failure"}


BAD = [
    (["ingest", "--store", "s"], "Missing argument"),
    (["ingest", "no-such-file.jsonl", "--store", "s"], "does not exist"),
    (["analyze", "--store", "no-such-store"], "not a blockproof store"),
    (["events", "--store", "no-such-store"], "analyze"),
    (["verdicts", "--store", "no-such-store"], "not a blockproof store"),
    (["analyze", "--store", "s", "--engine", "oracle"], "oracle"),
    (["simulate", "no-such-scenario", "--out", "x.jsonl"], "no-such-scenario"),
    (["simulate", "test-block"], "--out"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_exit_2_with_a_clear_message(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(*args)
    assert code == 2
    assert message in out + err


def test_ingest_of_a_folder_without_measurements_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = invoke("ingest", str(tmp_path / "empty"), "--store", str(tmp_path / "s"))
    assert code == 2
    assert "no measurement files" in err


def test_demo_runs_the_pipeline_and_prints_the_timeline(tmp_path: Path) -> None:
    code, _, err = invoke("demo", "--workdir", str(tmp_path), "--probes", "30", "--no-serve")
    assert code == 0, err
    assert "Detected events" in err
    assert "blocked" in err  # (rich may wrap "x blocked" inside its cell)
    assert "outage" in err
    events = json.loads((tmp_path / "store" / "events.json").read_text())["events"]
    assert {(e["kind"], e["platform"]) for e in events} >= {
        ("outage", "*"),
        ("platform_block", "x"),
    }
    assert "real timeline" in err
    reports = list(tmp_path.glob("report-pk-x-*.html"))
    assert len(reports) == 1
    assert "evidence report of the X block" in err
    html = reports[0].read_text()
    assert "X (Twitter) has been blocked in PK" in html

    # the custody chain: sample measurements signed by a demo probe's key and included
    # in the demo collector's log, both checked at ingest
    samples = html[html.index("<h2>Sample measurements</h2>") : html.index("<h2>Methodology")]
    assert "valid (probe key " in samples
    assert re.search(r"valid: leaf \d+ of a log of \d+", samples)
    keys = sorted(p.name for p in (tmp_path / "custody" / "keys").iterdir())
    assert "AS17557" in keys  # the lab's network: its measurements are signed too
    assert not (Path(os.environ["BLOCKPROOF_HOME"]) / "probe-key.pem").exists()  # not ours
    assert "custody: 8 lab measurements and" in err
    # the printed command checks one of them, offline, and it works
    command = re.search(r"^\s*blockproof verify (.+)$", err, re.MULTILINE)
    assert command, err
    args = shlex.split(command.group(1))
    assert args[1] == "--receipt"
    assert args[3] == "--log-id"
    code, _, verified = invoke("verify", *args)
    assert code == 0, verified
    assert "VERIFIED" in verified
    assert "ok   signature" in verified
    assert "ok   inclusion" in verified

    # the compliance view since the Sindh High Court's order of 22 February 2024
    assert '<h2 id="compliance">Compliance since 22 February 2024</h2>' in html
    assert "Since 22 February 2024, AS" in err
    assert "measured hours" in err


def test_a_store_judged_before_the_two_outcomes_says_to_rejudge(tmp_path: Path) -> None:
    """Verdicts written before ``ooni_outcome`` existed: a clear error naming the fix,
    and ``rejudge`` brings the store up to date."""
    import pyarrow.parquet as pq

    store = tmp_path / "old"
    code, _, err = invoke("ingest", str(DATA / "ooni" / "fastpath-testdata"), "--store", str(store))
    assert code == 0, err
    for path in (store / "verdicts").rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["ooni_outcome"]), path)
    code, _, err = invoke("verdicts", "--store", str(store), "--json")
    assert code == 2
    assert f"run `blockproof rejudge --store {store}` once" in err
    assert "Binder" not in err
    code, _, err = invoke("rejudge", "--store", str(store))
    assert code == 0, err
    code, out, err = invoke("verdicts", "--store", str(store), "--json")
    assert code == 0, err
    assert all("ooni_outcome" in json.loads(line) for line in out.splitlines())
