"""Storage for the local service: SQLAlchemy Core over SQLite (default) or PostgreSQL.

The only package that talks SQL; everything it returns is a plain record (``records.py``).
``tables`` declares the tables once, ``migrations`` brings any older database to them, and each
aggregate's queries live in a module of their own; :class:`Store` joins them into the one object
the routes, the scheduler and the runner are given.
"""

from __future__ import annotations

from reconciler.service.store.database import normalize_url
from reconciler.service.store.datasets import Datasets
from reconciler.service.store.definitions import Definitions
from reconciler.service.store.jobs import Jobs
from reconciler.service.store.migrations import SCHEMA_VERSION
from reconciler.service.store.models import Models
from reconciler.service.store.resources import Resources

__all__ = ["SCHEMA_VERSION", "Store", "normalize_url"]


class Store(Definitions, Jobs, Resources, Datasets, Models):
    """One database and every aggregate's queries over it. Thread-safe: each call checks a
    connection out of the pool."""
