"""What the atheris harnesses share: seeds in a corpus, libFuzzer's bounds, JSON from bytes.

Each harness ``tests/fuzz/fuzz_<target>.py`` is a script::

    python tests/fuzz/fuzz_dns.py -runs=10000 -max_total_time=60 [CORPUS_DIR]
    python tests/fuzz/fuzz_dns.py crash-<hash>      # run one saved input again

The flags are libFuzzer's (``-runs`` inputs at most, ``-max_total_time`` seconds at
most; without either, 60 seconds). Without a corpus folder the harness starts from its
seeds in a temporary one; an empty folder given is filled with them first. An
uncaught exception is a crash: atheris prints it, saves the input
(``-artifact_prefix``) and exits non-zero. At the end libFuzzer prints ``Done N runs``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import atheris

DEFAULT_SECONDS = 60


def main(test_one_input: Callable[[bytes], None], seeds: Callable[[], Iterable[bytes]]) -> None:
    argv = list(sys.argv)
    given = [a for a in argv[1:] if not a.startswith("-")]
    folders = [a for a in given if os.path.isdir(a)]
    if not given:  # (files given are inputs to run once, e.g. a crash to reproduce)
        folder = tempfile.mkdtemp(prefix="corpus-")
        argv.append(folder)
        folders = [folder]
    if folders and not os.listdir(folders[0]):
        for index, seed in enumerate(seeds()):
            with open(os.path.join(folders[0], f"seed-{index:04d}"), "wb") as out:
                out.write(seed)
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in argv):
        argv.append(f"-max_total_time={DEFAULT_SECONDS}")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def json_from(provider: atheris.FuzzedDataProvider, keys: list[str], depth: int = 0) -> Any:
    """A JSON value built from fuzzer bytes (for inputs that are not JSON text)."""
    kind = provider.ConsumeIntInRange(0, 9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return provider.ConsumeBool()
    if kind == 2:
        return provider.ConsumeIntInRange(-(2**63), 2**64 - 1)
    if kind == 3:
        return provider.ConsumeRegularFloat()
    if kind == 4:
        return provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 24))
    if kind == 5:
        return provider.PickValueInList(keys)
    if kind in (6, 7):
        return [
            json_from(provider, keys, depth + 1) for _ in range(provider.ConsumeIntInRange(0, 4))
        ]
    return {
        provider.PickValueInList(keys)
        if provider.ConsumeBool()
        else provider.ConsumeUnicodeNoSurrogates(6): json_from(provider, keys, depth + 1)
        for _ in range(provider.ConsumeIntInRange(0, 6))
    }
