"""The operator's shared view of the live definitions, kept the way Argo CD's gitops-engine keeps its
cluster cache: listed once, shared by every resource, and kept current by the operator's own writes.

Without it each reconcile of a resource GETs its definition (or searches by name), so a resync of
N resources costs N API calls. With it a resync period costs one paginated list (``pages`` calls,
1,000 definitions a page), whoever asks first after the snapshot aged past ``max_age`` (the resync
interval) lists, and everyone else waits for that one list instead of starting their own.

- every resource is diffed against the snapshot; one whose definition is not in it (created by
  someone else since, or deleted) falls back to a single lookup, and what that lookup finds is put
  into the snapshot;
- the operator's own writes update the snapshot at once (``put`` / ``forget``), also while a list
  is under way: the list's older copy never overwrites a newer write;
- a write that failed drops its entry (``forget``), so the retry looks the definition up again;
- the price: drift made behind the operator's back is seen at the first resync after the next list,
  i.e. within two resync intervals instead of one (the API has no watch to learn it sooner).

The API client's credentials own the snapshot (:class:`LiveCaches`): a rotated token with the same
endpoint gets a new client and a fresh list.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.api import errors
from reconciler.api.client import Client
from reconciler.engine.normalize import live_from_api
from reconciler.engine.types import Desired, Live

__all__ = ["CacheStats", "LiveCache", "LiveCaches", "find_candidates"]

log = logging.getLogger("reconciler.operator.cache")
_GONE = None  # a forgotten id, in the writes recorded during a list


@dataclass
class CacheStats:
    """What the cache did, for the benchmark, the tests and the debug log."""

    lists: int = 0  # full listings
    pages: int = 0  # list calls they made
    hits: int = 0  # candidates served from the snapshot
    lookups: int = 0  # single lookups of what the snapshot did not hold


class LiveCache:
    """The live definitions of one API endpoint and token, by id and by name. One event loop."""

    def __init__(self, *, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._by_id: dict[str, dict[str, Any]] = {}
        self._by_name: dict[str, str] = {}
        self._taken: float | None = None
        self._lock = asyncio.Lock()
        self._during_list: dict[str, dict[str, Any] | None] | None = None  # our writes while a list runs
        self.stats = CacheStats()

    def fresh(self) -> bool:
        return self._taken is not None and self._clock() - self._taken < self.max_age

    async def refresh_if_stale(self, client: Client) -> None:
        """List every definition when the snapshot is missing or older than ``max_age``; callers
        that arrive during a list wait for it rather than list again."""
        if self.fresh():
            return
        async with self._lock:
            if self.fresh():  # another reconcile listed while this one waited
                return
            self._during_list = {}
            listed: dict[str, dict[str, Any]] = {}
            pages = 0
            try:
                async for page in client.iter_pages(prefetch=True):
                    pages += 1
                    for item in page:
                        listed[str(item["id"])] = item
            except BaseException:
                self._during_list = None
                raise
            for definition_id, written in self._during_list.items():  # newer than what the list saw
                if written is _GONE:
                    listed.pop(definition_id, None)
                else:
                    listed[definition_id] = written
            self._during_list = None
            self._by_id = listed
            self._by_name = {str(item.get("name")): definition_id for definition_id, item in listed.items()}
            self._taken = self._clock()
            self.stats.lists += 1
            self.stats.pages += pages
            log.debug("listed %d live definitions in %d page(s)", len(listed), pages)

    def get(self, definition_id: str) -> dict[str, Any] | None:
        return self._by_id.get(definition_id)

    def named(self, name: str) -> dict[str, Any] | None:
        found = self._by_name.get(name)
        return None if found is None else self._by_id.get(found)

    def put(self, item: dict[str, Any]) -> None:
        """The definition as the API answered a write or a lookup: newer than the snapshot."""
        definition_id = str(item["id"])
        old = self._by_id.get(definition_id)
        if old is not None and self._by_name.get(str(old.get("name"))) == definition_id:
            del self._by_name[str(old.get("name"))]
        self._by_id[definition_id] = item
        self._by_name[str(item.get("name"))] = definition_id
        if self._during_list is not None:
            self._during_list[definition_id] = item

    def forget(self, definition_id: str) -> None:
        """Deleted, or a write to it failed: the next reconcile looks it up again."""
        old = self._by_id.pop(definition_id, None)
        if old is not None and self._by_name.get(str(old.get("name"))) == definition_id:
            del self._by_name[str(old.get("name"))]
        if self._during_list is not None:
            self._during_list[definition_id] = _GONE

    def __len__(self) -> int:
        return len(self._by_id)


class LiveCaches:
    """One :class:`LiveCache` per API client (the operator keeps one client per credentials)."""

    def __init__(self, *, max_age: float) -> None:
        self.max_age = max_age
        self._caches: weakref.WeakKeyDictionary[Client, LiveCache] = weakref.WeakKeyDictionary()

    def of(self, client: Client) -> LiveCache:
        found = self._caches.get(client)
        if found is None:
            found = self._caches[client] = LiveCache(max_age=self.max_age)
        return found

    def stats(self) -> CacheStats:
        total = CacheStats()
        for cache in list(self._caches.values()):
            total.lists += cache.stats.lists
            total.pages += cache.stats.pages
            total.hits += cache.stats.hits
            total.lookups += cache.stats.lookups
        return total


async def find_candidates(client: Client, cache: LiveCache, desired: Desired,
                          recorded_id: str | None) -> tuple[list[Live], dict[str, Any]]:
    """Candidates for pairing and the raw items by id, from the snapshot; what it does not hold is
    looked up once. Same answer as looking each one up: the recorded id is the identity (a rename
    is drift); without it the definition is found by name and previous names."""
    await cache.refresh_if_stale(client)
    raw: dict[str, Any] = {}
    if recorded_id:
        item = cache.get(recorded_id)
        if item is not None:
            cache.stats.hits += 1
        else:
            cache.stats.lookups += 1
            try:
                item = await client.get_definition(recorded_id)
            except errors.APINotFoundError:
                log.info("definition %s recorded in status is gone; looking it up by name", recorded_id)
            else:
                cache.put(item)
        if item is not None:
            raw[str(item["id"])] = item
            return [live_from_api(item)], raw
    candidates: list[Live] = []
    for name in _names(desired):
        found = cache.named(name)
        if found is not None:
            cache.stats.hits += 1
        else:
            cache.stats.lookups += 1
            found = await client.find_by_name(name)
            if found is not None:
                cache.put(found)
        if found is not None:
            raw[str(found["id"])] = found
            candidates.append(live_from_api(found))
    return candidates, raw


def _names(desired: Desired) -> Sequence[str]:
    return (desired.name, *desired.previous_names)
