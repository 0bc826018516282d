"""Fixtures for the storage adapters: moto's standalone S3 server, Azurite and
gcp-storage-emulator on loopback (see ``emulators.py``), a real service store on a SQLite file (credentials, data stores, datasets live there), and helpers to register
those resources the way the routes do."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import datarobot as dr
import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids
from reconciler.service.records import ResourceRecord
from reconciler.service.runner.adapters.base import AdapterContext
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer

from .emulators import Azurite, GcsEmulator, azurite, gcs_emulator

USER = {"username": "t", "userId": "0" * 24, "fullName": None}
TOKEN = "e2e-storage-token-9d4e"
FEATURES = ["x1", "x2", "x3"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def boto(endpoint: str) -> Any:
    """A plain boto3 client for the test's own setup and checks."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture()
def bucket(s3_endpoint: str) -> str:
    name = f"b-{ids.new_id()}"
    boto(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/service.db")
    try:
        yield opened
    finally:
        opened.close()


def add_credential(store: Store, credential_type: str, **secret: Any) -> str:
    record = ResourceRecord(id=ids.new_id(), kind="credential", name=f"c-{ids.new_id()}",
                            body={"credentialType": credential_type}, created=ids.iso(ids.utcnow()), created_by=USER)
    store.create_credential(record, dict(secret))
    return record.id


def add_data_store(store: Store, url: str) -> str:
    record = ResourceRecord(id=ids.new_id(), kind="dataStore", name=f"d-{ids.new_id()}",
                            body={"type": "jdbc", "params": {"url": url}}, created=ids.iso(ids.utcnow()),
                            created_by=USER)
    store.create_resource(record)
    return record.id


def context(store: Store, *, chunk_rows: int = 1000, **csv: str) -> AdapterContext:
    settings = {"delimiter": ",", "quotechar": '"', "encoding": "utf-8", **csv}
    return AdapterContext(job_id=ids.new_id(), store=store, csv=settings, chunk_rows=chunk_rows)


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsEmulator]:
    with gcs_emulator() as server:
        yield server


@pytest.fixture()
def gcs_endpoint(gcs_server: GcsEmulator) -> Iterator[GcsEmulator]:
    """The emulator, with ``STORAGE_EMULATOR_HOST`` pointing at it for the test."""
    with gcs_server.environment():
        yield gcs_server


@pytest.fixture()
def container(azurite_server: Azurite) -> str:
    return azurite_server.create_container()


@pytest.fixture()
def gcs_bucket(gcs_server: GcsEmulator) -> str:
    return gcs_server.create_bucket()


def scoring_frame(n: int, seed: int) -> pd.DataFrame:
    """``row_id`` and three features, the input of the end-to-end scoring tests."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).round(4), columns=FEATURES)
    frame.insert(0, "row_id", [f"r{i:05d}" for i in range(n)])
    return frame


def check_scored(scored: pd.DataFrame, source: pd.DataFrame, model: LogisticRegression) -> None:
    assert scored["row_id"].tolist() == source["row_id"].tolist()
    expected = model.predict_proba(source[FEATURES])[:, 1]
    np.testing.assert_allclose(scored["label_1_PREDICTION"].astype(float), expected, atol=1e-6)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalServer, httpx.Client]]:
    """A served instance that runs jobs, with the SDK pointed at it. The test drives its own
    scheduler with a chosen clock; the served one is off."""
    with LocalServer(token=TOKEN, run_jobs=True, settings={"scheduler_interval": 0}) as server, \
            httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=60) as client:
        dr.Client(endpoint=server.url + "/api/v2", token=TOKEN)
        yield server, client


@pytest.fixture(scope="module")
def model_deployment(served: tuple[LocalServer, httpx.Client]) -> tuple[LogisticRegression, str]:
    """A binary LogisticRegression deployed on the served instance: (model, deployment id)."""
    _, client = served
    train = scoring_frame(300, seed=3)
    model = LogisticRegression().fit(train[FEATURES], (train["x1"] - train["x3"] > 0).astype(int))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    deployment_id = ids.new_id()
    response = client.put(f"deployments/{deployment_id}/model", content=buffer.getvalue(),
                          params={"label": "e2e", "targetName": "label"},
                          headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    return model, deployment_id
