"""Every test gets its own BLOCKPROOF_HOME: keys and spool never touch the user's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from figures import Figures


@pytest.fixture(autouse=True)
def _blockproof_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("blockproof-home")
    monkeypatch.setenv("BLOCKPROOF_HOME", str(home))
    monkeypatch.delenv("BLOCKPROOF_COLLECTOR", raising=False)
    monkeypatch.delenv("BLOCKPROOF_CONTROL", raising=False)
    return home


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Where a reliability test records what it tried and measured (tests/figures.py)."""
    return Figures(request.node.nodeid)
