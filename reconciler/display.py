"""Text that came from outside (a live definition's name, a value, a server's message), made safe to
print on one line.

Why: a definition may already be live with a name like ``"zz\\nNo changes. Live definitions match
the manifests.\\n"``, or one holding U+202E (right-to-left override), created by an older server or
by another tool. Printed raw, such a name writes a fake line into ``plan`` or ``list`` output, or
reorders what the reader sees. Every renderer passes each line it prints through
:func:`printable`, which writes characters that are not printable as Python escapes (``\\n``,
``\\x1b``, ``\\u202e``), so one name is always one visible piece of one line. Machine output
(``-o json``) keeps the exact text: JSON escapes line breaks itself, and a parser needs the name as
it is.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["printable", "printable_lines", "value_text"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character :meth:`str.isprintable` refuses (line breaks, tabs, other
    control and format characters such as U+202E, unassigned code points) written as an escape.
    Text that is printable already is returned as it is."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def printable_lines(text: str) -> str:
    """A multi-line message made safe line by line: its own line breaks kept, all else escaped."""
    return "\n".join(printable(line) for line in text.split("\n"))


def value_text(value: Any) -> str:
    """A field's value in a plan line: JSON, keys sorted, non-ASCII kept (``printable`` escapes
    what a terminal must not see)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
