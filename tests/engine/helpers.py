"""Builders for engine tests: manifests and live API items as plain data."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.engine.normalize import desired_from_manifest, live_from_api
from reconciler.engine.types import Desired, Live
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest

DEPLOYMENT = "5dc5b1015e6e762a6241f9aa"
CREDENTIAL = "5a8ac9ab07a57a0001be501f"
DATASTORE = "5a8ac9ab07a57a0001be5020"


def manifest_data(name: str, /, **spec: Any) -> dict[str, Any]:
    job = spec.pop("job", None) or {
        "deploymentId": DEPLOYMENT,
        "intakeSettings": {"type": "s3", "url": f"s3://bucket/{name}.csv", "credentialId": CREDENTIAL},
        "outputSettings": {"type": "jdbc", "dataStoreId": DATASTORE, "table": "scores", "statementType": "insert"},
    }
    return {"apiVersion": "reconciler.io/v1alpha1", "kind": "BatchPredictionJobDefinition",
            "metadata": {"name": name}, "spec": {"batchPredictionJob": job, **spec}}


def desired(name: str, /, **spec: Any) -> Desired:
    doc = LoadedDocument(file=f"specs/{name}.yaml", index=0, data=manifest_data(name, **spec), line=1, col=1)
    return desired_from_manifest(Manifest.from_document(doc))


def api_item(d: Desired, *, id_: str, **overrides: Any) -> dict[str, Any]:
    """What the API would answer for ``d`` after a create: job nested, defaults and read-only fields."""
    body = copy.deepcopy(d.body)
    top = {k: body.pop(k) for k in ("name", "enabled", "schedule") if k in body}
    instance = body.get("predictionInstance")
    if isinstance(instance, dict):
        body["predictionInstance"] = {k: v for k, v in instance.items() if not k.endswith("From")}
    body.setdefault("numConcurrent", 4)
    item = {"id": id_, **top, "batchPredictionJob": body, "created": "2026-01-01T00:00:00.000000Z",
            "updated": "2026-01-01T00:00:00.000000Z", "createdBy": {"username": "u", "userId": "1", "fullName": None},
            "updatedBy": {"username": "u", "userId": "1", "fullName": None}, "lastStartedJobStatus": None,
            "lastStartedJobTime": None, "lastFailedRunTime": "1900-01-01T00:00:00.000000Z",
            "lastSuccessfulRunTime": "1900-01-01T00:00:00.000000Z",
            "lastScheduledRunTime": "1900-01-01T00:00:00.000000Z", "nextScheduledRunTime": None}
    item.update(overrides)
    return item


def live(d: Desired, *, id_: str, **overrides: Any) -> Live:
    return live_from_api(api_item(d, id_=id_, **overrides))
