"""One command's async work run to its end, its result handed back without ever being printed.

Why not plain ``asyncio.run(coro)``: when it ends, ``asyncio.Runner`` (Python 3.11) asks whether
SIGINT still has its handler (``signal.getsignal``), which tries the handler, a partial bound to
the main task, as a ``signal.Handlers`` member and builds the ``ValueError`` message of that
failed lookup with ``%r``; the task's repr holds ``reprlib.repr`` of its result, which calls the
result's full ``repr`` before truncating it. A plan of 100,000 definitions is a repr of about
100 MB: 6 s of CPU spent twice at the end of every ``plan`` (measured with cProfile at 100,000;
the "unexplained" seconds of issue #16). Here the main task's result is None; the value is passed
beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``'s value, without the main task holding it (see the module)."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
