"""Shared fixtures: a served local service and a throwaway PostgreSQL (``reconciler.service.testing``).

``local_service`` is the root URL (``http://127.0.0.1:PORT``; the API is under ``/api/v2/``) of a
real uvicorn server on a temporary SQLite file, shared by the session: tests must not assume it
is empty. ``postgres_url`` is a fresh database on a session-wide PostgreSQL. When PostgreSQL
cannot start, PostgreSQL tests fail if ``CI=true`` and are skipped with the reason otherwise.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.service.testing import LocalServer, PostgresError, PostgresServer


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package's bytecode once, before the workers start. With PYTHONDONTWRITEBYTECODE
    set (as on the CI machines) every ``reconciler`` process the tests start would otherwise compile
    the whole package again: about a fifth of each command's start-up CPU, hundreds of times."""
    if not hasattr(config, "workerinput"):  # the xdist controller, or a run without xdist
        compileall.compile_dir(Path(__file__).resolve().parents[1] / "reconciler", quiet=1, workers=1)


# The slowest modules, measured (`pytest --durations=120`), longest first. They are scheduled
# before the rest: with `-n auto --dist load` the workers take tests in collection order, and a
# 40-second test collected last keeps one core busy while the other has nothing left to run
# (longest-first is the classic fix for that tail). Order only: every test still runs.
SLOW_FIRST = (
    "tests/service/test_fuzz.py",
    "tests/specs/test_properties.py",
    "tests/scaleout/test_replicas.py",
    "tests/integration/test_controls_readme.py",
    "tests/gitops/test_example_readme.py",
    "tests/operator/test_operator_scale.py",
    "tests/operator/test_operator_controls_e2e.py",
    "tests/integration/test_interruptions.py",
    "tests/scaleout/test_faults.py",
    "tests/specs/test_hostile_files.py",
    "tests/operator/test_operator_e2e.py",
    "tests/operator/test_operator_admission.py",
    "tests/observability/test_dashboard.py",
    "tests/specs/test_cron.py",
    "tests/service/test_serving.py",
    "tests/distribution/test_docker.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: place for place, module in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))  # stable: the rest keep their order


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A test marked ``fresh_process`` proves a fork path: reconciler forks only a process with one
    thread (a fork copies locks other threads hold), and an xdist worker runs execnet's thread, so
    there the test would pass without forking at all. In such a process it runs again, alone, in a
    pytest of its own (whose one thread forks), and passes or fails with it."""
    if pyfuncitem.get_closest_marker("fresh_process") is None or threading.active_count() == 1:
        return None
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "--no-header",
                           pyfuncitem.nodeid], cwd=root, capture_output=True, text=True, timeout=280,
                          env={**os.environ, "PYTHONPATH": str(root)})
    if done.returncode != 0:
        pytest.fail(f"{pyfuncitem.nodeid}, run in a process of its own, failed:\n{done.stdout[-6000:]}{done.stderr[-2000:]}",
                    pytrace=False)
    return True


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

