"""Small builders shared by the service tests: resources a definition can refer to, and bodies."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def unique(prefix: str = "def") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def refs(client: httpx.Client) -> dict[str, str]:
    """A deployment, a credential and a data store, freshly created."""
    out = {}
    for key, path, body in (("deploymentId", "deployments/", {"label": unique("dep")}),
                            ("credentialId", "credentials/", {"name": unique("cred"), "credentialType": "s3"}),
                            ("dataStoreId", "externalDataStores/", {"canonicalName": unique("ds")})):
        response = client.post(path, json=body)
        assert response.status_code == 201, response.text
        out[key] = response.json()["id"]
    return out


def body(ids: dict[str, str], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": unique(),
        "deploymentId": ids["deploymentId"],
        "intakeSettings": {"type": "s3", "url": "s3://bucket/in.csv", "credentialId": ids["credentialId"]},
        "outputSettings": {"type": "jdbc", "dataStoreId": ids["dataStoreId"], "table": "scores",
                           "statementType": "insert"},
    }
    out.update(extra)
    return out


SCHEDULE = {"minute": [0], "hour": [2], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["mon", "Friday"]}
