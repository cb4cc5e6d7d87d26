"""Print an HTML report to PDF with headless Chromium (Debian's ``chromium`` package).

The report is already a self-contained, print-styled page, so a browser's own
print engine gives the faithful PDF (fonts, SVG, page breaks) with no second
layout engine to keep in step. Chromium runs with a throw-away profile, no
network use beyond the local file, and a time limit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from blockproof.errors import BlockproofError, InputError

BROWSER_ENV = "BLOCKPROOF_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 120.0


def find_browser() -> str:
    """The Chromium binary: ``$BLOCKPROOF_CHROMIUM``, else the first found on PATH."""
    named = os.environ.get(BROWSER_ENV)
    if named:
        found = shutil.which(named)
        if not found:
            raise InputError(f"{BROWSER_ENV}={named!r}: no such program")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise InputError(
        "PDF output needs Chromium (Debian: apt install chromium), or set "
        f"{BROWSER_ENV}; an .html report needs nothing"
    )


def html_to_pdf(html: Path, pdf: Path, *, timeout: float = TIMEOUT) -> None:
    """Write ``pdf`` from the local page ``html``; raise BlockproofError if printing fails."""
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="blockproof-chromium-") as profile:
        target = Path(profile) / "out.pdf"
        command = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-pdf-header-footer",
            "--disable-extensions",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={target}",
            html.resolve().as_uri(),
        ]
        if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root
            command.insert(1, "--no-sandbox")
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BlockproofError(f"Chromium did not print {html} within {timeout:.0f} s") from None
        if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise BlockproofError(
                f"Chromium could not print {html} (exit {done.returncode}): " + " | ".join(tail)
            )
        shutil.move(str(target), pdf)
