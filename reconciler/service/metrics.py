"""Prometheus metrics of the local service, served at ``/metrics`` (prometheus-client's text format).

Two kinds, said apart in their help text:

- **this process**: requests by method, route template (``/api/v2/batchPredictions/{job_id}/``,
  never the raw path, so ids do not explode the series) and status, and their duration; counted by
  :class:`MetricsMiddleware`, which sits outside the token check so refused requests count too;
- **the database**, read when Prometheus scrapes: jobs by status, rows scored and failed, and the
  scheduler's lag (how long the oldest due firing has waited for its claim; 0 when none waits).
  Every replica on one database reports the same values: aggregate them with ``max``, not ``sum``.
  A scrape reads the database at most once per ``cache_seconds``.

``/metrics`` needs the service's token like the API unless the service was started with
``--metrics-without-token`` (``ServiceSettings.metrics_public``); without a token the service
listens on loopback only, so either way nothing is exposed beyond what the API already shows.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.service import ids
from reconciler.service.records import JOB_STATUSES
from reconciler.service.store import Store

__all__ = ["METRICS_PATH", "MetricsMiddleware", "ServiceMetrics", "install"]

METRICS_PATH: Final = "/metrics"
UNMATCHED: Final = "unmatched"  # the route label of a request no route takes (a 404), so ids never become labels
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# request durations: from a cached read (about 1 ms) to a large upload
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What the database says at one moment (one read per scrape, at most)."""

    jobs: dict[str, int]
    scored_rows: int
    failed_rows: int
    scheduler_lag: float
    overdue: int


def read_figures(store: Store, *, now: datetime) -> StoreFigures:
    """Jobs by status and their rows, in one query; the lag from the scheduler's own rule.

    The query is written against the table and column names (the stored schema), not the store's
    module, so it survives the store's reorganisation."""
    from reconciler.service.scheduler import Scheduler  # the scheduler's due rule, exactly

    jobs = dict.fromkeys(JOB_STATUSES, 0)
    scored = failed = 0
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, COUNT(*), COALESCE(SUM(scored_rows), 0), "
                                    "COALESCE(SUM(failed_rows), 0) FROM jobs GROUP BY status")).all()
    for status, count, scored_rows, failed_rows in rows:
        jobs[str(status)] = int(count)
        scored += int(scored_rows)
        failed += int(failed_rows)
    rule = Scheduler(store, interval=0)
    waits = []
    for definition in store.scheduled_definitions():
        firing = rule.due(definition, now)
        if firing is not None:
            waits.append((now - firing).total_seconds())
    return StoreFigures(jobs=jobs, scored_rows=scored, failed_rows=failed,
                        scheduler_lag=max(waits, default=0.0), overdue=len(waits))


class _StoreCollector(Collector):
    """Reads the database when scraped; a scrape within ``cache_seconds`` of the last reuses it."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime], cache_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._last: tuple[float, StoreFigures] | None = None

    def figures(self) -> StoreFigures:
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < self.cache_seconds:
                return self._last[1]
            found = read_figures(self.store, now=self.clock())
            self._last = (time.monotonic(), found)
            return found

    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        jobs = GaugeMetricFamily("reconciler_jobs", "Batch prediction jobs in the database, by status "
                                 "(database-wide: the same on every replica).", labels=["status"])
        for status, count in sorted(figures.jobs.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield CounterMetricFamily("reconciler_job_rows_scored", "Rows scored by all jobs in the database "
                                  "(database-wide).", value=figures.scored_rows)
        yield CounterMetricFamily("reconciler_job_rows_failed", "Rows that failed to score, all jobs in the "
                                  "database (database-wide).", value=figures.failed_rows)
        yield GaugeMetricFamily("reconciler_scheduler_lag_seconds", "How long the oldest due scheduled firing "
                                "has waited to be claimed; 0 when none waits (database-wide).",
                                value=figures.scheduler_lag)
        yield GaugeMetricFamily("reconciler_scheduler_overdue_definitions", "Enabled definitions whose due "
                                "firing has not been claimed yet (database-wide).", value=figures.overdue)


class ServiceMetrics:
    """One registry per app (tests build many apps in one process; a global one would mix them)."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = ids.utcnow, cache_seconds: float = 5.0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("reconciler_http_requests", "HTTP requests this process answered, by method, "
                                "route template and status.", ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram("reconciler_http_request_duration_seconds", "Time to answer an HTTP request "
                                  "in this process, by method and route template.", ["method", "route"],
                                  buckets=BUCKETS, registry=self.registry)
        self.store_collector = _StoreCollector(store, clock=clock, cache_seconds=cache_seconds)
        self.registry.register(self.store_collector)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _template(path: str, params: dict[str, object]) -> str:
    """``path`` with each segment that holds a path parameter's value replaced by ``{name}``: the
    route's template with its prefix, whatever router or prefix the route came through."""
    names = {str(value): name for name, value in params.items()}
    return "/".join(f"{{{names[segment]}}}" if segment in names else segment for segment in path.split("/"))


def _known_templates(app: FastAPI) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Built once per app (kept on ``app.state``): every documented path template (the OpenAPI document's, with their prefixes) and the app's
    own top-level routes, most literal segments first (``fromJobDefinition/`` before ``{job_id}/``)."""
    known: tuple[tuple[str, re.Pattern[str]], ...] | None = getattr(app.state, "metrics_templates", None)
    if known is not None:
        return known
    paths = {*app.openapi().get("paths", {}),
             *(route.path for route in app.router.routes if isinstance(route, Route) and "{" not in route.path)}
    ranked = sorted(paths, key=lambda template: (-sum("{" not in part for part in template.split("/")), template))
    known = tuple((template, re.compile(re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template)) + "$"))
                  for template in ranked)
    app.state.metrics_templates = known
    return known


def route_template(scope: Scope) -> str:
    """The template of the route that took (or would take) the request, e.g.
    ``/api/v2/batchPredictions/{job_id}/``, else ``unmatched``.

    Routing records the route and its parameters in the scope; a request refused before routing
    (401) is matched against the documented templates."""
    if scope.get("route") is not None:
        return _template(scope["path"], scope.get("path_params", {}))
    app = scope.get("app")
    if isinstance(app, FastAPI):
        for template, pattern in _known_templates(app):
            if pattern.match(scope["path"]):
                return template
    return UNMATCHED


class MetricsMiddleware:
    """Plain ASGI (no task per request): time and count each HTTP request by its route template."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # an app that raises before answering: the server sends a 500

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.metrics.observe(scope["method"], route_template(scope), status[0], time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text format; the database figures are read in a worker thread."""
    metrics: ServiceMetrics = request.app.state.metrics
    body = await run_in_threadpool(metrics.exposition)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def install(app: FastAPI, store: Store) -> ServiceMetrics:
    """Add ``/metrics`` and the request counter to ``app`` (outside the token check: call it after
    the other middleware is added)."""
    metrics = ServiceMetrics(store)
    app.state.metrics = metrics
    app.add_api_route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics

