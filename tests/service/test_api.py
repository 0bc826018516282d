"""The REST routes over real HTTP against the session's served instance (SQLite)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from reconciler.service.store import SCHEMA_VERSION

from .helpers import SCHEDULE, body, refs, unique

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture(scope="module")
def client(local_service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_service + "/api/v2/", follow_redirects=False, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def ids(client: httpx.Client) -> dict[str, str]:
    return refs(client)


def create(client: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
    response = client.post("batchPredictionJobDefinitions/", json=payload)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_version_is_what_the_sdk_expects(client: httpx.Client) -> None:
    for path in ("version/", "version"):
        data = client.get(path).json()
        assert (data["major"], data["minor"], data["versionString"]) == (2, 49, "2.49.0")


def test_create_returns_the_full_definition_shape(client: httpx.Client, ids: dict[str, str]) -> None:
    payload = body(ids, enabled=True, schedule=SCHEDULE, numConcurrent=2)
    made = create(client, payload)
    assert HEX24.match(made["id"]) and made["name"] == payload["name"] and made["enabled"] is True
    assert made["schedule"] == {**SCHEDULE, "dayOfWeek": [1, 5]}  # names come back as numbers
    job = made["batchPredictionJob"]
    assert job["numConcurrent"] == 2 and job["deploymentId"] == ids["deploymentId"]
    assert job["intakeSettings"]["format"] == "csv"  # defaults filled like the manifest side
    assert job["csvSettings"] == {"delimiter": ",", "quotechar": '"', "encoding": "utf-8"}
    assert (job["chunkSize"], job["abortOnError"], job["maxExplanations"]) == ("auto", True, 0)
    for key in ("created", "updated", "nextScheduledRunTime"):
        assert ISO.match(made[key]), (key, made[key])
    for key in ("lastScheduledRunTime", "lastSuccessfulRunTime", "lastFailedRunTime"):
        assert made[key] == "1900-01-01T00:00:00.000000Z"
    assert made["lastStartedJobStatus"] is None and made["lastStartedJobTime"] is None
    assert set(made["createdBy"]) == {"username", "userId", "fullName"} and made["updatedBy"] == made["createdBy"]
    got = client.get(f"batchPredictionJobDefinitions/{made['id']}").json()
    assert {k: v for k, v in got.items() if k != "nextScheduledRunTime"} == {
        k: v for k, v in made.items() if k != "nextScheduledRunTime"}


def test_generated_name_and_no_schedule(client: httpx.Client, ids: dict[str, str]) -> None:
    payload = body(ids)
    del payload["name"]
    made = create(client, payload)
    assert re.match(r"^[a-z]+_[a-z]+_[a-z]+(_[0-9a-f]{6})?$", made["name"])
    assert "schedule" not in made and made["nextScheduledRunTime"] is None


@pytest.mark.parametrize(("payload_change", "field"), [
    ({"enabled": True}, "schedule"),
    ({"numConcurrent": 0}, "numConcurrent"),
    ({"num_concurrent": 2}, "num_concurrent"),
    ({"schedule": {"minute": [60], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}},
     "schedule.minute[0]"),
    ({"intakeSettings": {"type": "s3"}}, "intakeSettings.url"),
])
def test_invalid_bodies_are_422_with_field_errors(client: httpx.Client, ids: dict[str, str],
                                                   payload_change: dict[str, Any], field: str) -> None:
    response = client.post("batchPredictionJobDefinitions/", json=body(ids, **payload_change))
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["message"] and field in data["errors"], data


def test_missing_required_job_fields_are_named(client: httpx.Client) -> None:
    response = client.post("batchPredictionJobDefinitions/", json={"name": unique()})
    assert response.status_code == 422
    assert {"deploymentId", "intakeSettings"} <= set(response.json()["errors"])


def test_unknown_references_are_404_naming_each_field(client: httpx.Client, ids: dict[str, str]) -> None:
    payload = body({**ids, "credentialId": "a" * 24}, deploymentId="b" * 24)
    response = client.post("batchPredictionJobDefinitions/", json=payload)
    assert response.status_code == 404, response.text
    errors = response.json()["errors"]
    assert set(errors) == {"deploymentId", "intakeSettings.credentialId"}
    assert "create it first" in errors["deploymentId"]
    made = create(client, body(ids))
    response = client.patch(f"batchPredictionJobDefinitions/{made['id']}",
                            json={"outputSettings": {"type": "jdbc", "dataStoreId": "c" * 24, "table": "t",
                                                     "statementType": "insert"}})
    assert response.status_code == 404 and set(response.json()["errors"]) == {"outputSettings.dataStoreId"}
    got = client.get(f"batchPredictionJobDefinitions/{made['id']}").json()
    assert got["batchPredictionJob"]["outputSettings"] == made["batchPredictionJob"]["outputSettings"]


def test_duplicate_name_is_409(client: httpx.Client, ids: dict[str, str]) -> None:
    payload = body(ids)
    create(client, payload)
    response = client.post("batchPredictionJobDefinitions/", json={**body(ids), "name": payload["name"]})
    assert response.status_code == 409 and "name" in response.json()["errors"]


def test_concurrent_creates_of_one_name_give_one_202_and_one_409(client: httpx.Client,
                                                                  ids: dict[str, str]) -> None:
    payload = body(ids)
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: client.post("batchPredictionJobDefinitions/", json=payload).status_code,
                                range(4)))
    assert codes == [202, 409, 409, 409]


@pytest.mark.parametrize(("content", "headers", "status"), [
    (b'{"name": ', {"content-type": "application/json"}, 400),
    (b"\xff\xfe", {"content-type": "application/json"}, 400),
    (b"[1, 2]", {"content-type": "application/json"}, 422),
    (b'{"name": "x"}', {"content-type": "text/plain"}, 415),
    (b'{"name": "x"}', {}, 415),
    (b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}', {"content-type": "application/json"}, 413),
])
def test_malformed_requests_are_4xx_not_500(client: httpx.Client, content: bytes, headers: dict[str, str],
                                            status: int) -> None:
    response = client.post("batchPredictionJobDefinitions/", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["message"]


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * (64 * 1024)

    response = client.post("batchPredictionJobDefinitions/", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413


def _raw(ids: dict[str, str], extra: str) -> bytes:
    """A valid create body with ``extra`` (raw JSON text, e.g. ``"numConcurrent": NaN``) spliced in."""
    return (json.dumps(body(ids))[:-1] + ", " + extra + "}").encode()


@pytest.mark.parametrize(("extra", "said"), [
    ('"predictionThreshold": NaN', "NaN is not a JSON number"),
    ('"thresholdHigh": Infinity', "Infinity is not a JSON number"),
    ('"thresholdHigh": 1e400', "out of range"),
    ('"chunkSize": 100000000000000000000000', "64 bits"),
    ('"numConcurrent": -100000000000000000000000', "64 bits"),
    ('"passthroughColumns": ["ok", "\\ud800"]', "passthroughColumns[1]"),
    ('"columnNamesRemapping": {"a\\udc00": "b"}', "surrogate"),
    ('"name": "a\\u0000b"', "NUL"),
    ('"columnNamesRemapping": ' + "[" * 40 + "]" * 40, "nested"),
    ('"columnNamesRemapping": ' + "[" * 100_000 + "]" * 100_000, "nested"),
])
def test_bodies_the_store_cannot_keep_are_400_and_never_stored(client: httpx.Client, ids: dict[str, str],
                                                               extra: str, said: str) -> None:
    before = client.get("batchPredictionJobDefinitions/", params={"limit": 1}).json()["totalCount"]
    response = client.post("batchPredictionJobDefinitions/", content=_raw(ids, extra),
                           headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert said in response.text and response.json()["errors"]
    listed = client.get("batchPredictionJobDefinitions/", params={"limit": 1})
    assert listed.status_code == 200 and listed.json()["totalCount"] == before


def test_valid_non_ascii_text_is_kept(client: httpx.Client, ids: dict[str, str]) -> None:
    name = unique("d\u00e9f-\U0001f600")  # é and an emoji (sent as a surrogate pair by json.dumps)
    made = client.post("batchPredictionJobDefinitions/", content=json.dumps(body(ids, name=name)).encode(),
                       headers={"content-type": "application/json"})
    assert made.status_code == 202 and made.json()["name"] == name
    assert client.get(f"batchPredictionJobDefinitions/{made.json()['id']}/").json()["name"] == name


def test_patch_semantics(client: httpx.Client, ids: dict[str, str]) -> None:
    payload = body(ids, numConcurrent=3, passthroughColumnsSet="all")
    made = create(client, payload)
    url = f"batchPredictionJobDefinitions/{made['id']}"
    # absent keys unchanged; job-spec keys replaced one by one at the top level of the spec
    patched = client.patch(url, json={"numConcurrent": 5}).json()
    assert patched["batchPredictionJob"]["numConcurrent"] == 5
    assert patched["batchPredictionJob"]["passthroughColumnsSet"] == "all" and patched["name"] == made["name"]
    assert patched["updated"] > made["updated"]
    new_intake = {"type": "s3", "url": "s3://other/in.csv"}
    patched = client.patch(url + "/", json={"intakeSettings": new_intake}).json()  # Terraform's slash form
    assert patched["batchPredictionJob"]["intakeSettings"] == {**new_intake, "format": "csv"}  # replaced, not merged
    # the whole create body again (Terraform) is accepted and restores it
    again = client.patch(url + "/", json=payload)
    assert again.status_code == 200, again.text
    assert again.json()["batchPredictionJob"] == made["batchPredictionJob"] | {"numConcurrent": 3}
    assert client.patch(url, json={"enabled": True}).status_code == 422  # still no schedule
    enabled = client.patch(url, json={"enabled": True, "schedule": SCHEDULE}).json()
    assert enabled["enabled"] and enabled["nextScheduledRunTime"]
    assert client.patch(url, json={"modelId": "c" * 24}).status_code == 422  # excludes deploymentId


def test_rename_onto_a_taken_name_is_409(client: httpx.Client, ids: dict[str, str]) -> None:
    first, second = create(client, body(ids)), create(client, body(ids))
    response = client.patch(f"batchPredictionJobDefinitions/{second['id']}", json={"name": first["name"]})
    assert response.status_code == 409


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    missing = "0" * 24
    assert client.get(f"batchPredictionJobDefinitions/{missing}/").status_code == 404
    assert client.patch(f"batchPredictionJobDefinitions/{missing}", json={"enabled": False}).status_code == 404
    assert client.delete(f"batchPredictionJobDefinitions/{missing}/").status_code == 404
    assert client.get(f"batchPredictions/{missing}/").status_code == 404
    response = client.post("batchPredictions/fromJobDefinition/", json={"jobDefinitionId": missing})
    assert response.status_code == 404 and "jobDefinitionId" in response.json()["errors"]


def test_list_envelope_paging_and_filters(client: httpx.Client, ids: dict[str, str]) -> None:
    own = refs(client)
    tag = unique("page")
    made = [create(client, body(own, name=f"{tag}-{i}")) for i in range(5)]
    first = client.get("batchPredictionJobDefinitions/", params={"searchName": tag.upper(), "limit": 2}).json()
    assert first["totalCount"] == 5 and first["count"] == 2 and first["previous"] is None
    assert first["next"].startswith("http://127.0.0.1:")
    seen = [d["id"] for d in first["data"]]
    page = first
    while page["next"]:
        page = httpx.get(page["next"]).json()  # absolute, followed as given (like the SDK)
        seen += [d["id"] for d in page["data"]]
    assert seen == [d["id"] for d in made]
    assert page["previous"] and "offset=2" in page["previous"]
    by_deployment = client.get("batchPredictionJobDefinitions", params={"deploymentId": own["deploymentId"]}).json()
    assert by_deployment["totalCount"] == 5
    assert client.get("batchPredictionJobDefinitions/", params={"limit": 0}).status_code == 422
    assert client.get("batchPredictionJobDefinitions/", params={"offset": -1}).status_code == 422
    for path in ("batchPredictionJobDefinitions/", "batchPredictions/", "deployments/"):  # beyond 64-bit OFFSET
        assert client.get(path, params={"offset": 10**20}).status_code == 422, path


def test_nul_in_the_url_is_400(client: httpx.Client) -> None:
    for path in ("batchPredictionJobDefinitions/?searchName=a%00", "batchPredictionJobDefinitions/a%00b/",
                 "batchPredictions/?deploymentId=%00", "credentials/%00/"):
        response = client.get(path)
        assert response.status_code == 400 and "NUL" in response.json()["message"], path


def test_run_once_queues_a_job_that_stays_initializing(client: httpx.Client, ids: dict[str, str]) -> None:
    made = create(client, body(ids))
    response = client.post("batchPredictions/fromJobDefinition/", json={"jobDefinitionId": made["id"]})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "INITIALIZING" and job["jobSpec"] == made["batchPredictionJob"]
    assert job["links"]["self"].endswith(f"/api/v2/batchPredictions/{job['id']}/")
    assert client.get(f"batchPredictions/{job['id']}/").json()["status"] == "INITIALIZING"
    listed = client.get("batchPredictions/", params={"batchPredictionJobDefinitionId": made["id"]}).json()
    assert [j["id"] for j in listed["data"]] == [job["id"]]
    by_status = client.get("batchPredictions/", params=[("status", "COMPLETED"), ("status", "FAILED")]).json()
    assert job["id"] not in [j["id"] for j in by_status["data"]]
    assert client.get("batchPredictions/", params={"status": "DONE"}).status_code == 422
    definition = client.get(f"batchPredictionJobDefinitions/{made['id']}/").json()
    assert definition["lastStartedJobStatus"] == "INITIALIZING" and definition["lastStartedJobTime"] == job["created"]
    assert client.delete(f"batchPredictions/{job['id']}/").status_code == 204
    assert client.get(f"batchPredictions/{job['id']}/").json()["status"] == "ABORTED"
    assert client.delete(f"batchPredictions/{job['id']}/").status_code == 409



def test_jobs_are_listed_newest_first_with_order_by(client: httpx.Client, ids: dict[str, str]) -> None:
    """``orderBy=-created`` (the API's sort parameter, as DataRobot documents it): ``reconciler jobs``
    asks for the newest jobs of a definition in one page."""
    made = create(client, body(ids))
    started = [client.post("batchPredictions/fromJobDefinition/", json={"jobDefinitionId": made["id"]}).json()["id"]
               for _ in range(3)]
    mine = {"batchPredictionJobDefinitionId": made["id"]}
    oldest_first = client.get("batchPredictions/", params=mine).json()["data"]
    assert [j["id"] for j in oldest_first] == started
    newest = client.get("batchPredictions/", params={**mine, "orderBy": "-created", "limit": 2}).json()
    assert [j["id"] for j in newest["data"]] == started[::-1][:2] and newest["totalCount"] == 3
    assert client.get("batchPredictions/", params={**mine, "orderBy": "name"}).status_code == 422
    for job_id in started:
        client.delete(f"batchPredictions/{job_id}/")

def test_delete_definition_and_resources(client: httpx.Client) -> None:
    own = refs(client)
    made = create(client, body(own))
    response = client.delete(f"deployments/{own['deploymentId']}/")
    assert response.status_code == 409 and made["id"] in response.json()["message"]
    assert client.delete(f"batchPredictionJobDefinitions/{made['id']}/").status_code == 204
    assert client.get(f"batchPredictionJobDefinitions/{made['id']}/").status_code == 404
    for key, path in (("deploymentId", "deployments"), ("credentialId", "credentials"),
                      ("dataStoreId", "externalDataStores")):
        assert client.get(f"{path}/{own[key]}/").status_code == 200
        assert client.delete(f"{path}/{own[key]}").status_code == 204
        assert client.get(f"{path}/{own[key]}/").status_code == 404


def test_resources_refuse_secrets_and_accept_chosen_ids(client: httpx.Client) -> None:
    response = client.post("credentials/", json={"name": "c", "awsSecretAccessKey": "hunter2"})
    assert response.status_code == 422 and "awsSecretAccessKey" in response.json()["errors"]
    assert "hunter2" not in response.text  # a basic credential takes no AWS keys, and never echoes them
    response = client.post("credentials/", json={"name": "c", "user": "u", "password": "hunter2"})
    assert response.status_code == 201 and "hunter2" not in response.text and "password" not in response.json()
    assert "hunter2" not in client.get(f"credentials/{response.json()['id']}/").text
    chosen = unique("x").encode().hex()[:24].ljust(24, "0")
    assert client.post("deployments/", json={"id": chosen, "label": "d"}).status_code == 201
    assert client.post("credentials/", json={"id": chosen, "name": "d"}).status_code == 409
    listed = client.get("deployments/", params={"limit": 1000}).json()
    assert chosen in [d["id"] for d in listed["data"]]


def test_no_redirects_and_health(client: httpx.Client, local_service: str) -> None:
    for path in ("batchPredictionJobDefinitions", "batchPredictionJobDefinitions/", "batchPredictions",
                 "deployments", "credentials/", "externalDataStores"):
        assert client.get(path).status_code == 200, path
    assert client.get("nothing-here/").status_code == 404
    health = httpx.get(local_service + "/healthz").json()
    assert health == {"status": "ok", "schemaVersion": SCHEMA_VERSION}
    assert httpx.get(local_service + "/docs").status_code == 200
