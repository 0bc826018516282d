"""Serving the local service over HTTP with uvicorn, as functions the ``reconciler serve``
command (:mod:`reconciler.cli.serve`) calls: the bind check, the logging set-up, the run.

Without a token the service accepts anyone who can reach it, so it then binds to loopback only
and refuses any other host, saying why. The token itself is never printed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from reconciler.service.settings import KEEP_ALIVE_SECONDS, LOOPBACK_HOSTS, TOKEN_ENV

__all__ = ["check_bind", "configure_logging", "redacted_url", "run"]


def redacted_url(url: str) -> str:
    import sqlalchemy as sa

    from reconciler.service.store import normalize_url

    try:
        return sa.make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the store; never echo it raw
        return "<unparsable database URL>"


def check_bind(host: str, token: str | None) -> str | None:
    """Why serving on ``host`` is refused, or None."""
    if token is None and host not in LOOPBACK_HOSTS:
        return (f"refusing to listen on {host} without a token: anyone on the network could change job "
                f"definitions. Use --host 127.0.0.1, or set a token with --token-file FILE or ${TOKEN_ENV}")
    return None


def configure_logging(access_log: bool) -> None:
    """The service's log lines to stderr; the access log on or off."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service_log = logging.getLogger("reconciler.service")
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
    # a level, not ``disabled``: uvicorn's dictConfig (in uvicorn.Config) re-enables existing loggers
    logging.getLogger("reconciler.service.access").setLevel(logging.INFO if access_log else logging.CRITICAL + 1)


def run(application: Any, *, host: str, port: int) -> None:
    """Serve ``application`` (:func:`reconciler.service.app.create_app`) until stopped; the
    lifespan runs the scheduler and the job runner. The store is closed afterwards."""
    import uvicorn

    config = uvicorn.Config(application, host=host, port=port, access_log=False, log_level="info",
                            lifespan="on", timeout_graceful_shutdown=10, timeout_keep_alive=KEEP_ALIVE_SECONDS)
    uvicorn.Server(config).run()
    application.state.store.close()
