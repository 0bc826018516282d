"""The local job-definitions service: a DataRobot-compatible REST API over SQLite or PostgreSQL.

``create_app(ServiceSettings(db_url=...))`` gives the ASGI app (in-process through
``httpx.ASGITransport``, or served by ``reconciler serve``); ``store.Store`` is the database;
``schedule.next_run`` the pure next-run computation; ``testing`` runs real servers for tests.
"""

from __future__ import annotations

from reconciler.service.settings import ServiceSettings

__all__ = ["ServiceSettings"]
