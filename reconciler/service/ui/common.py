"""What every dashboard page shares: the security headers, the templates, the session gate.

A page needs a session (:mod:`reconciler.service.ui.session`): :func:`viewer` redirects a page
view without one to the login form; :func:`poster` refuses a POST with 403 when it has no
logged-in session or its CSRF token is not that session's. Every response carries
:data:`SECURITY_HEADERS`: a CSP without inline script or style, no framing, no sniffing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from reconciler.service import ids
from reconciler.service.store import Store
from reconciler.service.ui.forms import FormError, read_form
from reconciler.service.ui.session import COOKIE, LoginKeys, LoginSession

__all__ = ["PREFIX", "SECURITY_HEADERS", "page", "poster", "templates", "viewer"]

PREFIX: Final = "/ui"
CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
templates = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True)


def when(value: str | datetime | None) -> str:
    """An API timestamp or a datetime as ``2026-01-05 02:00:13 UTC``; ``-`` for none."""
    if value is None or value == ids.NEVER:
        return "-"
    moment = value if isinstance(value, datetime) else ids.parse_iso(value)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


templates.filters["when"] = when
templates.filters["duration"] = duration


def keys_of(request: Request) -> LoginKeys:
    keys: LoginKeys = request.app.state.ui_keys
    return keys


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=keys_of(request).max_age, path=PREFIX, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def page(request: Request, template: str, *, session: LoginSession, status: int = 200, cookie: str | None = None,
         **context: Any) -> Response:
    """Render a template with what every page needs (CSRF token, navigation, login state)."""
    keys = keys_of(request)
    context.setdefault("refresh", None)
    context.setdefault("nav", "")
    html = templates.get_template(template).render(
        prefix=PREFIX, csrf=keys.csrf(session), logged_in=session.logged_in, login_required=keys.requires_login,
        **context)
    response = secure(HTMLResponse(html, status_code=status))
    if cookie is not None:
        set_cookie(request, response, cookie)
    return response


def error(request: Request, session: LoginSession, status: int, message: str, *, back: str | None = None) -> Response:
    return page(request, "error.html", session=session, status=status, title="Something went wrong",
                message=message, back=back)


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


def local_target(target: str | None) -> str:
    """Where to go after login: only a path of this dashboard (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def viewer(request: Request) -> tuple[LoginSession, str | None] | Response:
    """The session of a page view, or the redirect to the login form. Without a service token a
    session is issued on the spot (its cookie set by the page)."""
    keys = keys_of(request)
    session = keys.read(request.cookies.get(COOKIE))
    if session is not None and session.logged_in:
        return session, None
    if not keys.requires_login:
        fresh, cookie = keys.new(logged_in=True)
        return fresh, cookie
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"{PREFIX}/login?{urlencode({'next': target})}")


async def poster(request: Request) -> tuple[LoginSession, dict[str, str]] | Response:
    """The session and form of a POST, or a 403 page: no session, not logged in, or a CSRF token
    that is not this session's."""
    keys = keys_of(request)
    session = keys.read(request.cookies.get(COOKIE))
    anonymous, _ = keys.new(logged_in=False)
    try:
        form = await read_form(request)
    except FormError as exc:
        return error(request, session or anonymous, exc.status, str(exc))
    if session is None or not session.logged_in:
        return error(request, anonymous, 403, "You are not logged in (or your session expired): nothing was "
                      "done. Log in and try again.", back=f"{PREFIX}/login")
    if not keys.csrf_ok(session, form.get("csrf")):
        return error(request, session, 403, "This form is stale or did not come from this dashboard (its CSRF "
                      "token does not match your session): nothing was done. Reload the page and try again.")
    return session, form
