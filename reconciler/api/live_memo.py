"""Each listed definition's normalized row, kept by the digest of what the API answered for it, so
that a plan lists an unchanged live definition without normalizing it again (issue #16: listing
100,000 definitions spent ~100 µs of CPU on each, in the worker that is the warm plan's critical path).

Why it is safe: a row (id, name, hash, exact comparable form) is a pure function of the item the API
answered, of this program and of the schemas. The key is a digest of the item as orjson writes it back, for
items of pages orjson decoded only (:class:`reconciler.api.client.Page`: no NaN, infinity or huge
integer there, which orjson would write as another value), so different items never share a key;
and the entry lives in the manifest cache (:class:`reconciler.specs.cache.DocumentCache`), whose
context holds this program's and the schemas' digests: another version never reads it. The entry is
JSON with a checksum (never pickle: nothing read from the cache directory runs code); a missing,
corrupt or foreign entry is an empty memo, never an error. Only rows whose comparable form has exact
bytes (:mod:`reconciler.engine.exact`) are kept; the others are normalized every time.

One entry per endpoint, rewritten after a listing that normalized anything or no longer saw some
definition: it holds the rows of the latest listing only, so it never grows past the live state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import orjson

from reconciler.specs.cache import DocumentCache

__all__ = ["LiveMemo", "Row"]

# id, name, hash, the comparable form as bytes, and whether those are its exact JSON bytes
# (reconciler.engine.exact; else a pickle, reconciler.api.forked.pack)
Row = tuple[str, str, str, bytes, bool]
_VERSION: Final = 2


def item_key(item: dict[str, Any]) -> str | None:
    """The key of one item of a strict page (:class:`reconciler.api.client.Page`: decoded by orjson,
    so written back by orjson to bytes no other item gives); None when orjson cannot write it."""
    try:
        raw = orjson.dumps(item)
    except TypeError:
        return None
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class LiveMemo:
    """The rows of the last listing of ``endpoint``, read from ``cache_dir`` when made."""

    def __init__(self, cache_dir: Path, endpoint: str) -> None:
        self._cache = DocumentCache(cache_dir, context=["live-rows", _VERSION])
        self._key = self._cache.key(f"live rows of {endpoint}", b"")
        self._rows = _read(self._cache.get(self._key))
        self._seen: dict[str, Row] = {}
        self._made = 0
        self.hits = 0

    def row(self, item: dict[str, Any], make: Callable[[dict[str, Any]], Row], *, strict: bool) -> Row:
        """``item``'s row: the memo's, or ``make(item)`` (kept when its form has exact bytes).
        ``strict``: the item's page was decoded by orjson (others are never memoized)."""
        key = item_key(item) if strict else None
        if key is None:
            return make(item)
        row = self._rows.get(key)
        if row is not None:
            self.hits += 1
        else:
            row = make(item)
            self._made += 1
            if not row[4]:
                return row
        self._seen[key] = row
        return row

    def save(self) -> None:
        """Keep this listing's rows for the next one (only when they differ from what was read)."""
        if not self._made and len(self._seen) == len(self._rows):
            return
        self._cache.put(self._key, {"rows": [[key, *row[:3], row[3].decode()] for key, row in self._seen.items()]})
        self._cache.evict()


def _read(entry: Any) -> dict[str, Row]:
    """The rows of an entry; an entry of another shape is no rows (then everything is made again)."""
    try:
        return {str(key): (str(id_), str(name), str(hash_), form.encode(), True)
                for key, id_, name, hash_, form in entry["rows"]}
    except (TypeError, KeyError, ValueError, AttributeError):
        return {}
