"""Service configuration: one frozen value built by the CLI or a test, handed to ``create_app``.

Routes read it through the ``get_settings`` dependency, so a test can swap it with
``app.dependency_overrides[get_settings]`` instead of patching globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///.reconciler/local.db"
TOKEN_ENV = "RECONCILER_SERVICE_TOKEN"
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """``token=None`` means no authentication, which is only allowed on loopback (see ``cli``)."""

    db_url: str = DEFAULT_DB_URL
    token: str | None = field(default=None, repr=False)  # never in a repr, so never in a log line
    max_body_bytes: int = MAX_BODY_BYTES
    username: str = "local"
    full_name: str | None = "Local Service User"
    # The API picks the deployment's core count when numConcurrent is omitted; the local service has
    # no prediction servers, so it records this fixed value instead.
    default_num_concurrent: int = 1
    default_page_size: int = 100
    max_page_size: int = 1000


def read_token(*, token_file: Path | None = None, environ: dict[str, str] | None = None) -> str | None:
    """The token from ``--token-file`` (first line, stripped), else ``$RECONCILER_SERVICE_TOKEN``, else None."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        text = token_file.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty; write the token on its first line")
        return text.splitlines()[0].strip()
    value = env.get(TOKEN_ENV, "").strip()
    return value or None
