"""Where a jdbc data store is and how to log in: its URL for SQLAlchemy, its engine, libpq's
connection string for ADBC, and the login checks done when a job is created."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reconciler.service import errors
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.adapters.objectstore import credential_secret
from reconciler.service.store import normalize_url

_JDBC = re.compile(r"^jdbc:(?P<kind>postgresql|sqlite):(?P<rest>.*)$")


def sqlalchemy_url(params: Mapping[str, Any]) -> str:
    """The data store's URL as SQLAlchemy understands it (``url`` as is, ``jdbcUrl`` translated)."""
    url = params.get("url")
    if isinstance(url, str) and url:
        return normalize_url(url)
    jdbc = params.get("jdbcUrl")
    match = _JDBC.match(jdbc) if isinstance(jdbc, str) else None
    if match is None:
        raise AdapterError("the data store has no usable connection: set params.url to a SQLAlchemy URL "
                           "(sqlite:///path.db, postgresql://host:port/db) or params.jdbcUrl to "
                           "jdbc:postgresql://host:port/db or jdbc:sqlite:/path.db")
    rest = match["rest"]
    if match["kind"] == "sqlite":
        return f"sqlite:///{rest}"
    return normalize_url("postgresql:" + rest)


def _target(settings: Mapping[str, Any], ctx: AdapterContext) -> tuple[sa.URL, dict[str, str]]:
    """The settings' data store as a SQLAlchemy URL, and the login of its basic credential if any.

    The login goes to the driver as connection arguments, never into the URL: a password may
    hold any character, and a URL that cannot take a login (SQLite's) must not be given one."""
    store_id = settings.get("dataStoreId")
    if not store_id:
        raise AdapterError("jdbc needs dataStoreId: the id of an externalDataStores entry holding the URL")
    try:
        data_store = ctx.store.get_resource("dataStore", str(store_id))
    except errors.HTTPProblem as exc:
        raise AdapterError(f"dataStoreId {store_id}: {exc.message}") from None
    url = sa.make_url(sqlalchemy_url(data_store.body.get("params") or {}))
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise AdapterError(f"the local service reaches sqlite and postgresql databases only, not {url.drivername!r}")
    login: dict[str, str] = {}
    credential_id = settings.get("credentialId")
    if credential_id:
        secret = credential_secret(ctx, str(credential_id))
        login = {key: str(secret[key]) for key in ("user", "password") if secret.get(key)}
    if login and url.get_backend_name() == "sqlite":
        raise AdapterError(_sqlite_login(str(credential_id), str(store_id)))
    return url, login


def engine_for(settings: Mapping[str, Any], ctx: AdapterContext) -> Engine:
    """An engine for the settings' data store, logged in with its basic credential if any."""
    url, login = _target(settings, ctx)
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=login)


def _conninfo(url: sa.URL, login: Mapping[str, str]) -> str:
    """libpq's ``key=value`` connection string for ``url`` and ``login`` (quoted by psycopg, so a
    password may hold any character): how ADBC's PostgreSQL driver is told where to connect."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {key: str(value) for key, value in url.query.items()}
    params.update({key: str(value) for key, value in
                   url.translate_connect_args(username="user", database="dbname").items()})
    params.update(login)
    return make_conninfo("", **params)


def _sqlite_login(credential_id: str, store_id: str) -> str:
    return (f"credential {credential_id} holds a login (user/password), but data store {store_id} is a SQLite "
            "file, which has no logins; remove credentialId from these settings, or point the data store at "
            "a database that takes one (postgresql://host:port/db)")


def login_problems(spec: Mapping[str, Any], store: Any) -> dict[str, str]:
    """``{field: why}`` for each jdbc side of a job spec whose credential's login its data store cannot
    use (a SQLite file takes none): checked when a job is created, so it is refused with the reason
    instead of failing when it runs. Missing references are reported elsewhere (404)."""
    found: dict[str, str] = {}
    for side in ("intakeSettings", "outputSettings"):
        settings = spec.get(side)
        if not isinstance(settings, Mapping) or settings.get("type") != "jdbc":
            continue
        store_id, credential_id = settings.get("dataStoreId"), settings.get("credentialId")
        if not store_id or not credential_id:
            continue
        try:
            params = store.get_resource("dataStore", str(store_id)).body.get("params") or {}
            secret = store.get_credential_secret(str(credential_id))
            backend = sa.make_url(sqlalchemy_url(params)).get_backend_name()
        except (errors.HTTPProblem, AdapterError, sa.exc.ArgumentError):
            continue
        if backend == "sqlite" and (secret.get("user") or secret.get("password")):
            found[f"{side}.credentialId"] = _sqlite_login(str(credential_id), str(store_id))
    return found


def _table(settings: Mapping[str, Any]) -> sa.TableClause:
    name = settings.get("table")
    if not isinstance(name, str) or not name:
        raise AdapterError("jdbc needs table (or, for intake, query)")
    return sa.table(name, schema=settings.get("schema") or None)


def _fail(action: str, exc: sa.exc.SQLAlchemyError) -> AdapterError:
    """The driver's message without the SQL text and parameters (which may carry data)."""
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()[0]
    return AdapterError(f"jdbc {action} failed: {detail}")

