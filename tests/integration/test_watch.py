"""``blockproof watch`` in the lab: rounds, one line each, surviving a collector that is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from collector_kit import CollectorProcess, free_port

from blockproof.cli import main
from blockproof.probe.spool import Spool


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_watch_keeps_measuring_while_the_collector_is_down_then_catches_up(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    collector = CollectorProcess(tmp_path / "collector", port=free_port())
    result = CliRunner().invoke(
        main,
        ["watch", "--lab", "pakistan-2024-x", "--rounds", "2", "--every", "1s",
         "--spool", str(spool.root), "--collector", collector.url, "https://x.com/"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rounds = [line for line in result.stderr.splitlines() if " round " in line]
    assert len(rounds) == 2, result.stderr
    assert "1 measured, 1 blocked (tls 1)" in rounds[0]
    assert "failed" in rounds[0]
    assert "pending" in rounds[0]
    # each round measured anew: two signed measurements wait in the spool
    assert len(spool.pending()) == 2

    collector.start()
    try:
        result = CliRunner().invoke(
            main,
            ["watch", "--lab", "pakistan-2024-x", "--rounds", "1", "--every", "1s",
             "--spool", str(spool.root), "--collector", collector.url, "https://x.com/"],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert "uploaded 3; 0 pending" in result.stderr
        assert spool.pending() == []
    finally:
        collector.stop()
