"""What the OpenAPI document promises is what the server enforces (issue #11 section 5): query
parameters within published limits, create and update bodies with their own schemas, 405 with
an ``Allow`` that lists the path's methods, and names without control characters. Over real
HTTP against the session's served instance (SQLite, whose LIKE refuses long patterns)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .helpers import body, refs

BIDI_AND_CONTROL = ["zz\nNo changes. Live definitions match the manifests.\n", "evil\u202ename", "tab\there",
                    "esc\x1b[31m", "del\x7f", "c1\x85", "iso\u2066late\u2069", "end\n"]


@pytest.fixture(scope="module")
def client(local_service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_service + "/api/v2/", timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def document(local_service: str) -> dict[str, Any]:
    return dict(httpx.get(local_service + "/openapi.json").json())


def _parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    """The parameter's schema; of an optional one (``anyOf: [X, null]``), X."""
    for parameter in document["paths"]["/api/v2/" + path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema = parameter["schema"]
            return dict(next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema))
    raise AssertionError(f"{path} documents no parameter {name}")


def test_a_search_longer_than_any_name_is_422_not_500(client: httpx.Client, document: dict[str, Any]) -> None:
    response = client.get("batchPredictionJobDefinitions/", params={"searchName": "a" * 49_999})
    assert response.status_code == 422, response.text
    assert "searchName" in response.json()["errors"] and "searchName" in response.json()["message"]
    limit = _parameter(document, "batchPredictionJobDefinitions/", "searchName")["maxLength"]
    assert limit == 100
    assert client.get("batchPredictionJobDefinitions/", params={"searchName": "a" * limit}).status_code == 200
    assert client.get("batchPredictionJobDefinitions/", params={"searchName": "a" * (limit + 1)}).status_code == 422


