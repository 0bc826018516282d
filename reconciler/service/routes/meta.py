"""``version/`` (the SDK's first call) and the unauthenticated health route."""

from __future__ import annotations

from fastapi import APIRouter

from reconciler.__about__ import __version__
from reconciler.service.deps import StoreDep
from reconciler.service.openapi import json_response
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route

# SDK 3.20 expects server 2.49: it warns when the server's minor is lower and refuses a higher major.
API_MAJOR, API_MINOR = 2, 49

router = APIRouter(tags=["service"])
health_router = APIRouter(tags=["service"])


async def version() -> JSONResponse:
    return JSONResponse({"major": API_MAJOR, "minor": API_MINOR, "versionString": f"{API_MAJOR}.{API_MINOR}.0",
                         "releasedVersion": f"reconciler-local-{__version__}"})


async def health(store: StoreDep) -> JSONResponse:
    """200 when the database answers; no token needed, so probes and start-up waits can use it."""
    store.ping()
    return JSONResponse({"status": "ok", "schemaVersion": store.version()})


route(router, "/version/", version, methods=["GET"], responses=json_response("ApiVersionResponse"),
      summary="API version")
route(health_router, "/healthz", health, methods=["GET"], responses=json_response("ApiHealthResponse"),
      summary="Health check")
