"""Benchmark of the local service over HTTP (prints numbers; not a test).

16 concurrent clients create N definitions, list them all in pages of 100 (one client following
``next`` links, as the SDK does), and get 1,000 by id; requests/s and p50/p99 latency per route, on
SQLite and on PostgreSQL. The server runs as a separate ``reconciler serve`` process so that it
does not share a GIL with the clients.

    python bench/bench_service.py                 # 10,000 definitions, SQLite and PostgreSQL
    python bench/bench_service.py --count 1000 --backend sqlite

Targets on a 2-core machine: listing all 10,000 in under 1.5 s; creates >= 500/s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any

import httpx

from reconciler.service.testing import LocalServer, PostgresServer

CLIENTS = 16


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(route: str, latencies: list[float], seconds: float) -> None:
    print(f"  {route:<34} {len(latencies):>6} req  {len(latencies) / seconds:>8.0f} req/s  "
          f"p50 {percentile(latencies, 0.5) * 1000:>6.1f} ms  p99 {percentile(latencies, 0.99) * 1000:>6.1f} ms  "
          f"total {seconds:.2f} s")


async def run_concurrently(count: int, call: Callable[[int], Awaitable[None]]) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await call(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return time.perf_counter() - started


async def bench(api_url: str, count: int, label: str) -> None:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60) as client:
        dep = (await client.post("deployments/", json={"label": "bench"})).raise_for_status().json()["id"]
        cred = (await client.post("credentials/", json={"name": "bench"})).raise_for_status().json()["id"]
        ids: list[str] = [""] * count
        created: list[float] = []

        async def create(i: int) -> None:
            body: dict[str, Any] = {
                "name": f"bench-{label}-{i:06d}", "enabled": i % 2 == 0,
                "schedule": {"minute": [i % 60], "hour": [2], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]},
                "deploymentId": dep, "numConcurrent": 1 + i % 4,
                "intakeSettings": {"type": "s3", "url": f"s3://bench/in-{i}.csv", "credentialId": cred},
                "outputSettings": {"type": "s3", "url": f"s3://bench/out-{i}.csv", "credentialId": cred},
            }
            t = time.perf_counter()
            response = await client.post("batchPredictionJobDefinitions/", json=body)
            created.append(time.perf_counter() - t)
            response.raise_for_status()
            ids[i] = response.json()["id"]

        print(f"{label}: {count} definitions, {CLIENTS} concurrent clients")
        report("POST batchPredictionJobDefinitions/", created, await run_concurrently(count, create))

        pages: list[float] = []
        seen = 0
        started = time.perf_counter()
        url: str | None = f"{api_url}batchPredictionJobDefinitions/?searchName=bench-{label}-&limit=100"
        while url:
            t = time.perf_counter()
            page = (await client.get(url)).raise_for_status().json()
            pages.append(time.perf_counter() - t)
            seen += len(page["data"])
            url = page["next"]
        listed = time.perf_counter() - started
        assert seen == count, (seen, count)
        report("GET list (pages of 100, all)", pages, listed)

        gets: list[float] = []
        sample = ids[: min(1000, count)]

        async def get(i: int) -> None:
            t = time.perf_counter()
            (await client.get(f"batchPredictionJobDefinitions/{sample[i]}/")).raise_for_status()
            gets.append(time.perf_counter() - t)

        report("GET batchPredictionJobDefinitions/{id}/", gets, await run_concurrently(len(sample), get))
        print(f"  listing all {count}: {listed:.2f} s (target < 1.5 s for 10,000); "
              f"creates: {count / sum(created) * CLIENTS:.0f}/s by latency, see req/s above (target >= 500/s SQLite)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="definitions to create (default 10000)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with ExitStack() as stack:
            db_url = None
            if backend == "postgres":
                pg = stack.enter_context(PostgresServer())
                db_url = pg.create_database("bench")
            server = stack.enter_context(LocalServer(db_url=db_url, separate_process=True))
            asyncio.run(bench(server.api_url, args.count, backend))


if __name__ == "__main__":
    main()