@pytest.mark.parametrize(("path", "params", "named"), [
    ("batchPredictionJobDefinitions/", {"deploymentId": "not-an-id"}, "deploymentId"),
    ("batchPredictionJobDefinitions/", {"offset": 2**31}, "offset"),
    ("batchPredictionJobDefinitions/", {"limit": 0}, "limit"),
    ("batchPredictions/", {"status": ["RUNNING", "SLEEPING"]}, "status"),
    ("batchPredictions/", {"batchPredictionJobDefinitionId": "x" * 5000}, "batchPredictionJobDefinitionId"),
    ("batchPredictions/", {"deploymentId": "0" * 25}, "deploymentId"),
    ("deployments/", {"limit": 1001}, "limit"),
    ("credentials/", {"offset": -1}, "offset"),
    ("externalDataStores/", {"limit": "many"}, "limit"),
    ("deployments/", {"search": "x" * 256}, "search"),
    ("externalDataStores/", {"name": "x" * 256}, "name"),
    ("externalDataStores/", {"type": "mongo"}, "type"),
    ("datasets/", {"offset": 10**20}, "offset"),
])
def test_every_list_route_caps_its_parameters_with_a_422_naming_them(
        client: httpx.Client, path: str, params: dict[str, Any], named: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert list(response.json()["errors"]) == [named]


def test_the_document_publishes_the_enforced_limits(document: dict[str, Any]) -> None:
    status = _parameter(document, "batchPredictions/", "status")
    assert document["components"]["schemas"]["JobStatus"]["enum"] == [
        "INITIALIZING", "RUNNING", "COMPLETED", "ABORTED", "FAILED"]
    assert status["items"] == {"$ref": "#/components/schemas/JobStatus"} and status["maxItems"] == 5
    assert _parameter(document, "batchPredictions/", "deploymentId")["pattern"] == "^[0-9a-fA-F]{24}$"
    assert _parameter(document, "deployments/", "limit")["maximum"] == 1000
    # what json_body refuses before any schema: NUL in strings, integers beyond 64 bits
    job = document["components"]["schemas"]["JobSpecFields"]["properties"]
    assert job["numConcurrent"]["maximum"] == 2**63 - 1
    assert job["modelPackageId"]["pattern"] == "^[0-9a-fA-F]{24}$"
    assert document["components"]["schemas"]["IntakeS3"]["properties"]["url"]["pattern"] == "^s3://[^\\x00]*$"


def test_create_and_update_have_their_own_schemas(client: httpx.Client, document: dict[str, Any]) -> None:
    path = document["paths"]["/api/v2/batchPredictionJobDefinitions/"]["post"]
    create_ref = path["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    patch = document["paths"]["/api/v2/batchPredictionJobDefinitions/{definition_id}/"]["patch"]
    update_ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    components = document["components"]["schemas"]
    create, update = components[create_ref.rsplit("/", 1)[1]], components[update_ref.rsplit("/", 1)[1]]
    assert {"required": ["deploymentId", "intakeSettings"]} in create["allOf"]
    assert any(part.get("then") == {"required": ["schedule"]} for part in create["allOf"])
    assert "required" not in update and "allOf" not in update
    # as the server answers: {} is no definition, but a fine change (nothing changes)
    assert client.post("batchPredictionJobDefinitions/", json={}).status_code == 422
    made = client.post("batchPredictionJobDefinitions/", json=body(refs(client)))
    assert made.status_code == 202, made.text
    assert client.patch(f"batchPredictionJobDefinitions/{made.json()['id']}", json={}).status_code == 200


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "batchPredictionJobDefinitions/", "GET, POST"),
    ("OPTIONS", "batchPredictionJobDefinitions/", "GET, POST"),
    ("POST", "batchPredictionJobDefinitions/0123456789abcdef01234567/", "GET, PATCH, DELETE"),
    ("PUT", "batchPredictionJobDefinitions/0123456789abcdef01234567", "GET, PATCH, DELETE"),
    ("GET", "batchPredictions/fromExisting/", "POST"),
    ("GET", "batchPredictions/fromJobDefinition/", "POST"),
    ("PATCH", "batchPredictions/", "GET, POST"),
    ("GET", "datasets/fromFile/", "POST"),
    ("POST", "deployments/0123456789abcdef01234567/", "GET, DELETE"),
    ("DELETE", "deployments/0123456789abcdef01234567/model", "PUT, GET"),
])
def test_405_allow_lists_every_method_of_the_path(client: httpx.Client, method: str, path: str,
                                                   allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert sorted(response.headers["allow"].split(", ")) == sorted(allowed.split(", "))
    assert allowed.split(", ")[0] in response.json()["message"]


@pytest.mark.parametrize("name", BIDI_AND_CONTROL)
def test_names_with_control_or_bidi_characters_are_422_naming_the_field(client: httpx.Client, name: str) -> None:
    ids = refs(client)
    response = client.post("batchPredictionJobDefinitions/", json=body(ids, name=name))
    assert response.status_code == 422, response.text
    assert "control characters" in response.json()["errors"]["name"]
    made = client.post("batchPredictionJobDefinitions/", json=body(ids))
    renamed = client.patch(f"batchPredictionJobDefinitions/{made.json()['id']}", json={"name": name})
    assert renamed.status_code == 422 and "name" in renamed.json()["errors"]
    listed = client.get("batchPredictionJobDefinitions/", params={"limit": 1000}).json()["data"]
    assert name not in [item["name"] for item in listed]


def test_other_unicode_in_names_is_kept(client: httpx.Client) -> None:
    name = "Прогноз 予測 – ünïcode ✓ (x86)"
    made = client.post("batchPredictionJobDefinitions/", json=body(refs(client), name=name))
    assert made.status_code == 202 and made.json()["name"] == name


def _provider_body(deployment_id: str, name: str) -> dict[str, Any]:
    """A body as the DataRobot Terraform provider marshals it (internal/client/
    batch_prediction_service.go, buildRequest): its struct order, omitempty pointers, its spelling
    ``maxNGramExplanations`` and the localFile paths ``intakeSettings.file``/``outputSettings.path``."""
    return {
        "enabled": False, "name": name, "deploymentId": deployment_id, "abortOnError": True,
        "csvSettings": {"delimiter": ",", "encoding": "utf-8", "quotechar": '"'},
        "explanationAlgorithm": "xemp", "includePredictionStatus": False, "includeProbabilities": True,
        "intakeSettings": {"type": "localFile", "file": "./data/to-score.csv"},
        "maxExplanations": 0, "maxNGramExplanations": 0,
        "outputSettings": {"type": "localFile", "path": "./data/scored.csv"},
        "predictionWarningEnabled": False, "skipDriftTracking": False,
    }


def test_the_terraform_providers_body_is_accepted_and_stored_in_the_canonical_form(client: httpx.Client) -> None:
    deployment = client.post("deployments/", json={"label": "tf-dep"}).json()["id"]
    body = _provider_body(deployment, "tf-provider-shape")
    made = client.post("batchPredictionJobDefinitions/", content=json.dumps(body),
                       headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert made.status_code == 202, made.text
    path = f"batchPredictionJobDefinitions/{made.json()['id']}/"  # the provider's form: with the slash
    body["maxNGramExplanations"], body["intakeSettings"]["file"] = 3, "./elsewhere.csv"
    assert client.patch(path, json=body).status_code == 200
    for answer in (made.json(), client.get(path).json()):
        job = answer["batchPredictionJob"]
        assert "maxNGramExplanations" not in job and "file" not in job["intakeSettings"]
        assert job["intakeSettings"] == {"type": "localFile"} and job["outputSettings"] == {"type": "localFile"}
    assert client.get(path).json()["batchPredictionJob"]["maxNgramExplanations"] == 3
    assert made.json()["batchPredictionJob"]["maxNgramExplanations"] == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"maxNgramExplanations": 1}, "maxNGramExplanations"),  # the same field twice
    ({"intakeSettings": {"type": "localFile", "file": 7}}, "intakeSettings.file"),
    ({"intakeSettings": {"type": "s3", "url": "s3://b/k.csv", "file": "x.csv"}}, "intakeSettings.file"),
])
def test_client_spellings_stay_unambiguous(client: httpx.Client, change: dict[str, Any], field: str) -> None:
    deployment = client.post("deployments/", json={"label": "tf-dep"}).json()["id"]
    refused = client.post("batchPredictionJobDefinitions/", json={**_provider_body(deployment, "tf-x"), **change})
    assert refused.status_code == 422 and field in refused.json()["errors"], refused.text


def test_the_document_states_the_client_spellings(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    alias = components["ApiDefinition"]["properties"]["maxNGramExplanations"]
    assert alias["deprecated"] and alias["$ref"].endswith("/maxNgramExplanations")
    assert {"not": {"required": ["maxNGramExplanations", "maxNgramExplanations"]}} in components["JobSpec"]["allOf"]
    assert "file" in components["IntakeLocalFile"]["properties"] and "path" in components["OutputLocalFile"]["properties"]
