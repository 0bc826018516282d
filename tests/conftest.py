"""Shared fixtures: a served local service and a throwaway PostgreSQL (``reconciler.service.testing``).

``local_service`` is the root URL (``http://127.0.0.1:PORT``; the API is under ``/api/v2/``) of a
real uvicorn server on a temporary SQLite file, shared by the session: tests must not assume it
is empty. ``postgres_url`` is a fresh database on a session-wide PostgreSQL. When PostgreSQL
cannot start, PostgreSQL tests fail if ``CI=true`` and are skipped with the reason otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reconciler.service.testing import LocalServer, PostgresError, PostgresServer


@pytest.fixture(scope="session")
def local_service() -> Iterator[str]:
    with LocalServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().__enter__()
    except (PostgresError, OSError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI but could not start: {exc}")
        pytest.skip(f"PostgreSQL could not start (set CI=true to make this an error): {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database of its own on the session's PostgreSQL."""
    return postgres_server.create_database()


# The suite runs on two processes (`-n auto --dist loadgroup` in pyproject's addopts, pytest-xdist).
# Tests go one by one to whichever process is free, except those sharing an expensive session
# fixture, which stay on one process so it is started once: the kube-apiserver (and etcd) of the
# operator tests, and the fuzzed server whose cases are many short tests.
_GROUPS = {"cluster": "kube-apiserver", "fuzz_server": "fuzzed-service"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for fixture, group in _GROUPS.items():
            if fixture in fixtures:
                item.add_marker(pytest.mark.xdist_group(group))
                break
