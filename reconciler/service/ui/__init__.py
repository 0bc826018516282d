"""The local service's web dashboard at ``/ui``: definitions, jobs with live progress, the week's
schedule, "Run now" and "Abort" behind a login (see :mod:`~reconciler.service.ui.views` and
:mod:`~reconciler.service.ui.session`). Server-rendered HTML with Jinja2; no build chain.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.service.settings import ServiceSettings
from reconciler.service.ui.common import PREFIX, SECURITY_HEADERS
from reconciler.service.ui.session import LoginKeys
from reconciler.service.ui.views import router

__all__ = ["PREFIX", "install"]

STATIC = Path(__file__).parent / "static"


class _StaticHeaders:
    """The dashboard's security headers on its static files too (a short cache instead of none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"]
        self.headers.append((b"cache-control", b"max-age=300"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: ServiceSettings) -> None:
    """Mount the dashboard on ``app`` (its routes check their own session: the API's token
    middleware lets ``/ui/`` through, see ``ServiceMiddleware(own_auth=...)``)."""
    app.state.ui_keys = LoginKeys(settings.token, max_age=settings.ui_session_seconds)
    app.mount(f"{PREFIX}/static", _StaticHeaders(StaticFiles(directory=STATIC)), name="ui-static")
    app.include_router(router)
