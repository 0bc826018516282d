"""Integration fixtures: the local service served by uvicorn on 127.0.0.1 (a fresh SQLite file
per test), with the resources the test manifests reference already created."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.service.testing import LocalServer

from .specs import CREDENTIAL, DATASTORE, DEPLOYMENT

TOKEN = "itest-TOKEN-7f3a9c51e2"


def seed(api_url: str, token: str | None) -> None:
    headers = {"Authorization": f"Token {token}"} if token else {}
    with httpx.Client(base_url=api_url, headers=headers) as c:
        for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "dep"}),
                           ("credentials/", {"id": CREDENTIAL, "name": "cred"}),
                           ("externalDataStores/", {"id": DATASTORE, "canonicalName": "store"})):
            c.post(path, json=body).raise_for_status()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN) as s:
        seed(s.api_url, TOKEN)
        yield s
