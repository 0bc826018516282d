"""The operator's live cache against the real local service (uvicorn on loopback, the real API
client): requests are counted by the service itself, per route (its /metrics)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from operator_harness import CREDENTIAL, DEPLOYMENT, seed
from prometheus_client.parser import text_string_to_metric_families

from reconciler.api.client import Client
from reconciler.engine.types import Desired
from reconciler.operator.cache import LiveCache, find_candidates
from reconciler.service.testing import LocalServer

TOKEN = "cache-token-5b1e"
LIST = "/api/v2/batchPredictionJobDefinitions/"
ONE = "/api/v2/batchPredictionJobDefinitions/{definition_id}/"


def requests_by_route(server: LocalServer) -> dict[tuple[str, str], int]:
    """(method, route template) -> requests answered so far, from the service's own counter."""
    text = httpx.get(f"{server.url}/metrics", headers=server.headers(), timeout=10).text
    counts: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "reconciler_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["method"], sample.labels["route"])
                counts[key] = counts.get(key, 0) + int(sample.value)
    return counts


def body(name: str) -> dict[str, Any]:
    return {"name": name, "enabled": False, "deploymentId": DEPLOYMENT,
            "intakeSettings": {"type": "s3", "url": "s3://bucket/in.csv", "credentialId": CREDENTIAL},
            "outputSettings": {"type": "s3", "url": "s3://bucket/out.csv", "credentialId": CREDENTIAL}}


def desired(name: str, *previous: str) -> Desired:
    return Desired(name=name, body={}, comparable={}, previous_names=tuple(previous))


def test_candidates_come_from_one_paginated_list_and_misses_cost_one_lookup() -> None:
    with LocalServer(token=TOKEN) as server:
        http = httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=10)
        seed(server.api_url, TOKEN)
        ids = {}
        for n in range(25):
            created = http.post("batchPredictionJobDefinitions/", json=body(f"cached-{n}"))
            assert created.status_code == 202, created.text
            ids[f"cached-{n}"] = created.json()["id"]

        async def run() -> None:
            async with Client(endpoint=server.api_url, token=TOKEN, allow_http=True, page_size=10) as client:
                cache = LiveCache(max_age=3600)
                before = requests_by_route(server)
                for name, definition_id in ids.items():  # recorded ids, then names: all in the snapshot
                    by_id, _ = await find_candidates(client, cache, desired(name), definition_id)
                    by_name, raw = await find_candidates(client, cache, desired(name), None)
                    assert [c.id for c in by_id] == [c.id for c in by_name] == [definition_id]
                    assert raw[definition_id]["name"] == name
                after = requests_by_route(server)
                assert after.get(("GET", LIST), 0) - before.get(("GET", LIST), 0) == 3  # 25 a page of 10
                assert after.get(("GET", ONE), 0) == before.get(("GET", ONE), 0)
                assert (cache.stats.lists, cache.stats.pages, cache.stats.lookups) == (1, 3, 0)

                # not in the snapshot: one lookup each, whose answer is kept
                late = http.post("batchPredictionJobDefinitions/", json=body("late")).json()
                found, _ = await find_candidates(client, cache, desired("late"), late["id"])
                assert [c.id for c in found] == [late["id"]]
                assert requests_by_route(server).get(("GET", ONE), 0) == after.get(("GET", ONE), 0) + 1
                await find_candidates(client, cache, desired("late"), late["id"])
                assert requests_by_route(server).get(("GET", ONE), 0) == after.get(("GET", ONE), 0) + 1
                nothing, _ = await find_candidates(client, cache, desired("never", "cached-3"), None)
                assert [c.id for c in nothing] == [ids["cached-3"]]  # a previous name, from the snapshot
                assert cache.stats.lookups == 2  # "late" by id, "never" by name

                # a stale snapshot is listed again, once, however many reconciles ask at once
                listed = requests_by_route(server).get(("GET", LIST), 0)
                cache._taken = None  # aged out
                await asyncio.gather(*(find_candidates(client, cache, desired(n), i) for n, i in ids.items()))
                assert requests_by_route(server).get(("GET", LIST), 0) - listed == 3
                assert cache.stats.lists == 2

        asyncio.run(run())
        http.close()


def test_writes_during_a_list_are_not_overwritten_by_it() -> None:
    with LocalServer(token=TOKEN) as server:
        http = httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=10)
        seed(server.api_url, TOKEN)
        made = [http.post("batchPredictionJobDefinitions/", json=body(f"w-{n}")).json() for n in range(12)]

        async def run() -> None:
            async with Client(endpoint=server.api_url, token=TOKEN, allow_http=True, page_size=5) as client:
                cache = LiveCache(max_age=3600)
                listing = asyncio.create_task(cache.refresh_if_stale(client))
                await asyncio.sleep(0)  # the list has sent its first request
                assert cache._during_list is not None
                written = {**made[0], "name": "w-renamed-by-us"}  # what the API answered our PATCH
                cache.put(written)
                cache.forget(made[1]["id"])  # we deleted it
                await listing
                assert cache.get(made[0]["id"]) == written and cache.named("w-renamed-by-us") == written
                assert cache.named("w-0") is None
                assert cache.get(made[1]["id"]) is None
                assert len(cache) == 11

        asyncio.run(run())
        http.close()
