"""A comparable form as canonical bytes, so that planning can tell two equal forms apart from
unequal ones by comparing bytes.

Why: in a plan with no changes nearly every pair is equal, and finding that out by walking or
comparing the dictionaries (and first unpacking the live one, :mod:`reconciler.api.forked`) was
most of planning 100,000 definitions. The bytes are made once per form, where the form is made.

The bytes stand for the value exactly, or there are none: orjson with sorted keys, and only when
reading them back gives an equal value of the same types (``==`` of the round trip settles it in
C: a tuple comes back as a list, NaN and infinities as None, and subclasses, datetimes and
integers past 64 bits are refused). So equal bytes mean values :func:`reconciler.engine.diff.diff`
finds no difference between; ``1`` and ``1.0`` have different bytes and are left to the diff.
(One thing ``==`` forgives goes through: orjson writes an enum member as its value. Comparable
forms are decoded JSON and YAML and the schema's defaults, which hold no enum.)
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["EXACT_OPTIONS", "exact_form", "read_exact"]

EXACT_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME


def exact_form(value: Any) -> bytes | None:
    """``value`` as canonical JSON bytes when they give it back exactly; None otherwise."""
    try:
        blob = orjson.dumps(value, option=EXACT_OPTIONS)
    except TypeError:
        return None
    return blob if orjson.loads(blob) == value else None


def read_exact(exact: bytes) -> dict[str, Any]:
    """The form whose exact bytes ``exact`` are (a comparable form is a mapping)."""
    form: dict[str, Any] = orjson.loads(exact)
    return form
