"""Reading the files a user points the tool at: manifests, the project config, overlays, token and
secret files, saved plans, the plan ``ci comment`` posts: :func:`read_limited`, and
:func:`open_regular` under it for a reader that keeps the descriptor (the manifest cache's packs).

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

__all__ = ["SECRET_FILE_BYTES", "UnreadableFile", "open_regular", "read_limited"]

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


def open_regular(path: str | os.PathLike[str], *, what: str = "file",
                 follow_symlinks: bool = True) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at ``path``, opened without blocking, and its status as
    opened (no race with a path swapped after a check); the caller closes it. Raises
    :class:`UnreadableFile` for anything else (a FIFO, a device, a directory), ``OSError`` when it
    cannot be opened (a link, with ``follow_symlinks=False``)."""
    name = os.fspath(path)
    fd = os.open(name, _OPEN_FLAGS if follow_symlinks else _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise UnreadableFile(name, f"not a regular file: it is {kind}",
                                 code=errno.EISDIR if kind == "a directory" else errno.EINVAL,
                                 hint=f"a {what} must be a regular file; point at the file itself")
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def read_limited(path: str | os.PathLike[str], *, limit: int, what: str = "file",
                 hint: str | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most ``limit`` of them.

    Raises :class:`UnreadableFile` when ``path`` is not a regular file (a FIFO, a device, a
    directory) or holds more than ``limit`` bytes, and ``OSError`` when it cannot be opened.
    ``what`` names the file in messages ("manifest file", "secret file"); ``hint`` is given with
    a size refusal.
    """
    name = os.fspath(path)
    fd, info = open_regular(name, what=what)
    try:
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
