"""FastAPI dependencies as ``Annotated`` aliases: settings, store, the acting user, JSON bodies.

Everything here is ``async``: FastAPI runs sync dependencies and routes in a thread pool, and
the thread hop costs more than the sub-millisecond database calls it would move off the loop.
``get_settings`` reads the settings ``create_app`` was given; tests may override it with
``app.dependency_overrides[get_settings]``. Bodies are read by hand, not by pydantic, so that the
size limit, the content type and malformed JSON each get a precise 4xx instead of a 500, and so
that validation uses the project's JSON Schemas rather than a second set of rules.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request

from reconciler.service import errors
from reconciler.service.records import User
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store


async def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]


async def current_user(settings: SettingsDep) -> User:
    """The local service has one user; its id is stable (derived from the username)."""
    user_id = hashlib.sha256(settings.username.encode()).hexdigest()[:24]
    return User(username=settings.username, user_id=user_id, full_name=settings.full_name)


UserDep = Annotated[User, Depends(current_user)]


async def json_body(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx that says what was expected."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise errors.HTTPUnsupportedMediaType(
            f"expected a JSON body (Content-Type: application/json), got {media or 'no content type'!r}",
            errors={"Content-Type": "send the body as JSON with Content-Type: application/json"})
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_int64)
    except _NotStorable as exc:
        raise errors.HTTPBadRequest(f"the body is not valid JSON for this API: {exc}",
                                errors={"body": f"{exc}; {exc.hint}"}) from None
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise errors.HTTPBadRequest(f"the body is not valid JSON{where}",
                                errors={"body": f"{exc}; send a JSON object such as {{\"name\": \"...\"}}"}) from None
    if not isinstance(data, dict):
        raise errors.HTTPUnprocessable(f"expected a JSON object, got {type(data).__name__}",
                                   errors={"body": "send a JSON object ({...}), not a list or a single value"})
    _check_storable(data)
    return data


# What a body may hold beyond plain JSON syntax: everything the store writes and every response
# renders must survive a round trip through a UTF-8 database column and orjson, so NaN/Infinity
# (Python's json accepts them), integers beyond 64 bits, unpaired UTF-16 surrogate escapes
# ("\ud800"), NUL characters and absurd nesting are refused here with a 400, not a 500 later.
MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # published in the OpenAPI document


class _NotStorable(ValueError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _no_constant(text: str) -> Any:
    raise _NotStorable(f"{text} is not a JSON number", "send a finite number, or leave the field out")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotStorable(f"the number {text[:40]} is out of range", "send a finite number")
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _NotStorable(f"the integer {text[:40]}{'...' if len(text) > 40 else ''} does not fit in 64 bits",
                           "send a smaller number")
    return value


def _too_deep() -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(f"the body is nested more than {MAX_DEPTH} levels deep",
                             errors={"body": "a job definition is a few levels deep; send a flatter object"})


def _check_storable(data: dict[str, Any]) -> None:
    """Refuse NUL, unpaired surrogates (in keys or values) and deep nesting, naming the field."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, str):
            _check_text(value, where or "body")
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{where}.{key!a}" if where else f"{key!a}")
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:  # PostgreSQL text columns cannot hold NUL; no API field needs one
        raise errors.HTTPBadRequest(f"{where}: the text holds a NUL character (\\u0000)",
                                errors={where: "remove the NUL character"})
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.HTTPBadRequest(f"{where}: the text holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF)",
                                errors={where: "escape characters outside the BMP as a surrogate pair, "
                                               "or send the text as UTF-8"}) from None


def _too_large(limit: int) -> errors.HTTPPayloadTooLarge:
    return errors.HTTPPayloadTooLarge(f"the body is larger than {limit} bytes",
                                  errors={"body": "send a smaller body; a job definition is a few kilobytes"})


JsonBody = Annotated[dict[str, Any], Depends(json_body)]


MAX_OFFSET = 2**31 - 1  # the databases' OFFSET is 64-bit; anything past this is an empty page anyway


@dataclass(frozen=True, slots=True)
class Paging:
    offset: int
    limit: int


async def paging(settings: SettingsDep,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
                 limit: Annotated[int | None, Query(ge=1, le=1000, description="Page size (1-1000).")] = None,
                 ) -> Paging:
    """``offset``/``limit`` query parameters; the SDK omits both when it fetches everything."""
    return Paging(offset, min(limit or settings.default_page_size, settings.max_page_size))


PagingDep = Annotated[Paging, Depends(paging)]


def page_link(request: Request, limit: int) -> Callable[[int], str]:
    """``link(offset)``: the absolute URL of this request at another offset (for next/previous)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]

    def link(offset: int) -> str:
        return str(request.url.replace(query=urlencode([*kept, ("offset", str(offset)), ("limit", str(limit))])))

    return link


def api_root(request: Request) -> str:
    """``http://host:port/api/v2/`` as the client addressed us (for absolute links)."""
    return f"{request.base_url}api/v2/"
