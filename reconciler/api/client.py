"""One async client for the job-definitions REST API, whatever serves it: DataRobot over the network
(``DATAROBOT_ENDPOINT`` + ``DATAROBOT_API_TOKEN``), ``reconciler serve`` on loopback, or the
embedded local service in-process (``httpx.ASGITransport``). The transport is the seam: tests
inject ``httpx.MockTransport`` or an ASGI app, never mocks of our functions.

What it owns, so that callers do not: the ``Authorization: Token`` header, pagination through
absolute ``next`` links (as given), bounded concurrency (one semaphore around every attempt),
retries with exponential backoff and jitter on 429/502/503/504, timeouts and dropped
connections (honouring ``Retry-After``), and the one non-idempotent case: a create whose answer
was lost is looked up by exact name before it is sent again, so a retry never makes a duplicate.

The token lives only in the httpx client's default headers; it is never logged, never part of a
repr or an error message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import hashlib
import ipaddress
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from reconciler.api import errors
from reconciler.api.tls import tls_failure
from reconciler.specs.files import SECRET_FILE_BYTES, read_limited

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PAGE_SIZE",
    "DEFINITIONS",
    "LOCAL_BASE_URL",
    "LOCAL_DB_URL",
    "Client",
    "Connection",
    "ListedPage",
    "RetryPolicy",
    "check_endpoint",
    "open_client",
    "page_digest",
    "parse_retry_after",
    "resolve_connection",
]

log = logging.getLogger("reconciler.api")
retry_log = logging.getLogger("reconciler.api.retry")

DEFAULT_CONCURRENCY: Final = 8
DEFINITIONS: Final = "batchPredictionJobDefinitions/"
DEFAULT_PAGE_SIZE: Final = 1000  # one list call per 1,000 definitions; the server may answer with fewer
FALLBACK_PAGE_SIZE: Final = 100  # the API's documented default, for a server that refuses 1,000
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
# A gateway error on a write may mean the write went through: treat like a lost answer.
AMBIGUOUS_STATUSES: Final = frozenset({502, 504})
LOCAL_BASE_URL: Final = "http://reconciler.local/api/v2/"
LOCAL_DB_URL: Final = "sqlite:///.reconciler/local.db"
TERMINAL_JOB_STATES: Final = frozenset({"COMPLETED", "ABORTED", "FAILED"})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits ``initial * 2**(n-1)`` capped at ``maximum``,
    scaled by a random factor in ``[1 - jitter, 1]``. A server's ``Retry-After`` wins (capped)."""

    attempts: int = 6
    initial: float = 0.25
    maximum: float = 20.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def delay(self, *, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        base = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return float(base * (1 - self.jitter * random.random()))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, *, allow_http: bool = False) -> str:
    """The endpoint with a trailing slash, or :class:`EndpointError` when it is unusable.

    A remote endpoint must be https (the token travels in a header); plain http is allowed for
    loopback (``reconciler serve``) or with ``allow_http``.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.EndpointError(f"endpoint {endpoint!r} is not an http(s) URL, e.g. https://app.datarobot.com/api/v2")
    if parts.username or parts.password:
        raise errors.EndpointError("endpoint must not carry credentials; use DATAROBOT_API_TOKEN or --token-file")
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise errors.EndpointError(
            f"endpoint {parts.scheme}://{parts.netloc} is plain http: the token would travel unencrypted; "
            "use https, or pass --allow-http if you really mean it")
    return endpoint if endpoint.endswith("/") else endpoint + "/"


class _Secret:
    """A string that never shows itself in a repr or str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True, kw_only=True)
class Connection:
    """Where requests go. ``endpoint=None`` means the embedded local service, in-process."""

    endpoint: str | None
    token: _Secret | None = field(default=None, repr=False)
    source: str = "local"  # flag, env, config:<name>, local
    allow_http: bool = False
    db_url: str = LOCAL_DB_URL

    @property
    def local(self) -> bool:
        return self.endpoint is None

    def describe(self) -> str:
        return f"local service ({self.db_url})" if self.endpoint is None else f"{self.endpoint} (from {self.source})"


