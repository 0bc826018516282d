"""Streams of one partition's bytes: the lines of a CSV file that start inside a byte range.

A CSV file is split at byte offsets; a partition owns every line that *starts* in its range
``[start, end)`` (the rule Hadoop's text input uses). Its worker reads from ``start - 1``, skips
through the first line break (the line that began before ``start`` belongs to the partition
before), then passes bytes on until it has passed the first line break at or after ``end - 1``.
The partitions of a file therefore tile its data exactly, whatever the offsets, and no driver
needs to read the file to find line starts.

A line break inside a quoted field is not a line start. The split cannot see that, so every
partition counts the quote characters it passes: the data before a boundary holds an odd number
of them exactly when the boundary falls inside a quoted field (RFC 4180 doubles a quote inside a
quoted field). The driver checks that parity for every boundary when the partitions report back
and, if one is inside quotes, throws the parts away and scores the job in one partition
(``driver.py``).
"""

from __future__ import annotations

import io
from typing import IO, Any

__all__ = ["Chain", "LineRange"]

BLOCK = 1024 * 1024


class LineRange(io.RawIOBase):
    """The bytes of the lines that start in ``[start, end)``, read from ``raw``, which begins at
    file offset ``first`` (``start - 1``, or ``start`` when ``start`` is the first data byte, in
    which case ``skip_first`` is False). ``quotes`` counts ``quote`` bytes passed on; ``passed``
    counts the bytes passed on."""

    def __init__(self, raw: IO[bytes], *, first: int, end: int, skip_first: bool, quote: bytes) -> None:
        super().__init__()
        self.raw = raw
        self.position = first  # file offset of the next byte read from raw
        self.end = end
        self.skipping = skip_first
        self.quote = quote
        self.quotes = 0
        self.passed = 0
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._pending and not self._done:
            block = self.raw.read(BLOCK)
            if not block:
                self._done = True
                return
            block_start = self.position
            self.position += len(block)
            if self.skipping:
                newline = block.find(b"\n")
                if newline < 0:
                    continue
                block = block[newline + 1:]
                block_start += newline + 1
                self.skipping = False
                if block_start >= self.end:  # the first line that starts here starts past the range
                    self._done = True
                    return
            cut = block.find(b"\n", max(0, self.end - 1 - block_start))
            if cut >= 0:
                block = block[: cut + 1]
                self._done = True
            self._pending = block
            self.quotes += block.count(self.quote) if self.quote else 0
            self.passed += len(block)

    def readinto(self, buffer: Any) -> int:
        self._fill()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    @property
    def finished(self) -> bool:
        """Every byte of the range was passed on (so ``quotes`` counts the whole range)."""
        return self._done and not self._pending

    def drain(self) -> int:
        """Read the rest of the range without passing it on; returns ``quotes`` for all of it."""
        while True:
            self._pending = b""
            self._fill()
            if not self._pending:
                return self.quotes

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            super().close()


class Chain(io.RawIOBase):
    """``head`` (the file's header line) followed by ``body``."""

    def __init__(self, head: bytes, body: IO[bytes]) -> None:
        super().__init__()
        self.head = head
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            size = min(len(buffer), len(self.head))
            buffer[:size] = self.head[:size]
            self.head = self.head[size:]
            return size
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self.body.close()
        finally:
            super().close()
