"""Reading a dashboard form: ``application/x-www-form-urlencoded``, bounded, every field once.

Why not FastAPI's ``Form``: it needs python-multipart for a handful of short fields; the standard
library parses these, and the size limit and the refusal of repeated fields are stated here.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from fastapi import Request

__all__ = ["MAX_FORM_BYTES", "FormError", "read_form"]

MAX_FORM_BYTES: Final = 8 * 1024  # a login token, a CSRF token and a path fit many times over
MAX_FIELDS: Final = 16


class FormError(ValueError):
    """The body is not a form this dashboard sends; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FormError(f"expected a form (application/x-www-form-urlencoded), got {media or 'no content type'}", 415)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES} bytes", 413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"the form cannot be read: {exc}") from None
    found: dict[str, str] = {}
    for key, value in pairs:
        if key in found:
            raise FormError(f"the form sends {key!r} twice")
        found[key] = value
    return found
