"""Shared by the browser tests: Chromium's path, the explorer as a process, a watched page.

Theory of operation: the tests drive Debian's Chromium (the ``chromium`` package that
``make test`` installs) through Playwright for Python, launched from its system path:
no Playwright browser is ever downloaded. The explorer runs as a real process on
127.0.0.1. Every page is watched: a console error or an uncaught page error fails the
test that caused it. Screenshots and downloads go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture fails every test, saying what to do
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Download, Page, Playwright, Response

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DATA = ROOT / "tests" / "data"

# Debian's `chromium` package installs the browser itself as /usr/lib/chromium/chromium,
# and /usr/bin/chromium as a shell wrapper that sources /etc/chromium.d/* (which adds
# flags such as --load-extension=/usr/share/chromium/extensions/... and
# --enable-remote-extensions) and then execs that binary. Both work under Playwright (the
# wrapper execs in place, so Playwright's pipe to the browser survives), but the binary
# runs with exactly the flags Playwright passes (--headless, --no-sandbox, ...) and
# without the system's extensions, so it is launched directly; the wrapper is only the
# fallback should the binary move. BLOCKPROOF_CHROMIUM (also read by the PDF printer,
# explorer/pdf.py) names another browser.
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
BROWSER_ENV = "BLOCKPROOF_CHROMIUM"

TIMEOUT_MS = 15_000  # any one wait in a page: an element, a download, a URL
NAVIGATION_TIMEOUT_MS = 30_000  # a page load (a measurement page reads a gzip source)
SCREENSHOT_TIMEOUT_MS = 60_000  # a full page can be long

# A real Web Connectivity measurement (OONI, Indonesia, 2025: the ISP answered Kominfo's
# blockpage). Its HTTP body is replaced with a real blockpage from tests/data/blockpages
# with a script and an image error handler injected: the explorer must show them as
# text and never run them.
HOSTILE_BASE = (
    DATA
    / "ooni"
    / "fastpath-testdata"
    / "20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json"
)
HOSTILE_BLOCKPAGE = DATA / "blockpages" / "http" / "nat_id_trustpositif.html"
HOSTILE_SCRIPT = '<script>window.__pwned = 1; document.title = "PWNED"</script>'
HOSTILE_IMG = '<img src=x onerror="window.__pwned=2">'
# OONI's measurement_uid of that measurement (the file's name): the explorer's id for it
HOSTILE_ID = HOSTILE_BASE.stem


@dataclass(frozen=True)
class ExplorerStore:
    """The store the explorer serves in these tests."""

    path: Path
    hashes: frozenset[str]  # SHA-256 of every measurement line ingested
    hostile_id: str
    hostile_sha256: str


def hostile_measurement() -> bytes:
    """The hostile measurement as one JSON line (with its newline)."""
    obj = json.loads(HOSTILE_BASE.read_text(encoding="utf-8"))
    page = HOSTILE_BLOCKPAGE.read_text(encoding="utf-8")
    assert "</body>" in page
    body = page.replace("</body>", HOSTILE_SCRIPT + HOSTILE_IMG + "</body>", 1)
    response = obj["test_keys"]["requests"][0]["response"]
    assert isinstance(response["body"], str)
    assert response["body"]  # a real body: it is replaced
    response["body"] = body
    obj["measurement_uid"] = HOSTILE_ID
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_chromium() -> str:
    """The Chromium binary to launch; fails the test, with what to do, if there is none."""
    named = os.environ.get(BROWSER_ENV)
    if named:
        found = shutil.which(named)
        if not found:
            pytest.fail(f"{BROWSER_ENV}={named!r}: no such program", pytrace=False)
        return found
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    pytest.fail(
        f"Chromium is not installed (looked for {' and '.join(CHROMIUM_PATHS)}): run "
        "`make test`, which installs Debian's chromium package; or set "
        f"{BROWSER_ENV} to a Chromium binary. The browser tests never download a browser.",
        pytrace=False,
    )


class Chromium:
    """Headless Chromium under Playwright, started on first use and stopped by ``close``.

    Playwright's sync API keeps its event loop marked as running in this thread for as
    long as it is started, and ``asyncio.run`` (which the CLI and other tests call)
    refuses to run then. So the session's browser is stopped as soon as the browser
    tests are done (conftest's teardown hook), not at the end of the session; a browser
    test that comes later anyway (an unusual test order) starts it again.
    """

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def get(self) -> Browser:
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            expect.set_options(timeout=TIMEOUT_MS)
            self._playwright = sync_playwright().start()
            try:
                self._browser = self._playwright.chromium.launch(
                    executable_path=self.executable, headless=True, timeout=60_000
                )
            except BaseException:
                self.close()
                raise
        return self._browser

    def close(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ExplorerProcess:
    """``blockproof serve explorer`` as a real process on 127.0.0.1."""

    def __init__(self, store: Path, log_path: Path, home: Path) -> None:
        self.store = store
        self.log_path = log_path
        self.home = home
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until it answers; a port taken meanwhile gets another try."""
        for _ in range(3):
            self.port = free_port()
            if self._start_once(timeout):
                return
        raise RuntimeError(f"the explorer did not start: {self._log_tail()}")

    def _start_once(self, timeout: float) -> bool:
        env = {**os.environ, "BLOCKPROOF_HOME": str(self.home)}
        with self.log_path.open("ab") as log:  # a file, not a pipe: it never fills up
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blockproof", "serve", "explorer",
                 "--store", str(self.store), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "address already in use" in self._log_tail().lower():
                    return False
                raise RuntimeError(
                    f"the explorer exited ({self.proc.returncode}): {self._log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return True
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the explorer did not answer within {timeout:.0f} s")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Ui:
    """A page of the explorer, watched for console errors and uncaught page errors."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.reported = 0  # errors already failed a check (the fixture's own check skips them)
        page.set_default_timeout(TIMEOUT_MS)
        page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("crash", lambda _: self.errors.append("the page crashed"))
        page.on("dialog", self._on_dialog)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console error at {self.page.url}: {message.text}")

    def _on_dialog(self, dialog: Any) -> None:  # a dialog means a page script ran
        self.errors.append(f"a {dialog.type} dialog opened: {dialog.message!r}")
        dialog.dismiss()

    def visit(self, path: str, status: int = 200) -> Response:
        response = self.page.goto(self.base_url + path, wait_until="load")
        assert response is not None, path
        assert response.status == status, (path, response.status)
        return response

    def path(self) -> str:
        """The current URL without the explorer's origin."""
        url = self.page.url
        assert url.startswith(self.base_url), url
        return url[len(self.base_url) :]

    def wait_for_path(self, prefix: str) -> None:
        """Wait (bounded) until the page's URL starts with ``prefix``, then for its load."""
        self.page.wait_for_url(lambda url: url.startswith(self.base_url + prefix))
        self.page.wait_for_load_state("load")

    def shot(self, name: str) -> Path:
        """A full-page screenshot to test-artifacts/browser/NAME.png: the whole height, the
        viewport's width (a long unbroken line, such as a body inside the raw JSON, can
        make a page tens of thousands of pixels wide: not worth a huge image)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / f"{name}.png"
        width, height = self.page.evaluate(
            "[window.innerWidth, document.documentElement.scrollHeight]"
        )
        self.page.screenshot(
            path=str(target),
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": height},
            timeout=SCREENSHOT_TIMEOUT_MS,
        )
        assert target.stat().st_size > 0
        return target

    def download(self, selector: str, name: str) -> bytes:
        """Click the link ``selector``, wait (bounded) for its download, keep it as an
        artifact named ``name``, return its bytes."""
        with self.page.expect_download(timeout=TIMEOUT_MS) as info:
            self.page.locator(selector).click()
        download: Download = info.value
        assert download.failure() is None, download.failure()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / name
        download.save_as(target)
        return target.read_bytes()

    def assert_clean(self) -> None:
        """Fail if the page logged a console error or raised since the last check."""
        new, self.reported = self.errors[self.reported :], len(self.errors)
        assert not new, "\n".join(new)
