"""The dashboard's login and logout: the service token, checked once, exchanged for a session."""

from __future__ import annotations

from fastapi import Query, Request, Response

from reconciler.service.ui.common import (
    PREFIX,
    error,
    keys_of,
    local_target,
    page,
    poster,
    redirect,
    set_cookie,
)
from reconciler.service.ui.forms import FormError, read_form
from reconciler.service.ui.session import COOKIE

__all__ = ["login", "login_page", "logout"]


async def login_page(request: Request, target: str = Query("", alias="next", max_length=2000)) -> Response:
    keys = keys_of(request)
    if not keys.requires_login:
        return redirect(local_target(target))
    session = keys.read(request.cookies.get(COOKIE))
    if session is not None and session.logged_in:
        return redirect(local_target(target))
    cookie = None
    if session is None:  # a pre-login session for the form's CSRF token
        session, cookie = keys.new(logged_in=False)
    return page(request, "login.html", session=session, cookie=cookie, title="Log in", next=local_target(target),
                failed=False, notice=None)


async def login(request: Request) -> Response:
    keys = keys_of(request)
    session = keys.read(request.cookies.get(COOKIE))
    try:
        form = await read_form(request)
    except FormError as exc:
        anonymous, _ = keys.new(logged_in=False)
        return error(request, anonymous, exc.status, str(exc))
    if session is None or not keys.csrf_ok(session, form.get("csrf")):
        fresh, cookie = keys.new(logged_in=False)
        return page(request, "login.html", session=fresh, cookie=cookie, status=403, title="Log in",
                    next=local_target(form.get("next")), failed=False,
                    notice="The login form expired or did not come from this dashboard. Try again.")
    if not keys.token_ok(form.get("token", "")):
        return page(request, "login.html", session=session, status=401, title="Log in",
                    next=local_target(form.get("next")), failed=True, notice=None)
    _, cookie = keys.new(logged_in=True)  # a new session id: one known before login is worth nothing
    response = redirect(local_target(form.get("next")))
    set_cookie(request, response, cookie)
    return response


async def logout(request: Request) -> Response:
    posted = await poster(request)
    if isinstance(posted, Response):
        return posted
    response = redirect(f"{PREFIX}/login" if keys_of(request).requires_login else f"{PREFIX}/")
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response
