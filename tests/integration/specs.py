"""Manifests for integration tests, written as YAML files like a user would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOYMENT = "5dc5b1015e6e762a6241f9aa"
CREDENTIAL = "5a8ac9ab07a57a0001be501f"
DATASTORE = "5a8ac9ab07a57a0001be5020"
PROJECT = "apiVersion: reconciler.io/v1alpha1\nkind: Project\nscope:\n  namePrefix: demo-\nprune:\n  maxDeleteFraction: 0.5\n"


def manifest(name: str, /, **spec: Any) -> dict[str, Any]:
    job = spec.pop("job", None) or {
        "deploymentId": DEPLOYMENT,
        "intakeSettings": {"type": "s3", "url": f"s3://bucket/{name}.csv", "credentialId": CREDENTIAL},
        "outputSettings": {"type": "jdbc", "dataStoreId": DATASTORE, "credentialId": CREDENTIAL,
                           "table": "scores", "statementType": "update", "updateColumns": ["score", "band"],
                           "whereColumns": ["id"]},
        "passthroughColumns": ["id", "customer"],
    }
    return {"apiVersion": "reconciler.io/v1alpha1", "kind": "BatchPredictionJobDefinition",
            "metadata": {"name": name}, "spec": {"batchPredictionJob": job, **spec}}


def write_specs(root: Path, docs: list[dict[str, Any]], *, project: str | None = PROJECT) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.yaml"):
        if old.name != "reconciler.yaml":
            old.unlink()
    if project is not None:
        (root / "reconciler.yaml").write_text(project)
    for doc in docs:
        (root / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def standard(n: int = 4) -> list[dict[str, Any]]:
    """A mix: scheduled, cron with names, secret reference, plain."""
    docs = [manifest(f"demo-{i}") for i in range(n)]
    docs[0]["spec"].update(enabled=True, schedule={"cron": "0 2 * * mon-fri"})
    docs[1]["spec"].update(enabled=False, schedule={"minute": [15], "hour": ["*"], "dayOfMonth": ["*"],
                                                    "month": ["jan", "jul"], "dayOfWeek": ["*"]})
    docs[1]["spec"]["batchPredictionJob"]["predictionInstance"] = {"hostName": "pred.example.com",
                                                                   "apiKeyFrom": {"env": "PRED_API_KEY"}}
    docs[2]["spec"]["name"] = "demo-Two EU"
    return docs
