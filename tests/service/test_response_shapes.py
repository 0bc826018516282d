"""One source for response shapes: a definition's is the contract's ``api-definition-response``
(the OpenAPI document refers to it; no pydantic copy), every rendered definition conforms to it
and uses only its fields; the keys never answered are the schemas' ``writeOnly`` ones."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.contract import keys, schemas
from reconciler.contract.validators import validator
from reconciler.service import models, render
from reconciler.service.app import create_app
from reconciler.service.records import DefinitionRecord
from reconciler.service.routes import resources
from reconciler.service.store import Store

USER = {"username": "u", "userId": "0" * 24, "fullName": None}
NOW = "2026-01-02T03:04:05.000000Z"
JOB: dict[str, Any] = {"deploymentId": "a" * 24, "numConcurrent": 1, "intakeSettings": {"type": "localFile"},
                       "outputSettings": {"type": "localFile"}}


def _record(**change: Any) -> DefinitionRecord:
    values: dict[str, Any] = {"id": "b" * 24, "name": "n", "enabled": False, "schedule": None, "job": JOB,
                              "created": NOW, "updated": NOW, "created_by": USER, "updated_by": USER}
    return DefinitionRecord(**{**values, **change})


SCHEDULE = {"minute": [0, 30], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": [1, 2]}
VARIED = [
    _record(),
    _record(enabled=True, schedule=SCHEDULE, last_started_job_status="COMPLETED", last_started_job_time=NOW,
            last_scheduled_run_time=NOW, last_successful_run_time=NOW),
    _record(schedule=SCHEDULE, last_started_job_status="FAILED", last_failed_run_time=NOW),
    _record(job={**JOB, "predictionInstance": {"hostName": "h", "apiKey": "k", "datarobotKey": "d"},
                 "passthroughColumnsSet": "all"}),
]


@pytest.mark.parametrize("record", VARIED)
def test_a_rendered_definition_is_the_contracts_response(record: DefinitionRecord) -> None:
    body = render.definition(record, now=datetime(2026, 1, 5, tzinfo=UTC))
    errors = [error.message for error in validator("api-definition-response").iter_errors(body)]
    assert errors == []
    assert set(body) <= set(schemas.get("api-definition-response")["properties"])
    assert not keys.write_only_instance_keys() & set(body["batchPredictionJob"].get("predictionInstance", {}))


def test_the_document_refers_to_the_contract_and_restates_nothing() -> None:
    assert not hasattr(models, "DefinitionOut") and not hasattr(models, "ScheduleOut")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/s.db")
        doc = create_app(store=store).openapi()
        store.close()
    ref = {"$ref": "#/components/schemas/ApiDefinitionResponse"}
    paths = doc["paths"]
    base, one = "/api/v2/batchPredictionJobDefinitions/", "/api/v2/batchPredictionJobDefinitions/{definition_id}/"

    def shape(operation: dict[str, Any], status: str) -> Any:
        return operation["responses"][status]["content"]["application/json"]["schema"]

    assert shape(paths[base]["post"], "202") == ref
    assert shape(paths[one]["get"], "200") == ref and shape(paths[one]["patch"], "200") == ref
    assert shape(paths[base]["get"], "200")["properties"]["data"]["items"] == ref
    component = doc["components"]["schemas"]["ApiDefinitionResponse"]
    assert component["required"] == schemas.get("api-definition-response")["required"]


def test_credential_secrets_are_the_request_schemas_write_only_fields() -> None:
    properties = resources.KINDS["credential"][2]["properties"]
    assert set(resources.SECRET_FIELDS) == {key for key, field in properties.items() if field.get("writeOnly")}
    assert {"user", "password", "awsSecretAccessKey", "gcpKey"} <= set(resources.SECRET_FIELDS)
    by_type = {key for fields in resources._SECRETS_BY_TYPE.values() for key in fields}
    assert by_type == set(resources.SECRET_FIELDS)  # every secret belongs to a type, every type's are secret
