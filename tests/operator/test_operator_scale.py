"""The operator over many resources on the real kube-apiserver: a resync with no drift costs one
paginated list per resync interval and no writes, counted by the local service per route (its
/metrics), not one lookup per resource. ``bench/bench_operator.py`` does the same with 2,000."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from operator_harness import RESYNC, TOKEN, Namespace, manifest, seed, wait_for

from reconciler.operator import crd
from reconciler.service.testing import LocalServer, counter_sum, free_port, requests_by_route

RESOURCES = 50
LIST = "/api/v2/batchPredictionJobDefinitions/"
ONE = "/api/v2/batchPredictionJobDefinitions/{definition_id}/"


def resyncs(port: int) -> int:
    return counter_sum(f"http://127.0.0.1:{port}/metrics", "reconciler_operator_reconciles_total",
                       label=("mode", "resync"))


def requests(server: LocalServer) -> dict[tuple[str, str], int]:
    """(method, route template) -> requests the service answered so far."""
    return requests_by_route(server.url, server.headers())


def all_ready(ns: Namespace) -> bool:
    items = ns.cluster.custom.list_namespaced_custom_object(crd.GROUP, crd.VERSION, ns.name, crd.PLURAL)["items"]
    ready = [o for o in items for c in (o.get("status") or {}).get("conditions") or []
             if c.get("type") == "Ready" and c.get("status") == "True"]
    return len(ready) == RESOURCES


def test_a_resync_of_many_unchanged_resources_costs_list_pages_not_lookups(
        namespace: Namespace, start_operator: Callable[..., Any]) -> None:
    with LocalServer(token=TOKEN) as server:  # its own service: the counts are this test's alone
        seed(server.api_url, TOKEN)
        namespace.set_secret(endpoint=server.api_url, token=TOKEN)
        port = free_port()
        operator = start_operator(namespace, "--metrics-port", str(port), "--log-level", "info")
        for n in range(RESOURCES):
            namespace.apply(manifest(f"{namespace.name}-{n:03d}"))
        wait_for(lambda: all_ready(namespace), timeout=180, interval=0.5, what=f"{RESOURCES} resources Ready")
        created = requests(server)
        assert created.get(("POST", LIST), 0) == RESOURCES

        wait_for(lambda: resyncs(port) >= RESOURCES, timeout=RESYNC * 10 + 60, what="a first resync of each")
        before, resynced, started = requests(server), resyncs(port), time.monotonic()
        wait_for(lambda: resyncs(port) - resynced >= 2 * RESOURCES, timeout=RESYNC * 10 + 60,
                 what="two more resyncs of each resource")
        after, window = requests(server), time.monotonic() - started
        done = resyncs(port) - resynced

        def delta(method: str, route: str) -> int:
            return after.get((method, route), 0) - before.get((method, route), 0)

        writes = sum(after.get(k, 0) - before.get(k, 0) for k in after if k[0] in ("POST", "PATCH", "DELETE"))
        lists = delta("GET", LIST)
        assert writes == 0, (before, after)
        assert delta("GET", ONE) == 0  # no lookups: every resource found in the snapshot
        # one page (50 definitions) per list, one list per resync interval (+1: the window's edges)
        assert lists <= window / RESYNC + 2, (lists, window, done)
        assert lists < done / 10  # without the cache: one call per resync of each resource
        operator.stop()
