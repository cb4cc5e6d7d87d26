"""Fixtures of the browser tests: a small simulated store with one hostile measurement,
the explorer serving it as a process on 127.0.0.1, one headless Chromium per session,
and a fresh watched page per test (see browser_kit)."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_kit import (
    ARTIFACTS,
    HOSTILE_ID,
    Chromium,
    ExplorerProcess,
    ExplorerStore,
    Ui,
    expect,
    find_chromium,
    hostile_measurement,
    sha256,
)
from click.testing import CliRunner

from blockproof.cli import main

HERE = Path(__file__).resolve().parent


def invoke(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (args, result.stderr, result.exception)


@pytest.fixture(scope="session")
def explorer_store(tmp_path_factory: pytest.TempPathFactory) -> ExplorerStore:
    """Pakistan 2024 simulated (12 probes over 30 days: the election-day outage and the
    X block from 17 February), plus the hostile measurement from a JSON-lines file;
    ingested and analysed."""
    root = tmp_path_factory.mktemp("browser-store")
    simulated = root / "pk.jsonl.gz"
    invoke("simulate", "pakistan-2024-x", "--probes", "12", "--days", "30", "--out", str(simulated))
    hostile = root / "hostile.jsonl"
    hostile.write_bytes(hostile_measurement())
    store = root / "store"
    invoke("ingest", str(simulated), str(hostile), "--store", str(store))
    invoke("analyze", "--store", str(store))
    lines = [*gzip.decompress(simulated.read_bytes()).splitlines(), hostile.read_bytes().strip()]
    return ExplorerStore(
        path=store,
        hashes=frozenset(sha256(line) for line in lines if line),
        hostile_id=HOSTILE_ID,
        hostile_sha256=sha256(hostile.read_bytes().rstrip(b"\n")),
    )


@pytest.fixture(scope="session")
def explorer_url(
    explorer_store: ExplorerStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The explorer over that store, a real process on 127.0.0.1."""
    work = tmp_path_factory.mktemp("explorer")
    process = ExplorerProcess(explorer_store.path, work / "explorer.stderr.log", work / "home")
    process.start()
    try:
        yield process.url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    """One headless Debian Chromium for the session (never a downloaded browser),
    started by the first test that opens a page; fails at once if it cannot be."""
    executable = find_chromium()
    if expect is None:
        pytest.fail(
            "Playwright for Python is not installed: run `make test` (it installs the dev "
            "extra, playwright==1.65.2)",
            pytrace=False,
        )
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    ARTIFACTS.mkdir(parents=True)
    browser = Chromium(executable)
    _running.append(browser)
    try:
        yield browser
    finally:
        browser.close()


_running: list[Chromium] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(nextitem: pytest.Item | None) -> Iterator[None]:
    """After the last browser test, stop the browser (see browser_kit.Chromium)."""
    try:
        return (yield)
    finally:
        if nextitem is None or HERE not in nextitem.path.parents:
            for browser in _running:
                browser.close()


@pytest.fixture
def ui(chromium: Chromium, explorer_url: str) -> Iterator[Ui]:
    """A fresh browser context and page on the explorer; fails on any console error."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = chromium.get().new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    try:
        watched = Ui(context.new_page(), explorer_url)
        yield watched
        watched.assert_clean()
    finally:
        context.close()
