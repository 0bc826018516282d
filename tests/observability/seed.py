"""A served local service with definitions that really run: a scikit-learn model behind a
deployment, a SQLite table to read and one to write (jdbc), and definitions on crowded schedules.

Shared by the metrics and dashboard tests; everything goes through the public API."""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids

TOKEN = "dashboard-test-token-5d1c"
FEATURES = ("x1", "x2", "x3")


@dataclass
class Seeded:
    deployment_id: str
    source_store: str
    warehouse_store: str
    warehouse_url: str
    rows: int
    quick_id: str = ""
    waiting_id: str = ""
    hourly_id: str = ""
    crowd: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # id -> name


def _model() -> bytes:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=list(FEATURES))  # column names: the service needs them
    model = LogisticRegression().fit(x, (x["x1"] - x["x3"] > 0).astype(int))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _source(path: Path, rows: int) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(size=(rows, 3)).round(4)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (row_id TEXT, x1 REAL, x2 REAL, x3 REAL)")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                         [(f"c{i:06d}", *map(float, values[i])) for i in range(rows)])


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def seed(api: httpx.Client, tmp: Path, *, rows: int = 2000, crowd: int = 40) -> Seeded:
    """``api`` has the API root as base URL and the token. Creates the deployment's model, two
    data stores and the definitions: ``churn-nightly`` (runs jdbc -> jdbc), ``manual-upload``
    (disabled, localFile intake: its runs wait for an upload, so they can be aborted),
    ``hourly-refresh`` and ``crowd`` ``nightly-batch-NN`` definitions all at 02:00 on Mondays."""
    deployment_id = ids.new_id()
    _created(api.put(f"deployments/{deployment_id}/model", content=_model(),
                     params={"label": "churn-model", "targetName": "churned"},
                     headers={"Content-Type": "application/octet-stream"}))
    _source(tmp / "source.db", rows)
    warehouse_url = f"sqlite:///{tmp}/warehouse.db"
    source = _created(api.post("externalDataStores/", json={"canonicalName": "customers",
                                                            "params": {"url": f"sqlite:///{tmp}/source.db"}}))
    warehouse = _created(api.post("externalDataStores/", json={"canonicalName": "warehouse",
                                                               "params": {"url": warehouse_url}}))
    seeded = Seeded(deployment_id=deployment_id, source_store=source["id"], warehouse_store=warehouse["id"],
                    warehouse_url=warehouse_url, rows=rows)

    def job(table: str) -> dict[str, Any]:
        return {"deploymentId": deployment_id, "passthroughColumns": ["row_id"],
                "intakeSettings": {"type": "jdbc", "dataStoreId": seeded.source_store, "table": "customers"},
                "outputSettings": {"type": "jdbc", "dataStoreId": seeded.warehouse_store, "table": table,
                                   "statementType": "insert", "createTableIfNotExists": True}}

    def define(name: str, cron: dict[str, list[Any]] | None, body: dict[str, Any], *, enabled: bool = True) -> str:
        payload: dict[str, Any] = {"name": name, "enabled": enabled, **body}
        if cron is not None:
            payload["schedule"] = cron
        made = _created(api.post("batchPredictionJobDefinitions/", json=payload))
        seeded.names[made["id"]] = name
        return str(made["id"])

    def lists(minute: int | str, hour: int | str, dow: int | str = "*") -> dict[str, list[Any]]:
        return {"minute": [minute], "hour": [hour], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": [dow]}

    seeded.quick_id = define("churn-nightly", lists(0, 2), job("churn_scores"))
    seeded.hourly_id = define("hourly-refresh", lists(15, "*"), job("hourly_scores"))
    seeded.waiting_id = define("manual-upload", None, {
        "deploymentId": deployment_id, "intakeSettings": {"type": "localFile"},
        "outputSettings": {"type": "localFile"}}, enabled=False)
    seeded.crowd = [define(f"nightly-batch-{i:02d}", lists(0, 2, 1), job(f"batch_{i:02d}")) for i in range(crowd)]
    return seeded
