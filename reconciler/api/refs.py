"""The resources references name, listed once per kind and run: ``GET deployments/``,
``GET credentials/``, ``GET externalDataStores/`` (the paths the DataRobot SDK lists them with:
``Deployment.list``, ``Credential.list``, ``DataStore.list``), following ``next`` links on the same
origin. A deployment's name is its ``label``, a data store's its ``canonicalName``.

Why one unfiltered list per kind, not the API's search filters (``deployments/?search=``,
``externalDataStores/?name=``, which the local service also serves): a filtered call per distinct
name would be one call per name instead of one per kind; both filters match substrings (and
``search`` descriptions too), so the exact name must be matched here anyway; and the close matches
a missing name reports come from the whole list. The one filter sent is data stores' ``type=all``:
without it DataRobot lists only JDBC data stores (``DataStore.list``'s documented default).

:class:`Catalog` caches what it listed, so a run that plans several times (the operator's resources
in one pass) lists each kind once; :func:`resolve` is the one function every entry point
(session, operator) calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

from reconciler.api import errors
from reconciler.api.client import Client
from reconciler.contract.refs import KINDS
from reconciler.engine import refs as engine_refs
from reconciler.engine.types import Desired

__all__ = ["Catalog", "resolve"]

MAX_PAGES = 1000  # a bounded read: 1000 pages of a resource list is far beyond any installation
LIST_PARAMS: dict[str, dict[str, str]] = {"dataStore": {"type": "all"}}  # every data store, not only JDBC ones


class Catalog:
    """``kind -> [(id, name)]`` of one target, each kind listed at most once (on first need)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._listed: dict[str, list[tuple[str, str]]] = {}
        self._lock = asyncio.Lock()

    async def items(self, kind: str) -> list[tuple[str, str]]:
        async with self._lock:
            if kind not in self._listed:
                self._listed[kind] = await self._list(kind)
            return self._listed[kind]

    async def load(self, kinds: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        return {kind: await self.items(kind) for kind in sorted(kinds)}

    async def _list(self, kind: str) -> list[tuple[str, str]]:
        path, name_field = KINDS[kind]
        client = self.client
        origin = urlsplit(client.base_url)[:2]
        url: str | None = client.url(path)
        params: dict[str, str] | None = LIST_PARAMS.get(kind)  # the next links keep the query
        out: list[tuple[str, str]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return out
            body = (await client.request("GET", url, params=params)).json()
            params = None
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise errors.APIError(f"GET {path}: expected a list page ({{'data': [...]}}), got {type(body).__name__}")
            for item in body["data"]:
                if isinstance(item, dict) and item.get("id") is not None:
                    out.append((str(item["id"]), str(item.get(name_field, ""))))
            link = body.get("next")
            if link and urlsplit(link)[:2] != origin:
                raise errors.APIError(f"refusing to follow a next link to another origin: {urlsplit(link).netloc}")
            url = link or None
        raise errors.APIError(f"GET {path}: more than {MAX_PAGES} pages; refusing to read on")


async def resolve(catalog: Catalog, desired: Sequence[Desired]) -> engine_refs.ResolvedRun:
    """``desired`` with every reference replaced by an id of this target; only the kinds some
    manifest references are listed (none: no request at all)."""
    wanted = engine_refs.kinds_wanted(desired)
    if not wanted:
        return engine_refs.ResolvedRun(desired=tuple(desired), references={})
    return engine_refs.resolve_all(desired, await catalog.load(sorted(wanted)))
