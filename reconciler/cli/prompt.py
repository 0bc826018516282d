"""One line from the terminal, where Ctrl-C is always seen.

``input()`` (and click's prompt on it) misses a Ctrl-C that lands between the prompt being written
and the read starting: Python's C handler only flags the signal, and ``fgets`` then blocks in
``read()``, which nothing interrupts, until Enter. CI hit it once in ~20 runs. Here the read waits in
``select`` on the terminal *and* on a signal wake-up pipe, so a Ctrl-C that came before the wait or
while it waits ends the prompt at once, whichever thread the kernel delivered it to."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["ask"]

# an answer is a word: a longer line is read to its end but not kept (every read is bounded)
_MOST = 4096


@contextlib.contextmanager
def _sigint_pipe() -> Iterator[int | None]:
    """A pipe the signal machinery writes to on SIGINT, with a handler that only records it (no
    exception in the middle of the read). None off the main thread, where signals cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    r, w = os.pipe()
    os.set_blocking(w, False)

    def quiet(signum: int, frame: FrameType | None) -> None:
        """The wake-up byte is the signal; the handler must not raise mid-read."""

    previous_fd = signal.set_wakeup_fd(w)
    previous = signal.signal(signal.SIGINT, quiet)
    try:
        yield r
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_fd)
        os.close(r)
        os.close(w)


def ask(question: str) -> str | None:
    """Write `question`, read one line from stdin (a terminal). None when cancelled: Ctrl-C, or
    Ctrl-D / end of input before Enter. A terminal's read returns one line at most; from a pipe,
    what was read past the line is dropped (the command asks once, and only on a terminal)."""
    fd = sys.stdin.fileno()
    line = bytearray()
    with _sigint_pipe() as woken:  # before the question: a Ctrl-C as soon as it shows is ours
        sys.stdout.write(question + " ")
        sys.stdout.flush()
        watched = [fd] if woken is None else [fd, woken]
        while True:
            ready, _, _ = select.select(watched, [], [])
            if woken is not None and woken in ready and signal.SIGINT in os.read(woken, 64):
                sys.stdout.write("\n")
                return None
            if fd not in ready:
                continue  # another signal woke the pipe: keep waiting
            chunk = os.read(fd, 1024)
            if not chunk:  # Ctrl-D on an empty line, or stdin closed
                sys.stdout.write("\n")
                return None
            end = chunk.find(b"\n")
            line += chunk if end < 0 else chunk[:end]
            del line[_MOST:]
            if end >= 0:
                return line.decode(errors="replace").strip()
