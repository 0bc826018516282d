"""The dashboard's login session and CSRF tokens. No server-side state: a signed, expiring cookie.

The cookie holds a random session id and whether it logged in, signed (itsdangerous, HMAC-SHA256)
with a key derived from the service token, never the token itself. Every replica started with
the same token accepts it; changing the token ends every session. It is ``HttpOnly`` (no script
reads it), ``SameSite=Strict`` (no other site's page sends it), scoped to ``/ui`` and ``Secure``
on https. It expires after ``ServiceSettings.ui_session_seconds`` (the signature's timestamp is
checked, not only the browser's ``Max-Age``). Logging out clears it in the browser; a copied
cookie stays valid until it expires, as with any stateless session: keep the lifetime short.

Each form carries a CSRF token derived from the session id (HMAC), checked on every POST, the
login form's included (a pre-login session is issued with the form and replaced on login, so a
session id known before login is worth nothing after). Without a service token (loopback only)
every session counts as logged in, since the API itself is open there; forms still carry CSRF
tokens, because another site's page could otherwise post to ``127.0.0.1``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = ["COOKIE", "LoginKeys", "LoginSession"]

COOKIE: Final = "reconciler_ui"
_SALT: Final = "reconciler-ui-session"


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A dashboard visitor's session, carried in a signed cookie (not :class:`reconciler.session.Session`)."""

    sid: str
    logged_in: bool


class LoginKeys:
    """Signs and checks session cookies and CSRF tokens for one service."""

    def __init__(self, token: str | None, *, max_age: int) -> None:
        # With a token: a key every replica derives alike. Without: a random key per process.
        secret = (hmac.new(token.encode(), b"reconciler-ui-cookie-key-v1", hashlib.sha256).digest()
                  if token is not None else secrets.token_bytes(32))
        self.requires_login = token is not None
        self.max_age = max_age
        self._token = token
        self._csrf_key = hmac.new(secret, b"csrf", hashlib.sha256).digest()
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def new(self, *, logged_in: bool) -> tuple[LoginSession, str]:
        """A fresh session and its cookie value."""
        session = LoginSession(sid=secrets.token_urlsafe(24), logged_in=logged_in or not self.requires_login)
        return session, self._serializer.dumps({"sid": session.sid, "in": session.logged_in})

    def read(self, cookie: str | None) -> LoginSession | None:
        """The session a cookie holds, or None when it is missing, forged or expired."""
        if not cookie or len(cookie) > 512:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is one too
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        return LoginSession(sid=data["sid"], logged_in=bool(data.get("in")) or not self.requires_login)

    def csrf(self, session: LoginSession) -> str:
        return hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: LoginSession, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf(session).encode(), given.encode())

    def token_ok(self, given: str) -> bool:
        """The login check: the service token, compared in constant time."""
        return self._token is not None and hmac.compare_digest(given.encode(), self._token.encode())
