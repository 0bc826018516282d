"""The FastAPI application: ``create_app(settings)``.

The store is opened here, not in a lifespan handler, because ``httpx.ASGITransport`` (the CLI's
in-process target) never sends lifespan events. Errors of every kind leave as the API's error
body ``{"message": ..., "errors": {...}}``; nothing a client can send produces a 500.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from reconciler.__about__ import __version__
from reconciler.extras import MissingExtra
from reconciler.service import errors, metrics, openapi
from reconciler.service.middleware import ServiceMiddleware
from reconciler.service.routes import datasets as dataset_routes
from reconciler.service.routes import definitions, jobs, meta, resources
from reconciler.service.routes import models as model_routes
from reconciler.service.routes import rerun as rerun_routes
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store

log = logging.getLogger("reconciler.service")
API_PREFIX = "/api/v2"


def create_app(settings: ServiceSettings | None = None, *, store: Store | None = None) -> FastAPI:
    """A ready app. Pass ``store`` to share one database between apps (tests); else it is opened."""
    settings = settings or ServiceSettings()
    app = FastAPI(
        lifespan=_lifespan,
        title="reconciler local job-definitions service",
        version=__version__,
        description="A DataRobot-compatible subset of the REST API for batch prediction job definitions.",
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.store = store or Store(settings.db_url)
    for router in (definitions.router, jobs.router, meta.router, *resources.routers, dataset_routes.router,
                   rerun_routes.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(model_routes.router, prefix=API_PREFIX)
    app.include_router(meta.health_router)
    _install_error_handlers(app)
    openapi.install(app)
    own_auth: tuple[str, ...] = ()
    if settings.ui:  # the dashboard (issue #14): its routes check a session cookie of their own
        from reconciler.service import ui  # templates and forms load only when the dashboard is served

        ui.install(app, settings)
        own_auth = (f"{ui.PREFIX}/",)
    app.add_middleware(ServiceMiddleware, token=settings.token, own_auth=own_auth,
                       public=frozenset({metrics.METRICS_PATH}) if settings.metrics_public else frozenset())
    metrics.install(app, app.state.store)  # outermost: requests refused by the token check count too
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the scheduler while the server serves (``reconciler serve`` enables lifespan events;
    in-process transports send none, so they never run schedules). Interval 0 disables it."""
    from reconciler.service.scheduler import Scheduler

    settings: ServiceSettings = app.state.settings
    scheduler = Scheduler(app.state.store, interval=settings.scheduler_interval)
    app.state.scheduler = scheduler
    scheduler.start()
    runner = None
    if settings.run_jobs:  # the job runner (issue #8): claims and executes queued jobs
        from reconciler.service.runner.pool import JobRunner

        runner = JobRunner(app.state.store, settings)
        app.state.runner = runner
        await runner.start()
    try:
        yield
    finally:
        if runner is not None:
            await runner.stop()
        scheduler.stop()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.HTTPProblem)
    async def _service_error(_request: Request, exc: errors.HTTPProblem) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(MissingExtra)
    async def _not_installed(_request: Request, exc: MissingExtra) -> JSONResponse:
        return JSONResponse({"message": str(exc)}, status_code=501)

    @app.exception_handler(RequestValidationError)
    async def _bad_params(_request: Request, exc: RequestValidationError) -> JSONResponse:
        found: dict[str, str] = {}
        for error in exc.errors():
            loc = [part for part in error.get("loc", ()) if part not in ("query", "path", "body")]
            # a parameter by its name: "status", not "status.0" for the first repeat of a list
            key = str(loc[0]) if loc and error.get("loc", ("",))[0] in ("query", "path") else ".".join(map(str, loc))
            key, text = key or "request", str(error.get("msg", "invalid value"))
            found[key] = f"{found[key]}; {text}" if key in found else text
        return JSONResponse({"message": f"invalid request parameters: {', '.join(found)} (see /docs for their limits)",
                             "errors": found}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.url.path}; routes live under {API_PREFIX}/ (see /docs)"
        headers = exc.headers
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            message = f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)} (see /docs)"
            headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        return JSONResponse({"message": message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"message": f"internal error ({type(exc).__name__}); see the service log"},
                            status_code=500)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path: Starlette's 405 names only the first route that
    matched the path, and a path such as ``batchPredictionJobDefinitions/`` has one route per
    method. Each method is tried against the router (routers nest, so it answers, not a walk)."""
    return [method for method in _METHODS
            if any(candidate.matches({**request.scope, "method": method})[0] is Match.FULL
                   for candidate in request.app.router.routes)]


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
