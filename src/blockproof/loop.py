"""The event loop every blockproof command runs on: uvloop when installed, else asyncio's.

uvloop (the ``[fast]`` extra) runs the same code with a libuv-based loop, roughly
halving the CPU the probe and the lab spend outside cryptography. Nothing in
blockproof depends on which loop runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
