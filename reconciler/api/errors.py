"""Errors of the API client. Why our own tree: callers branch on *what went wrong* (gone,
taken, invalid, throttled, unreachable), not on httpx's classes, and the same names work
whatever transport carried the request (network, in-process ASGI app, a test fake).

The original httpx error is always chained (``raise ... from exc``). Messages never contain
the token: they are built from the method, the URL path and the response body only.

::

    APIError                     anything the client could not do
    ├── EndpointError            refused before sending: bad or insecure endpoint (http:// remote)
    ├── APITLSError              the TLS handshake failed (an untrusted, expired or other host's
    │                            certificate): never retried, a retry cannot fix it
    ├── APITransportError        no usable response: connection refused/dropped, protocol error
    │   ├── APIConnectError      no connection could be made: the request was never sent
    │   └── APITimeoutError      the request timed out (it may or may not have been applied)
    └── APIStatusError           the server answered with a non-2xx status
        ├── APIClientError       4xx
        │   ├── APIAuthError         401, 403
        │   ├── APINotFoundError     404
        │   ├── APIConflictError     409 (e.g. name already used)
        │   ├── APIValidationError   422
        │   └── APIRateLimitError    429
        └── APIServerError       5xx
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import NameTaken, ServiceError, Unauthorized, Unreachable

__all__ = [
    "APIAuthError",
    "APIClientError",
    "APIConflictError",
    "APIConnectError",
    "APIError",
    "APINotFoundError",
    "APIRateLimitError",
    "APIServerError",
    "APIStatusError",
    "APITLSError",
    "APITimeoutError",
    "APITransportError",
    "APIValidationError",
    "EndpointError",
    "status_error",
]


class APIError(ServiceError):
    """Root of the client's errors; ``str()`` is safe to print (no token, no secret values)."""


class EndpointError(APIError):
    """The endpoint was refused before any request was sent."""


class APITLSError(APIError, Unreachable):
    """The TLS handshake failed: the message says why (self-signed, expired, wrong host) and what to do."""


class APITransportError(APIError, Unreachable):
    """No usable response arrived."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class APIConnectError(APITransportError):
    """No connection could be made (refused, unreachable, connect timeout): the request was never
    sent, so a write certainly did not happen."""


class APITimeoutError(APITransportError):
    """The request timed out; a write may or may not have been applied."""


class APIStatusError(APIError):
    """A non-2xx answer; ``body`` is the decoded JSON body (or the text) for callers to inspect."""

    def __init__(self, message: str, *, status: int, method: str, path: str, body: Any = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after


class APIClientError(APIStatusError):
    """4xx: the request itself is wrong (or not allowed); retrying the same request will not help."""


class APIAuthError(APIClientError, Unauthorized):
    """401/403: the token is missing, wrong, or lacks permission."""


class APINotFoundError(APIClientError):
    """404: the object does not exist (or is not visible)."""


class APIConflictError(APIClientError, NameTaken):
    """409: e.g. the name is already used in the organization."""


class APIValidationError(APIClientError):
    """422: the server rejected the body."""


class APIRateLimitError(APIClientError):
    """429: throttled; ``retry_after`` says how long the server asked us to wait."""


class APIServerError(APIStatusError):
    """5xx: the server (or a gateway in front of it) failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    401: APIAuthError,
    403: APIAuthError,
    404: APINotFoundError,
    409: APIConflictError,
    422: APIValidationError,
    429: APIRateLimitError,
}


def status_error(*, status: int, method: str, path: str, body: Any = None, request_id: str | None = None,
                 retry_after: float | None = None) -> APIStatusError:
    """The right subclass for a status, with a message naming the request and the server's reason."""
    cls = _BY_STATUS.get(status) or (APIServerError if status >= 500 else APIClientError)
    reason = ""
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail")
        if message:
            reason = f": {message}" if isinstance(message, str) else f": {message!r}"
        if body.get("errors"):
            reason += f" {body['errors']!r}"
    elif isinstance(body, str) and body.strip():
        reason = ": " + body.strip()[:300]
    if status == 401:
        reason = reason or ": not properly authenticated (check the API token)"
    text = f"{method} {path} -> {status}{reason}"
    if request_id:
        text += f" (request id {request_id})"
    return cls(text, status=status, method=method, path=path, body=body, request_id=request_id,
               retry_after=retry_after)
