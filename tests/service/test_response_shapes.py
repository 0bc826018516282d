"""One source for response shapes: each resource's is a contract schema (``api-*-response``: a
definition's, a job's, a deployment/credential/data store's, a dataset's, a deployment model's,
version, health, errors and the list envelope); the OpenAPI document refers to them (no pydantic copy), every rendered definition
conforms to its schema and uses only its fields, the served answers of every JSON route conform
to theirs, and the keys never answered are the schemas' ``writeOnly`` ones."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from reconciler.contract import keys, schemas
from reconciler.contract.validators import validator
from reconciler.service import render
from reconciler.service.app import create_app
from reconciler.service.records import DefinitionRecord
from reconciler.service.routes import resources
from reconciler.service.store import Store

from .helpers import body, refs

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
    assert importlib.util.find_spec("reconciler.service.models") is None  # no second copy of the shapes
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


def _conforms(name: str, answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    data: dict[str, Any] = answer.json()
    assert [error.message for error in validator(name).iter_errors(data)] == [], (name, data)
    return data


def _page(item: str, answer: httpx.Response) -> list[dict[str, Any]]:
    page = _conforms("api-list-response", answer, 200)
    assert page["data"], "a page with items, so that their shape is checked too"
    for entry in page["data"]:
        assert [error.message for error in validator(item).iter_errors(entry)] == [], (item, entry)
    items: list[dict[str, Any]] = page["data"]
    return items


@pytest.fixture(scope="module")
def client(local_service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_service + "/api/v2/", follow_redirects=False, timeout=30) as c:
        yield c


def test_served_answers_conform_to_the_contracts_response_schemas(client: httpx.Client, local_service: str) -> None:
    """Every JSON route of jobs, resources, definitions, version and health, and the errors, as
    uvicorn serves them, against the schema the OpenAPI document names for them."""
    _conforms("api-version-response", client.get("version/"), 200)
    _conforms("api-health-response", httpx.get(local_service + "/healthz", timeout=30), 200)
    ids = refs(client)
    for path, key in (("deployments/", "deploymentId"), ("credentials/", "credentialId"),
                      ("externalDataStores/", "dataStoreId")):
        _conforms("api-resource-response", client.get(f"{path}{ids[key]}/"), 200)
        _page("api-resource-response", client.get(path))
    _conforms("api-resource-response", client.post("deployments/", json={"label": "shapes"}), 201)
    made = _conforms("api-definition-response", client.post("batchPredictionJobDefinitions/", json=body(ids)), 202)
    _page("api-definition-response", client.get("batchPredictionJobDefinitions/"))
    local = {"deploymentId": ids["deploymentId"], "intakeSettings": {"type": "localFile"},
             "outputSettings": {"type": "localFile"}}
    job = _conforms("api-job-response", client.post("batchPredictions/", json=local), 202)
    assert "csvUpload" in job["links"]  # a localFile job waits for its data
    _conforms("api-job-response", client.get(f"batchPredictions/{job['id']}/"), 200)
    run = _conforms("api-job-response", client.post("batchPredictions/fromJobDefinition/",
                                                     json={"jobDefinitionId": made["id"]}), 202)
    assert run["batchPredictionJobDefinition"]["id"] == made["id"]
    _conforms("api-job-response", client.post("batchPredictions/fromExisting/", json={"predictionJobId": run["id"]}),
              202)
    _page("api-job-response", client.get("batchPredictions/"))
    missing = _conforms("api-error-response", client.get(f"batchPredictions/{'f' * 24}/"), 404)
    assert missing["message"]
    invalid = _conforms("api-error-response", client.post("batchPredictions/", json={**local, "numConcurrent": "x"}),
                        422)
    assert invalid["errors"]


def test_served_datasets_and_models_conform_to_their_response_schemas(client: httpx.Client) -> None:
    """The AI Catalog slice (an upload as the SDK sends it, then GET and list) and a deployment's
    model (PUT the artifact, then GET), as uvicorn serves them."""
    import io

    import joblib
    from sklearn.linear_model import LinearRegression

    upload = client.post("datasets/fromFile/", files={"file": ("shapes.csv", b"a,b\n1,2\n3,4\n", "text/csv")})
    assert upload.status_code == 202, upload.text
    dataset = _conforms("api-dataset-response", client.get(f"datasets/{upload.json()['catalogId']}/"), 200)
    assert (dataset["rowCount"], dataset["columns"]) == (2, ["a", "b"])
    _page("api-dataset-response", client.get("datasets/"))
    buffer = io.BytesIO()
    joblib.dump(LinearRegression().fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [0.0, 1.0, 3.0]), buffer)
    deployment = client.post("deployments/", json={"label": "shapes-model"}).json()["id"]
    put = _conforms("api-model-response", client.put(f"deployments/{deployment}/model", content=buffer.getvalue(),
                                                     params={"featureNames": "a,b"}), 200)
    assert put["kind"] == "joblib" and put["targetType"] == "regression" and put["featureNames"] == ["a", "b"]
    assert _conforms("api-model-response", client.get(f"deployments/{deployment}/model"), 200) == put


def test_an_untrusted_model_registration_is_a_documented_403(tmp_path: Any) -> None:
    """Without a token, a PUT of a model from off this machine is refused (an artifact is code):
    403 in the error shape, and the document lists 403 for that route."""
    import asyncio

    store = Store(f"sqlite:///{tmp_path}/s.db")
    app = create_app(store=store)

    async def put() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.put(f"/api/v2/deployments/{'a' * 24}/model", content=b"\x80 not checked")

    try:
        refused = _conforms("api-error-response", asyncio.run(put()), 403)
        assert "needs a token" in refused["message"] and "Authorization" in refused["errors"]
        put_doc = app.openapi()["paths"]["/api/v2/deployments/{deployment_id}/model"]["put"]["responses"]["403"]
        assert put_doc["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiErrorResponse"}
    finally:
        store.close()


def test_the_document_names_a_contract_schema_for_every_json_answer() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/s.db")
        doc = create_app(store=store).openapi()
        store.close()

    def schema(path: str, method: str, status: str) -> Any:
        return doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]

    def ref(component: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{component}"}

    api = "/api/v2/"
    assert schema(f"{api}version/", "get", "200") == ref("ApiVersionResponse")
    assert schema("/healthz", "get", "200") == ref("ApiHealthResponse")
    for path, status in (("batchPredictions/", "202"), ("batchPredictions/fromExisting/", "202"),
                         ("batchPredictions/fromJobDefinition/", "202")):
        assert schema(api + path, "post", status) == ref("ApiJobResponse")
    assert schema(api + "batchPredictions/{job_id}/", "get", "200") == ref("ApiJobResponse")
    for path in ("deployments/", "credentials/", "externalDataStores/"):
        assert schema(api + path, "post", "201") == ref("ApiResourceResponse")
        assert schema(api + path + "{resource_id}/", "get", "200") == ref("ApiResourceResponse")
    for path, item in (("batchPredictions/", "ApiJobResponse"), ("deployments/", "ApiResourceResponse"),
                       ("batchPredictionJobDefinitions/", "ApiDefinitionResponse"),
                       ("datasets/", "ApiDatasetResponse")):
        page = schema(api + path, "get", "200")
        assert page["required"] == schemas.get("api-list-response")["required"]
        assert page["properties"]["data"]["items"] == ref(item)
    assert schema(api + "datasets/{dataset_id}/", "get", "200") == ref("ApiDatasetResponse")
    model = api + "deployments/{deployment_id}/model"
    assert schema(model, "get", "200") == ref("ApiModelResponse") == schema(model, "put", "200")
    assert schema(api + "batchPredictions/", "post", "422") == ref("ApiErrorResponse")
    for component, short in (("ApiJobResponse", "api-job-response"), ("ApiErrorResponse", "api-error-response"),
                             ("ApiDatasetResponse", "api-dataset-response"), ("ApiModelResponse", "api-model-response")):
        assert doc["components"]["schemas"][component]["required"] == schemas.get(short)["required"]