def _read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in a file: a regular file of at most 64 KiB (never ``/dev/zero`` read forever)."""
    raw = read_limited(path, limit=SECRET_FILE_BYTES, what="token file")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise errors.EndpointError(f"token file {path} is not UTF-8 text; it should hold the API token only") from None
    if not text:
        raise errors.EndpointError(f"token file {path} is empty")
    return text


def resolve_connection(*, endpoint: str | None = None, token_file: str | os.PathLike[str] | None = None,
                   config_endpoint: str | None = None, config_token: Mapping[str, str] | None = None,
                   config_name: str | None = None, allow_http: bool = False,
                   environ: Mapping[str, str] | None = None, db_url: str = LOCAL_DB_URL) -> Connection:
    """Flags win; then a target chosen with ``--target`` (``config_name``); then the environment;
    none -> local.

    A chosen target is never redirected by ``DATAROBOT_ENDPOINT``: its variables and scope were
    written for its own endpoint, and a target without one means the embedded local service. As in
    Terraform, the environment is the fallback, not an override. ``config_token`` is the target's
    ``tokenFrom`` (``{env: NAME}`` or ``{file: PATH}``); it wins over ``DATAROBOT_API_TOKEN``.
    """
    env = os.environ if environ is None else environ
    chosen = config_name is not None or config_endpoint is not None or config_token is not None
    token: str | None = _read_token_file(token_file) if token_file else None
    if endpoint:
        source = "flag"
    elif chosen and config_endpoint:
        endpoint, source = config_endpoint, f"config:{config_name or 'default'}"
    elif chosen:
        return Connection(endpoint=None, allow_http=allow_http, db_url=db_url)
    elif env.get("DATAROBOT_ENDPOINT"):
        endpoint, source = env["DATAROBOT_ENDPOINT"], "env"
    else:
        return Connection(endpoint=None, allow_http=allow_http, db_url=db_url)
    where = f"target {config_name!r}" if config_name else "the project config"
    if token is None and config_token:
        if "env" in config_token:
            token = env.get(config_token["env"]) or None
            if token is None:
                raise errors.EndpointError(
                    f"endpoint {endpoint} needs a token: {where} reads it from the environment variable "
                    f"{config_token['env']}, which is not set (or empty); export it, or pass --token-file")
        elif "file" in config_token:
            token = _read_token_file(config_token["file"])
    if token is None and env.get("DATAROBOT_API_TOKEN"):
        token = env["DATAROBOT_API_TOKEN"]
    if not token:
        raise errors.EndpointError(
            f"endpoint {endpoint} needs a token: set DATAROBOT_API_TOKEN, pass --token-file, or set tokenFrom in the project config")
    return Connection(endpoint=check_endpoint(endpoint, allow_http=allow_http), token=_Secret(token), source=source,
                  allow_http=allow_http, db_url=db_url)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, errors.APITransportError):
        return True
    return isinstance(exc, errors.APIStatusError) and exc.status in RETRY_STATUSES


def _ambiguous(exc: BaseException) -> bool:
    """A failure after which a write may have happened (not a refused connection: nothing was sent)."""
    if isinstance(exc, errors.APIConnectError):
        return False
    if isinstance(exc, errors.APITransportError):
        return True
    return isinstance(exc, errors.APIStatusError) and exc.status in AMBIGUOUS_STATUSES


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Client:
    """Async client for batch prediction job definitions. Use as ``async with Client(...) as c``.

    ``calls`` counts attempts sent per method (retries included): tests and benchmarks read it
    to prove, e.g., that a second apply makes zero writes.
    """

    def __init__(self, *, endpoint: str, token: str | _Secret | None = None,
                 http: httpx.AsyncClient | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, retry: RetryPolicy | None = None,
                 allow_http: bool = False, check_scheme: bool = True, timeout: float = 30.0,
                 page_size: int = DEFAULT_PAGE_SIZE,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.base_url = check_endpoint(endpoint, allow_http=allow_http) if check_scheme else (
            endpoint if endpoint.endswith("/") else endpoint + "/")
        secret = token if isinstance(token, _Secret) or token is None else _Secret(token)
        headers = {"Accept": "application/json", "User-Agent": "reconciler"}
        if secret is not None:
            headers["Authorization"] = f"Token {secret.reveal()}"
        if http is not None:
            self._http = http
            self._http.headers.update(headers)
            self._owns_http = False
        else:
            limits = httpx.Limits(max_connections=max(concurrency, 1), max_keepalive_connections=max(concurrency, 1))
            self._http = httpx.AsyncClient(transport=transport, headers=headers, timeout=timeout,
                                           follow_redirects=False, limits=limits)
            self._owns_http = True
        self._sem = asyncio.Semaphore(max(concurrency, 1))
        self.concurrency = max(concurrency, 1)
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        self._sleep = sleep or asyncio.sleep
        self.calls: collections.Counter[str] = collections.Counter()
        self._origin = urlsplit(self.base_url)[:2]
        # the embedded service's ASGI app when this client talks to it in-process (see open_client)
        self.local_app: Any = None

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, concurrency={self.concurrency})"

    @property
    def writes(self) -> int:
        return self.calls["POST"] + self.calls["PATCH"] + self.calls["DELETE"]

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- one attempt, then retries -------------------------------------------------------------

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def _display(self, url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def _send(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                    json: Any = None) -> httpx.Response:
        shown = self._display(url)
        async with self._sem:
            self.calls[method] += 1
            started = time.perf_counter()
            try:
                response = await self._http.request(method, url, params=params, json=json)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                log.debug("%s %s: no connection: %s", method, shown, type(exc).__name__)
                host = urlsplit(url).netloc  # check_endpoint refused credentials in the URL
                if (tls := tls_failure(exc)) is not None:
                    raise errors.APITLSError(f"{method} {shown}: TLS failure with {host}: {tls}") from exc
                raise errors.APIConnectError(
                    f"{method} {shown}: cannot connect to {host} ({type(exc).__name__}: {exc}); check the endpoint "
                    "and that the service is running", method=method, path=shown) from exc
            except httpx.TimeoutException as exc:
                log.debug("%s %s timed out", method, shown)
                raise errors.APITimeoutError(f"{method} {shown}: timed out ({type(exc).__name__})",
                                             method=method, path=shown) from exc
            except (httpx.TransportError, httpx.StreamError) as exc:
                log.debug("%s %s failed: %s", method, shown, type(exc).__name__)
                raise errors.APITransportError(f"{method} {shown}: {type(exc).__name__}: {exc}",
                                               method=method, path=shown) from exc
            log.debug("%s %s -> %s in %.3fs", method, shown, response.status_code, time.perf_counter() - started)
        if response.status_code >= 400:
            raise errors.status_error(
                status=response.status_code, method=method, path=shown, body=_decode(response),
                request_id=response.headers.get("x-request-id") or response.headers.get("x-datarobot-request-id"),
                retry_after=parse_retry_after(response.headers.get("retry-after")))
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, errors.APIStatusError) else None
        delay = self.retry.delay(attempt=state.attempt_number, retry_after=retry_after)
        if state.attempt_number >= self.retry.attempts:
            return delay  # tenacity asks before it checks the stop: there is no next attempt to announce
        # one line for people, shown without --verbose (cli.console routes this logger to stderr)
        retry_log.info("%s from %s, retrying in %.1f s (attempt %d/%d)", _cause(exc), self._origin[1], delay,
                       state.attempt_number + 1, self.retry.attempts)
        log.debug("retrying after %s", _short(exc))
        return delay

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(stop=stop_after_attempt(self.retry.attempts), wait=self._wait,
                             retry=retry_if_exception(_retryable), sleep=self._sleep, reraise=True)

    async def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None) -> httpx.Response:
        """Send with retries. Only for idempotent requests (GET, PATCH with a full body, DELETE)."""
        async for attempt in self._retrying():
            with attempt:
                return await self._send(method, url, params=params, json=json)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    # -- definitions --------------------------------------------------------------------------

    async def iter_pages(self, *, search_name: str | None = None, page_size: int | None = None,
                         prefetch: bool = False, retry: bool = True,
                         known: Mapping[str, str | None] | None = None) -> AsyncIterator[ListedPage]:
        """Every page of definitions, following ``next`` links as given (absolute URLs): one GET
        per page, never more. ``retry=False``: one attempt per page (for a caller that is itself
        inside a retry loop).

        ``prefetch``: the request for page n+1 is sent before page n is handed over, so the
        server works (and the network waits) while the caller normalizes page n; a caller that
        stops early must ``aclose()`` the iterator. A server that refuses the page size (400/422
        on the first page) is asked again with :data:`FALLBACK_PAGE_SIZE`.

        ``known``: pages seen before, by :func:`page_digest` of their bytes, with the ``next`` link
        each held. A page whose bytes are known is not decoded: it is handed over empty with its
        ``digest`` (the caller has what it held) and the remembered link is followed (checked as
        any). The same bytes decode to the same page, so nothing is taken on trust but the caller's
        own record (:mod:`reconciler.api.live_memo`)."""
        get = self.request if retry else self._send
        size = page_size or self.page_size
        params: dict[str, Any] = {"offset": 0, "limit": size}
        if search_name:
            params["searchName"] = search_name
        try:
            response = await get("GET", self.url(DEFINITIONS), params=params)
        except errors.APIClientError as exc:
            if exc.status not in (400, 422) or size <= FALLBACK_PAGE_SIZE:
                raise
            log.info("the server refused limit=%d (%s); listing %d per page", size, exc.status, FALLBACK_PAGE_SIZE)
            params["limit"] = FALLBACK_PAGE_SIZE
            response = await get("GET", self.url(DEFINITIONS), params=params)
        pending: asyncio.Task[httpx.Response] | None = None
        try:
            while True:
                digest = page_digest(response.content) if known is not None else None
                if digest is not None and known is not None and digest in known:
                    link = known[digest]
                    page = ListedPage([], strict=True, digest=digest, link=link, known=True)
                else:
                    body, strict = _decoded_page(response)
                    link = body.get("next")
                    page = ListedPage(list(body.get("data") or []), strict=strict, digest=digest, link=link)
                if link and urlsplit(link)[:2] != self._origin:
                    raise errors.APIError(f"refusing to follow a next link to another origin: {urlsplit(link).netloc}")
                if link and prefetch:
                    pending = asyncio.ensure_future(get("GET", link))
                    await asyncio.sleep(0)  # let it reach the wire before the caller takes the CPU
                yield page
                if not link:
                    return
                if pending is not None:
                    response, pending = await pending, None
                else:
                    response = await get("GET", link)
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, errors.APIError):
                    await pending

    async def list_definitions(self, *, search_name: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async for page in self.iter_pages(search_name=search_name):
            out.extend(page)
        return out

    async def find_by_name(self, name: str, *, retry: bool = True) -> dict[str, Any] | None:
        """The definition with exactly this name (``searchName`` is a substring match).
        ``retry=False`` inside ``create_definition``'s own retries, so that a server that is down
        costs one retry loop, not one loop per attempt."""
        async for page in self.iter_pages(search_name=name, retry=retry):
            for item in page:
                if item.get("name") == name:
                    return item
        return None

    async def get_definition(self, definition_id: str) -> dict[str, Any]:
        response = await self.request("GET", self.url(f"{DEFINITIONS}{definition_id}/"))
        return dict(response.json())

    async def create_definition(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a definition. Never retried blindly: once an attempt's answer was lost (timeout,
        dropped connection, 502/504), every later attempt first looks the name up and returns
        the definition it finds instead of creating a second one."""
        name = body.get("name")
        lost: list[str] = []  # why an earlier attempt may have created it (set once, by _create)
        try:
            return await self._create(body, name, lost)
        except errors.APIError as exc:
            if not lost or not _retryable(exc):  # only when the retries ran out
                raise
            raise errors.APITransportError(
                f"POST {self._display(self.url(DEFINITIONS))}: the answer was lost ({lost[0]}) and whether the "
                f"definition was created could not be checked ({exc}); `reconciler plan` shows whether it exists",
                method="POST", path=self._display(self.url(DEFINITIONS))) from exc

    async def _create(self, body: Mapping[str, Any], name: Any, lost: list[str]) -> dict[str, Any]:
        async for attempt in self._retrying():
            with attempt:
                try:
                    if lost and isinstance(name, str):
                        found = await self.find_by_name(name, retry=False)
                        if found is not None:
                            log.info("create of %r: the lost attempt went through (id %s); not sending again",
                                     name, found.get("id"))
                            return found
                    response = await self._send("POST", self.url(DEFINITIONS), json=dict(body))
                    return dict(response.json())
                except errors.APIConflictError:
                    if lost and isinstance(name, str):
                        found = await self.find_by_name(name, retry=False)
                        if found is not None:
                            return found
                    raise
                except errors.APIError as exc:
                    if not lost and _ambiguous(exc):
                        lost.append(_short(exc))
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def update_definition(self, definition_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH with the full body (like Terraform): repeating it is harmless, so it is retried."""
        response = await self.request("PATCH", self.url(f"{DEFINITIONS}{definition_id}"), json=dict(body))
        return dict(response.json()) if response.content else {}

    async def delete_definition(self, definition_id: str) -> bool:
        """True when deleted now, False when it was already gone (404 after a lost answer)."""
        try:
            await self.request("DELETE", self.url(f"{DEFINITIONS}{definition_id}/"))
        except errors.APINotFoundError:
            return False
        return True

    # -- jobs ---------------------------------------------------------------------------------

    async def run_definition(self, definition_id: str) -> dict[str, Any]:
        """Start one job from a definition now (not retried: a second POST would start a second job)."""
        response = await self._send("POST", self.url("batchPredictions/fromJobDefinition/"),
                                    json={"jobDefinitionId": definition_id})
        return dict(response.json())

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """The job; a 303 answer means finished, so the job is read from where it points."""
        response = await self.request("GET", self.url(f"batchPredictions/{job_id}/"))
        if response.status_code == 303:
            body = _decode(response)
            if isinstance(body, dict) and body.get("status"):
                return body
            return {"id": job_id, "status": "COMPLETED", "links": {"download": response.headers.get("location")}}
        return dict(response.json())

    async def wait_for_job(self, job_id: str, *, poll: float = 1.0, timeout: float = 3600.0,
                           on_status: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the job is COMPLETED, ABORTED or FAILED, or ``timeout`` seconds passed (then
        the last answer, still running, is returned). ``on_status`` sees each change of status."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            job = await self.get_job(job_id)
            if on_status is not None and job.get("status") != last:
                last = job.get("status")
                on_status(job)
            if job.get("status") in TERMINAL_JOB_STATES or time.monotonic() > deadline:
                return job
            await self._sleep(poll)


def _short(exc: BaseException | None) -> str:
    if isinstance(exc, errors.APIStatusError):
        return f"{exc.status} on {exc.method} {exc.path}"
    if isinstance(exc, errors.APITransportError):
        return f"{type(exc).__name__} on {exc.method} {exc.path}"
    return type(exc).__name__


def _cause(exc: BaseException | None) -> str:
    """What went wrong, short: ``503``, ``ReadTimeout``."""
    if isinstance(exc, errors.APIStatusError):
        return str(exc.status)
    if isinstance(exc, errors.APITransportError) and isinstance(exc.__cause__, Exception):
        return type(exc.__cause__).__name__
    return type(exc).__name__


def open_client(target: Connection, *, concurrency: int = DEFAULT_CONCURRENCY, retry: RetryPolicy | None = None,
                transport: httpx.AsyncBaseTransport | None = None, page_size: int = DEFAULT_PAGE_SIZE,
                local_app: Any = None) -> Client:
    """A client for a target. For the embedded local service (``endpoint=None``) the caller gives
    the in-process ``transport`` (and its ``local_app``): the client never builds the service
    (:meth:`reconciler.session.Session.client` does), so a remote run never loads it."""
    if target.endpoint is not None:
        return Client(endpoint=target.endpoint, token=target.token, transport=transport, concurrency=concurrency,
                      retry=retry, allow_http=target.allow_http, page_size=page_size)
    if transport is None:
        raise errors.EndpointError("the embedded local service needs its in-process transport "
                                   "(reconciler.session.Session.client makes it)")
    client = Client(endpoint=LOCAL_BASE_URL, transport=transport, concurrency=concurrency, retry=retry,
                    check_scheme=False, page_size=page_size)
    client.local_app = local_app
    return client


# a number of 19 digits or more (where a JSON value starts, so not the zeros of an id string):
# maybe an integer past 64 bits, which orjson reads as a float. That is the pattern
# rb"(?:^|[:\[,])\s*-?[0-9]{19}" in two parts: with ``^`` in an alternation the engine tries it at
# every byte (190 ms for a page of 1,000 definitions, more than orjson takes to decode the page);
# starting with a character class it skips ahead in C (19 ms), and the text's start is one anchored match.
_LONG_AT_START: Final = re.compile(rb"\s*-?[0-9]{19}")
_LONG_AFTER: Final = re.compile(rb"[:\[,]\s*-?[0-9]{19}")


# Still 19 ms a page (2 s of listing 100,000), so a prefilter in C first: every digit made "0",
# every ":", "[" and "," made ":", whitespace deleted and the rest made "x"; where the pattern
# matches, ":" then an optional "-" then nineteen "0"s stand in the result (whitespace deleted
# elsewhere, in strings too, can only make it say "maybe" more often: then the pattern decides).
_PREFILTER: Final = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(":") if chr(i) in ":[," else
                          ord("-") if i == ord("-") else ord("x") for i in range(256))
_WHITESPACE: Final = b" \t\n\r\x0b\x0c"  # what \s matches in a bytes pattern
_LONG_RUNS: Final = (b":" + b"0" * 19, b":-" + b"0" * 19)


def _maybe_long_number(content: bytes) -> bool:
    if _LONG_AT_START.match(content):
        return True
    marked = content.translate(_PREFILTER, _WHITESPACE)
    if not any(run in marked for run in _LONG_RUNS):
        return False
    return bool(_LONG_AFTER.search(content))


def _decoded_page(response: httpx.Response) -> tuple[Any, bool]:
    """A list page's JSON: orjson (a page of 1,000 definitions decodes 2-3x faster), and the
    standard decoder for what orjson refuses (not UTF-8, NaN) or would read otherwise (an integer
    past 64 bits becomes a float), so the data is exactly what ``response.json()`` gives; and
    whether orjson decoded it (see :class:`ListedPage`)."""
    content = response.content
    if not _maybe_long_number(content):
        try:
            return orjson.loads(content), True
        except orjson.JSONDecodeError:
            pass
    return response.json(), False


class ListedPage(list[dict[str, Any]]):
    """One page of definitions. ``strict``: orjson decoded it, so it holds only JSON's own values
    (no NaN or infinity, no integer past 64 bits) and orjson writes each item back to bytes that
    tell it apart from any other item (:mod:`reconciler.api.live_memo` keys items so).
    ``digest``: :func:`page_digest` of its bytes, when asked for (``iter_pages(known=...)``);
    ``known``: those bytes were known, so the page was not decoded and is empty here. ``link``: the
    page's ``next`` link (None on the last page)."""

    __slots__ = ("digest", "known", "link", "strict")

    def __init__(self, items: list[dict[str, Any]], *, strict: bool, digest: str | None = None,
                 link: str | None = None, known: bool = False) -> None:
        super().__init__(items)
        self.strict = strict
        self.digest = digest
        self.link = link
        self.known = known


def page_digest(content: bytes) -> str:
    """A page's bytes as a key: a different page never shares it (blake2b, 128 bits)."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()
