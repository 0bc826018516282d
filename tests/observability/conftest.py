"""A real ``reconciler serve`` (a child process on 127.0.0.1, running jobs) with seeded definitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.service.testing import LocalServer

from .seed import TOKEN, Seeded, seed


@pytest.fixture(scope="package")  # one server for the metrics and the dashboard tests (its setup is the slow part)
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, httpx.Client, Seeded]]:
    tmp = tmp_path_factory.mktemp("served")
    with LocalServer(db_url=f"sqlite:///{tmp}/service.db", token=TOKEN, separate_process=True, run_jobs=True,
                     serve_args=("--scheduler-interval", "0")) as server, \
            httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=60) as api:
        yield server, api, seed(api, Path(tmp))
