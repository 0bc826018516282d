"""Each listed definition's normalized row, kept by the digest of what the API answered for it, so
that a plan lists an unchanged live definition without normalizing it again (issue #16: listing
100,000 definitions spent ~100 µs of CPU on each, in the worker that is the warm plan's critical path).

Why it is safe: a row (id, name, hash, exact comparable form) is a pure function of the item the API
answered, of this program and of the schemas. The key is a digest of the item as orjson writes it back, for
items of pages orjson decoded only (:class:`reconciler.api.client.ListedPage`: no NaN, infinity or huge
integer there, which orjson would write as another value), so different items never share a key;
and the entry lives in the manifest cache (:class:`reconciler.specs.cache.DocumentCache`), whose
context holds this program's and the schemas' digests: another version never reads it. The entry is
JSON with a checksum (never pickle: nothing read from the cache directory runs code); a missing,
corrupt or foreign entry is an empty memo, never an error. Only rows whose comparable form has exact
bytes (:mod:`reconciler.engine.exact`) are kept; the others are normalized every time.

Whole pages are kept too, by the digest of their bytes (:func:`reconciler.api.client.page_digest`):
the same bytes are the same items, so a page seen before is neither decoded nor keyed item by item;
its rows are the ones it gave last time (``known`` for :meth:`Client.iter_pages`). A page that
changed, or moved (a definition created or deleted before it), is decoded and its items are looked
up one by one as above.

One entry per endpoint, rewritten after a listing that normalized anything or saw other pages:
it holds the rows and pages of the latest listing only, so it never grows past the live state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import orjson

from reconciler.api.client import ListedPage
from reconciler.specs.cache import DocumentCache

__all__ = ["LiveMemo", "Row"]

# id, name, hash, the comparable form as bytes, and whether those are its exact JSON bytes
# (reconciler.engine.exact; else a pickle of the form, reconciler.api.forked._row)
Row = tuple[str, str, str, bytes, bool]
_VERSION: Final = 3


def item_key(item: dict[str, Any]) -> str | None:
    """The key of one item of a strict page (:class:`reconciler.api.client.ListedPage`: decoded by orjson,
    so written back by orjson to bytes no other item gives); None when orjson cannot write it."""
    try:
        raw = orjson.dumps(item)
    except TypeError:
        return None
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class LiveMemo:
    """The rows of the last listing of ``endpoint``, read from ``cache_dir`` when made.

    A listing goes page by page: :meth:`recalled` for a page ``known`` (by its bytes), else
    :meth:`row` for each of its items between :meth:`start_page` and :meth:`end_page`."""

    def __init__(self, cache_dir: Path, endpoint: str) -> None:
        self._cache = DocumentCache(cache_dir, context=["live-rows", _VERSION])
        self._key = self._cache.key(f"live rows of {endpoint}", b"")
        self._order, self._pages = _read(self._cache.get(self._key))
        self._rows = {key: row for key, row in self._order}
        # the listing's rows that may be kept, in order (a page is a range of it), and its pages
        self._listing: list[tuple[str, Row]] = []
        self._listed_pages: list[tuple[str, str | None, int, int]] = []
        self._page_start = 0
        self._page_whole = True
        self._made = 0
        self.hits = 0  # rows taken from the memo
        self.pages_recalled = 0  # pages known by their bytes (neither decoded nor keyed)

    @property
    def known(self) -> dict[str, str | None]:
        """The pages of the last listing: digest -> the page's ``next`` link."""
        return {digest: link for digest, (link, _, _) in self._pages.items()}

    def recalled(self, page: ListedPage) -> list[Row]:
        """The rows of a page whose bytes the last listing saw (``page.known``)."""
        assert page.digest is not None
        link, start, stop = self._pages[page.digest]
        rows = self._order[start:stop]
        here = len(self._listing)
        self._listing.extend(rows)
        self._listed_pages.append((page.digest, link, here, len(self._listing)))
        self.hits += len(rows)
        self.pages_recalled += 1
        return [row for _, row in rows]

    def start_page(self) -> None:
        self._page_start = len(self._listing)
        self._page_whole = True

    def end_page(self, page: ListedPage) -> None:
        """Keep the page as a whole when every row of it was kept."""
        if page.digest is not None and self._page_whole:
            self._listed_pages.append((page.digest, page.link, self._page_start, len(self._listing)))

    def row(self, item: dict[str, Any], make: Callable[[dict[str, Any]], Row], *, strict: bool) -> Row:
        """``item``'s row: the memo's, or ``make(item)`` (kept when its form has exact bytes).
        ``strict``: the item's page was decoded by orjson (others are never memoized)."""
        key = item_key(item) if strict else None
        if key is None:
            self._page_whole = False
            return make(item)
        row = self._rows.get(key)
        if row is not None:
            self.hits += 1
        else:
            row = make(item)
            self._made += 1
            if not row[4]:
                self._page_whole = False
                return row
        self._listing.append((key, row))
        return row

    def save(self) -> None:
        """Keep this listing's rows and pages for the next one (only when they differ from what was read)."""
        pages = {digest: (link, start, stop) for digest, link, start, stop in self._listed_pages}
        if not self._made and len(self._listing) == len(self._order) and pages == self._pages:
            return
        self._cache.put(self._key, {"rows": [[key, *row[:3], row[3].decode()] for key, row in self._listing],
                                    "pages": [list(page) for page in self._listed_pages]})
        self._cache.flush()  # the pack it was read from is then gone: this one holds its only entry again
        self._cache.evict()
        self._cache.close()


def _read(entry: Any) -> tuple[list[tuple[str, Row]], dict[str, tuple[str | None, int, int]]]:
    """The rows and pages of an entry; an entry of another shape is none (then everything is made
    again), and so is a page whose range is not within the rows."""
    try:
        rows = [(str(key), (str(id_), str(name), str(hash_), form.encode(), True))
                for key, id_, name, hash_, form in entry["rows"]]
        pages = {}
        for digest, link, start, stop in entry["pages"]:
            if not (isinstance(digest, str) and (link is None or isinstance(link, str))
                    and type(start) is int and type(stop) is int and 0 <= start <= stop <= len(rows)):
                raise ValueError("not a page")
            pages[digest] = (link, start, stop)
    except (TypeError, KeyError, ValueError, AttributeError):
        return [], {}
    return rows, pages
