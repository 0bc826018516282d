"""Fixtures for the job runner: tiny models trained here, and a served instance that runs jobs.

The service is a real uvicorn server on 127.0.0.1 with the runner started (``run_jobs=True``),
driven by the official ``datarobot`` SDK; models are registered through the authenticated
``PUT deployments/{id}/model`` route with the joblib / ONNX bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datarobot as dr
import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from reconciler.service import ids
from reconciler.service.testing import LocalServer

TOKEN = "runner-test-token-7f3a"
FEATURES = ["x1", "x2", "x3"]


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).round(4), columns=FEATURES)
    frame.insert(0, "row_id", [f"r{i:05d}" for i in range(n)])
    return frame


@dataclass
class Models:
    binary: LogisticRegression
    multiclass: LogisticRegression
    regression: LinearRegression


@pytest.fixture(scope="session")
def models() -> Models:
    train = make_frame(400, seed=1)
    x = train[FEATURES]
    binary = LogisticRegression().fit(x, (x["x1"] + 0.5 * x["x2"] > 0).astype(int))
    labels = np.where(x["x1"] > 0.5, "high", np.where(x["x1"] < -0.5, "low", "mid"))
    multiclass = LogisticRegression(max_iter=500).fit(x, labels)
    regression = LinearRegression().fit(x, 3 * x["x1"] - x["x3"] + 1)
    return Models(binary, multiclass, regression)


def artifact(estimator: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN, run_jobs=True) as s:
        dr.Client(endpoint=s.url + "/api/v2", token=TOKEN)
        yield s


@pytest.fixture(scope="session")
def client(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=60) as c:
        yield c


def register(client: httpx.Client, data: bytes, **params: str) -> str:
    """A fresh deployment with this model; returns its id."""
    deployment_id = ids.new_id()
    response = client.put(f"deployments/{deployment_id}/model", content=data,
                          params={"label": f"dep-{deployment_id}", **params},
                          headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    return deployment_id


@pytest.fixture(scope="session")
def deployments(client: httpx.Client, models: Models) -> dict[str, str]:
    return {
        "binary": register(client, artifact(models.binary), targetName="label"),
        "multiclass": register(client, artifact(models.multiclass), targetName="level"),
        "regression": register(client, artifact(models.regression), targetName="y"),
    }
