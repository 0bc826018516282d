"""``reconciler serve``: the local service over HTTP with uvicorn.

Without a token the service accepts anyone who can reach it, so it then binds to loopback only
and refuses any other host, saying why. The token itself is never printed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.service.settings import DEFAULT_DB_URL, LOOPBACK_HOSTS, TOKEN_ENV, ServiceSettings, read_token


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


def _configure_logging(access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service_log = logging.getLogger("reconciler.service")
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
    logging.getLogger("reconciler.service.access").disabled = not access_log


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on; non-loopback needs a token.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
        db: Annotated[str, typer.Option(help="sqlite:///path.db or postgresql://user@host:port/db.")] = DEFAULT_DB_URL,
        token_file: Annotated[Path | None, typer.Option("--token-file", help=f"File holding the API token (else ${TOKEN_ENV}).",
                                                        exists=True, dir_okay=False, readable=True)] = None,
        access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="One log line per request.")] = True,
    ) -> None:
        """Serve the local job-definitions API (DataRobot-compatible) on HTTP; docs at /docs."""
        import uvicorn

        from reconciler.service.app import create_app

        try:
            token = read_token(token_file=token_file)
        except (OSError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        refusal = check_bind(host, token)
        if refusal:
            typer.echo(f"error: {refusal}", err=True)
            raise typer.Exit(1)
        _configure_logging(access_log)
        try:
            application = create_app(ServiceSettings(db_url=db, token=token))
        except Exception as exc:
            typer.echo(f"error: cannot open the database {redacted_url(db)}: {exc}\n"
                       "hint: check the URL, that the server is running, and that the directory is writable", err=True)
            raise typer.Exit(1) from None
        shown = f"[{host}]" if ":" in host else host
        auth = "token required" if token else "no token: loopback only"
        typer.echo(f"reconciler service on http://{shown}:{port}/api/v2/ ({auth}); database {redacted_url(db)}; "
                   f"docs at http://{shown}:{port}/docs", err=True)
        config = uvicorn.Config(application, host=host, port=port, access_log=False, log_level="info",
                                lifespan="off", timeout_graceful_shutdown=10)
        uvicorn.Server(config).run()
        application.state.store.close()
