"""Benchmark of the local service over HTTP (prints numbers; not a test).

16 concurrent clients create N definitions, list them all in pages of 100 (one client following
``next`` links, as the SDK does), and get 1,000 by id; requests/s and p50/p99 latency per route, on
SQLite and on PostgreSQL. The server runs as a separate ``reconciler serve`` process so that it
does not share a GIL with the clients.

    python bench/bench_service.py                 # 10,000 definitions, SQLite and PostgreSQL
    python bench/bench_service.py --count 1000 --backend sqlite
    python bench/bench_service.py --pages         # a page of 1,000 at 10,000 and 100,000 rows

Targets on a 2-core machine: listing all 10,000 in under 1.5 s; creates >= 500/s on SQLite;
a page of 1,000 definitions (``?limit=1000``) well under 120 ms (issue #16 item 3).

``--pages`` stores the definitions directly (bulk insert) and times a page of 1,000 at the
start, middle and end of the table three ways: the decoded path in-process as the route ran it
before (records decoded, ``render.definition`` each, the envelope encoded), the spliced path
in-process (``listing.definitions_page`` over the stored JSON text), and ``GET ?limit=1000``
over HTTP from a ``reconciler serve`` process (the spliced path, with the server's overhead).
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


def _fill(store: Any, count: int) -> None:
    """``count`` definitions like the HTTP benchmark's (a third without a schedule), inserted at once."""
    import sqlalchemy as sa

    from reconciler.service import ids
    from reconciler.service.records import DefinitionRecord
    from reconciler.service.store.tables import definitions

    user = {"username": "bench", "userId": "0" * 24, "fullName": None}
    dep, cred, now = ids.new_id(), ids.new_id(), ids.iso(ids.utcnow())
    for start in range(0, count, 10_000):
        rows = []
        for i in range(start, min(count, start + 10_000)):
            schedule: dict[str, list[int | str]] = {"minute": [i % 60], "hour": [2], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}
            rows.append(store._definition_row(DefinitionRecord(
                id=ids.new_id(), name=f"bench-{i:06d}", enabled=i % 2 == 0, schedule=schedule if i % 3 else None,
                job={"deploymentId": dep, "numConcurrent": 1 + i % 4, "maxExplanations": 0,
                     "intakeSettings": {"type": "s3", "url": f"s3://bench/in-{i}.csv", "credentialId": cred},
                     "outputSettings": {"type": "s3", "url": f"s3://bench/out-{i}.csv", "credentialId": cred},
                     "passthroughColumnsSet": "all", "includeProbabilities": True, "skipDriftTracking": False},
                created=now, updated=now, created_by=user, updated_by=user)))
        with store.engine.begin() as conn:
            conn.execute(sa.insert(definitions), rows)


def bench_pages(db_url: str, count: int, label: str, repeat: int = 5) -> None:
    """ms per page of 1,000: decoded (before) vs spliced (now) in-process, and now over HTTP."""
    from reconciler.service import ids, listing, render
    from reconciler.service.responses import dumps
    from reconciler.service.store import Store

    store = Store(db_url)
    started = time.perf_counter()
    _fill(store, count)
    print(f"{label}: {count:,} definitions stored in {time.perf_counter() - started:.1f} s; "
          "ms per page of 1,000 (median of 5, at offsets 0 / middle / last page)")

    def link(at: int) -> str:
        return f"http://127.0.0.1/api/v2/batchPredictionJobDefinitions/?offset={at}&limit=1000"

    def decoded(offset: int) -> bytes:
        page = store.list_definitions(offset=offset, limit=1000)
        now = ids.utcnow()
        items = [render.definition(record, now=now) for record in page.items]
        return dumps(render.envelope(page, items, offset=offset, limit=1000, link=link))

    def spliced(offset: int) -> bytes:
        rows, total = store.list_definition_rows(offset=offset, limit=1000)
        return listing.definitions_page(rows, total=total, offset=offset, limit=1000, now=ids.utcnow(), link=link)

    offsets = (0, count // 2, count - 1000)

    def timed(call: Callable[[int], Any]) -> list[float]:
        out = []
        for offset in offsets:
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                call(offset)
                times.append((time.perf_counter() - t) * 1000)
            out.append(sorted(times)[len(times) // 2])
        return out

    before, now = timed(decoded), timed(spliced)
    store.close()
    with LocalServer(db_url=db_url, separate_process=True) as server, httpx.Client(base_url=server.api_url,
                                                                                   timeout=60) as client:
        over_http = timed(lambda offset: client.get(f"batchPredictionJobDefinitions/?offset={offset}&limit=1000")
                          .raise_for_status())
    for name, values in (("decoded (before), in-process", before), ("spliced (now), in-process", now),
                         ("GET ?limit=1000 over HTTP (now)", over_http)):
        print(f"  {name:<34} " + " / ".join(f"{v:6.1f}" for v in values) + " ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="definitions to create (default 10000)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pages", action="store_true", help="time a page of 1,000 (10,000 and 100,000 rows)")
    args = parser.parse_args()
    if args.pages:
        import tempfile

        for count in (10_000, 100_000):
            with tempfile.TemporaryDirectory() as tmp:
                bench_pages(f"sqlite:///{tmp}/pages.db", count, f"sqlite, {count:,}")
        with PostgresServer() as pg:
            bench_pages(pg.create_database("pages"), 10_000, "postgres, 10,000")
        return
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
