"""Reading the files a user points the tool at: manifests, the project config, overlays, token and
secret files, saved plans, the plan ``ci comment`` posts. One function, :func:`read_limited`.

Why one helper: a size limit checked with ``stat().st_size`` before ``read_bytes()`` is no limit
at all for what is not a regular file. ``/dev/zero`` and ``/dev/urandom`` report size 0 and never
end; a FIFO blocks the reader until someone writes. So the file is opened without blocking and
without becoming a controlling terminal, the *opened* descriptor is checked (no race with a path
swapped after a check), only a regular file is read, and never more than ``limit + 1`` bytes.
Anything else is an :class:`UnreadableFile` (an ``OSError``, so callers that already report
``OSError`` keep working) whose message names the path and says what it is.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

__all__ = ["SECRET_FILE_BYTES", "UnreadableFile", "read_limited"]

SECRET_FILE_BYTES: Final = 64 * 1024  # a token or a key is a few hundred bytes
_CHUNK: Final = 1024 * 1024
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnreadableFile(OSError):
    """A file that was not read: not a regular file, or over its size limit. ``strerror`` says
    why in words; ``hint`` what to do about it."""

    def __init__(self, path: str, reason: str, *, code: int = errno.EINVAL, hint: str | None = None) -> None:
        super().__init__(code, reason, path)
        self.hint = hint


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"  # pragma: no cover - every other kind is listed above


def read_limited(path: str | os.PathLike[str], *, limit: int, what: str = "file",
                 hint: str | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most ``limit`` of them.

    Raises :class:`UnreadableFile` when ``path`` is not a regular file (a FIFO, a device, a
    directory) or holds more than ``limit`` bytes, and ``OSError`` when it cannot be opened.
    ``what`` names the file in messages ("manifest file", "secret file"); ``hint`` is given with
    a size refusal.
    """
    name = os.fspath(path)
    fd = os.open(name, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise UnreadableFile(name, f"not a regular file: it is {kind}",
                                 code=errno.EISDIR if kind == "a directory" else errno.EINVAL,
                                 hint=f"a {what} must be a regular file; point at the file itself")
        if info.st_size > limit:
            raise UnreadableFile(name, f"file is {info.st_size} bytes, over the {limit}-byte limit for a {what}",
                                 code=errno.EFBIG, hint=hint)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # st_size is a snapshot: the file may grow while it is read
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnreadableFile(name, f"file grew past the {limit}-byte limit for a {what} while it was read",
                                 code=errno.EFBIG, hint=hint)
        return b"".join(chunks)
    finally:
        os.close(fd)
