"""The approval prompt in a real pseudo-terminal: Ctrl-C typed the instant the question shows.

CI once hung here: ``input()`` misses a SIGINT that lands after the question is written and before
its ``read()`` starts (the read then blocks until Enter). One child process asks many times in a
row and each question is answered at once, so a window of a few microseconds is hit often."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import sys
import time

import pytest

_CHILD = """
import sys
from reconciler.cli import prompt
for i in range(int(sys.argv[1])):
    got = prompt.ask(f"Q{i}?")
    sys.stdout.write(f"<{i}:{got!r}>\\n")
    sys.stdout.flush()
"""


def _session(answers: list[bytes]) -> list[str]:
    """Run the child on a pty; after question i shows, type answers[i]. Returns each reply."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", _CHILD, str(len(answers))])
    seen = b""
    replies: list[str] = []
    end = time.monotonic() + 60
    try:
        for i, keys in enumerate(answers):
            question, reply = f"Q{i}?".encode(), f"<{i}:".encode()
            for wanted in (question, reply):
                while wanted not in seen:
                    assert time.monotonic() < end, seen.decode(errors="replace")
                    if select.select([fd], [], [], 0.1)[0]:
                        seen += os.read(fd, 65536)
                if wanted == question:
                    os.write(fd, keys)  # at once: no pause a person would leave
            while b">" not in seen[seen.index(reply):]:
                assert time.monotonic() < end, seen.decode(errors="replace")
                if select.select([fd], [], [], 0.1)[0]:
                    seen += os.read(fd, 65536)
            tail = seen[seen.index(reply):]
            replies.append(tail[len(reply):tail.index(b">")].decode())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return replies


def test_ctrl_c_the_instant_the_question_shows_cancels_every_time() -> None:
    assert _session([b"\x03"] * 200) == ["None"] * 200


@pytest.mark.parametrize(("keys", "reply"), [
    (b"yes\r", "'yes'"), (b"  yes  \r", "'yes'"), (b"no\r", "'no'"), (b"\r", "''"),
    (b"\x04", "None"),  # Ctrl-D on an empty line
    (b"ye\x7fs\r", "'ys'"),  # the terminal's own line editing: backspace
], ids=["yes", "padded", "no", "empty", "ctrl-d", "backspace"])
def test_answers(keys: bytes, reply: str) -> None:
    assert _session([keys]) == [reply]


def test_a_long_line_is_read_to_its_end_but_only_4_kib_kept() -> None:
    """A terminal caps its own line at 4,095 bytes, so a pipe feeds it 1 MB."""
    done = subprocess.run([sys.executable, "-c", _CHILD, "1"], input=b"y" * 1_000_000 + b"\n",
                          capture_output=True, timeout=60, check=True)
    assert done.stdout.decode() == f"Q0? <0:{'y' * 4096!r}>\n"
