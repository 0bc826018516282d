"""Field-level differences between two comparable forms. Pure: no I/O.

Why plain recursion rather than deepdiff: the forms are small JSON trees whose lists are already
canonical (set-like lists sorted by :mod:`reconciler.engine.normalize`), so a list is one value and the
only question per path is "same or not". Plain recursion is ~50x faster over 10,000 definitions
and its output is trivially deterministic (paths sorted). ``True`` and ``1`` are different here,
unlike in Python's ``==``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Change", "Op", "diff", "same"]


class Op(StrEnum):
    add = "add"  # the path is absent live and set in the manifest
    remove = "remove"  # set live, absent from the manifest
    change = "change"  # present on both sides, different


@dataclass(frozen=True, slots=True)
class Change:
    """One field: ``old`` is the live value, ``new`` the desired one (``None`` when absent)."""

    path: str
    op: Op
    old: Any = None
    new: Any = None


def same(a: Any, b: Any) -> bool:
    """Structural equality where a bool never equals a number and 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def diff(old: Mapping[str, Any], new: Mapping[str, Any], *, prefix: str = "") -> tuple[Change, ...]:
    """Changes turning ``old`` into ``new``, sorted by path; nested mappings are walked (an added or
    removed mapping becomes one change per leaf), lists and scalars compared whole. Paths are dotted: ``batchPredictionJob.intakeSettings.url``."""
    out: list[Change] = []
    _walk(old, new, prefix, out)
    out.sort(key=lambda c: c.path)
    return tuple(out)


def _walk(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, out: list[Change]) -> None:
    for key in sorted(old.keys() | new.keys()):
        path = f"{prefix}.{key}" if prefix else key
        if key not in new:
            if isinstance(old[key], dict) and old[key]:
                _walk(old[key], {}, path, out)
            else:
                out.append(Change(path, Op.remove, old[key], None))
        elif key not in old:
            if isinstance(new[key], dict) and new[key]:
                _walk({}, new[key], path, out)
            else:
                out.append(Change(path, Op.add, None, new[key]))
        else:
            a, b = old[key], new[key]
            if isinstance(a, dict) and isinstance(b, dict):
                _walk(a, b, path, out)
            elif not same(a, b):
                out.append(Change(path, Op.change, a, b))
