"""Plain ASGI middleware (no BaseHTTPMiddleware: it costs a task per request): token check and
one access-log line per request.

The token is compared with ``hmac.compare_digest``. Log lines never contain a token: headers are
not logged, and query parameters that look like secrets, or the configured token in any spelling
a URL gives it (literal, percent-encoded, plus-encoded, encoded twice), are replaced by ``***``.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("reconciler.service.access")
# No token needed: the health probe, and the API documentation (the schema holds no data, and a
# browser opening /docs cannot send an Authorization header; "Authorize" there sets it for calls).
PUBLIC_PATHS = frozenset({"/healthz", "/healthz/", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
# name=value pairs of a query string (after "?" or "&"); a name is a secret's when, decoded, it
# mentions one of these words
_SECRET_PARAMS = re.compile(r"(?<=[?&])([^=&\s\"]*)=([^&\s\"]*)")
_SECRET_NAME = re.compile(r"token|key|secret|password|auth", re.IGNORECASE)


def redact(text: str, token: str | None) -> str:
    """``text`` without the token in any spelling a URL can give it, and without the values of
    query parameters whose (decoded) name looks like a secret."""
    if token:
        text = token_pattern(token).sub("***", text)
    return _SECRET_PARAMS.sub(_hide_secret_value, text)


def _hide_secret_value(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={'***' if _SECRET_NAME.search(unquote_plus(name)) else value}"


@functools.lru_cache(maxsize=8)
def token_pattern(token: str) -> re.Pattern[str]:
    """Every encoding of ``token`` a URL can carry: each character as itself or percent-encoded
    (UTF-8 bytes, either hex case, encoded again any number of times: ``%252F``), a space also as
    ``+``, so a token pasted into a query string or a path by any client is found."""
    parts: list[str] = []
    for char in token:
        spellings = [re.escape(char)]
        spellings.append("".join(f"%(?:25)*{byte:02X}" for byte in char.encode("utf-8")))
        if char == " ":
            spellings.append(r"\+")
        parts.append("(?:" + "|".join(spellings) + ")")
    return re.compile("".join(parts), re.IGNORECASE)


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() in ("token", "bearer") and credential.strip():
                return credential.strip()
            return None
    return None


class ServiceMiddleware:
    """``public``: more paths that need no token (``/metrics`` with ``metrics_public``);
    ``own_auth``: path prefixes (``/ui/``, which takes ``/ui`` too) whose routes check a session of
    their own (the dashboard)."""

    def __init__(self, app: ASGIApp, *, token: str | None, public: frozenset[str] = frozenset(),
                 own_auth: tuple[str, ...] = ()) -> None:
        self.app = app
        self.token = token
        self.public = PUBLIC_PATHS | public
        self.own_auth = own_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            path = scope["path"]
            if self.token is not None and path not in self.public and not (path + "/").startswith(self.own_auth):
                given = _bearer(scope["headers"])
                if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                    await _unauthorized(send_logged, missing=given is None)
                    return
            if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
                # PostgreSQL cannot compare text holding NUL (it would be a 500); no id or filter has one
                await _send_error(send_logged, 400, "the URL holds a NUL character (%00); remove it from the "
                                                    "path and the query string")
                return
            await self.app(scope, receive, send_logged)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                self._log(scope, status[0], time.perf_counter() - started)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client")
        who = f"{client[0]}:{client[1]}" if client else "-"
        target = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            target += "?" + query
        line = f'{who} "{scope["method"]} {target} HTTP/{scope.get("http_version", "1.1")}" {status} {seconds * 1000:.1f}ms'
        access_log.info("%s", redact(line, self.token))


async def _unauthorized(send: Any, *, missing: bool) -> None:
    message = ("authentication required: send the header 'Authorization: Token <token>' or 'Bearer <token>'"
               if missing else "the token is not valid: check the token the service was started with")
    await _send_error(send, 401, message, [(b"www-authenticate", b'Token realm="reconciler"')])


async def _send_error(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
