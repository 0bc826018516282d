"""One router per resource; :data:`api_router` gathers them under ``/api/v2``.

Every route answers both with and without the trailing slash, directly: the SDK PATCHes without
a slash, Terraform with one, and Terraform's client fails on any redirect, so the app never
redirects (``redirect_slashes=False``) and only the documented form appears in the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.convertors import Convertor, register_url_convertor


class Hex24(Convertor[str]):
    """``{job_id:hex24}``: an id segment is 24 hex digits, so ``batchPredictions/fromExisting/`` is
    never read as the job ``fromExisting`` (whose GET would be a 404 instead of the 405 that says
    which methods the path takes)."""

    regex = "[0-9a-fA-F]{24}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("hex24", Hex24())


def route(router: APIRouter, path: str, endpoint: Callable[..., Any], *, methods: list[str], **kwargs: Any) -> None:
    """Register ``path`` and its twin with/without the trailing slash (the twin undocumented)."""
    router.add_api_route(path, endpoint, methods=methods, **kwargs)
    twin = path[:-1] if path.endswith("/") else path + "/"
    hidden = {k: v for k, v in kwargs.items() if k not in ("operation_id",)}
    hidden["include_in_schema"] = False
    router.add_api_route(twin, endpoint, methods=methods, **hidden)
