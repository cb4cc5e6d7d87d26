"""Figures for docs/reliability.md, recorded by the tests that measure them.

A reliability test asks for the ``figures`` fixture (tests/conftest.py) and adds
one row per thing it tried::

    figures.add("hostile", behaviour="endless body", failure="...", seconds=3.2)

Rows are appended as JSON lines to ``test-artifacts/reliability/<section>.jsonl``
(``$BLOCKPROOF_FIGURES`` overrides the folder), each with the test's id. ``make
reliability`` empties the folder, runs the fast and the long reliability tests
once, and renders every row of that one run into docs/reliability.md with
``tests/reliability/render.py``, so the document's figures all come from the
same run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("hostile", "fuzz", "bad_inputs", "faults", "abuse", "load")
_SECTION = re.compile(r"[a-z][a-z0-9_]{0,40}")


def figures_dir() -> Path:
    return Path(os.environ.get("BLOCKPROOF_FIGURES") or ROOT / "test-artifacts" / "reliability")


class Figures:
    """Append-only recorder of measured figures for one test."""

    def __init__(self, test_id: str, folder: Path | None = None) -> None:
        self.test_id = test_id
        self.folder = folder or figures_dir()

    def add(self, section: str, **row: Any) -> None:
        if section not in SECTIONS or not _SECTION.fullmatch(section):
            raise ValueError(f"unknown figures section {section!r}; one of {SECTIONS}")
        self.folder.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps({"test": self.test_id, **row}, default=str) + b"\n"
        # One write of one line in append mode: rows from parallel processes never interleave.
        with (self.folder / f"{section}.jsonl").open("ab") as out:
            out.write(line)
