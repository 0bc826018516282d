"""Through the real SDK against a served instance: S3 and basic credentials keep their secrets
server-side only, and AI Catalog uploads land where the ``dataset`` intake reads them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datarobot as dr
import httpx
import pandas as pd
import pytest

from reconciler.service.runner.adapters.base import AdapterError, open_intake
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer

from .conftest import context

TOKEN = "storage-sdk-token-61c2"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN) as s:
        dr.Client(endpoint=s.url + "/api/v2", token=TOKEN)
        yield s


@pytest.fixture()
def side_store(server: LocalServer) -> Iterator[Store]:
    """A second Store on the server's database, as a runner process would open it."""
    opened = Store(server.db_url)
    try:
        yield opened
    finally:
        opened.close()


def test_credentials_keep_secrets_out_of_responses(server: LocalServer, side_store: Store) -> None:
    s3 = dr.Credential.create_s3(name="s3-cred", aws_access_key_id="AKIDSDK", aws_secret_access_key="very-secret-key",
                                 aws_session_token="session-tok")
    assert s3.credential_type == "s3" and s3.name == "s3-cred"
    basic = dr.Credential.create_basic(name="db-login", user="scorer", password="pw-secret")
    assert basic.credential_type == "basic"
    with httpx.Client(base_url=server.api_url, headers=server.headers()) as client:
        texts = [client.get(f"credentials/{s3.credential_id}/").text, client.get(f"credentials/{basic.credential_id}/").text,
                 client.get("credentials/", params={"limit": 1000}).text]
    for text in texts:
        for secret in ("very-secret-key", "session-tok", "AKIDSDK", "pw-secret", "scorer"):
            assert secret not in text
    assert dr.Credential.get(str(s3.credential_id)).name == "s3-cred"
    assert side_store.get_credential_secret(str(s3.credential_id)) == {
        "awsAccessKeyId": "AKIDSDK", "awsSecretAccessKey": "very-secret-key", "awsSessionToken": "session-tok"}
    assert side_store.get_credential_secret(str(basic.credential_id)) == {"user": "scorer", "password": "pw-secret"}
    s3.delete()
    with pytest.raises(Exception, match="no credential"):
        side_store.get_credential_secret(str(s3.credential_id))


def test_dataset_upload_then_intake_reads_it(server: LocalServer, side_store: Store, tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [str(i) for i in range(2345)], "b": [f"text, {i}" for i in range(2345)]})
    uploaded: Any = dr.Dataset.create_from_in_memory_data(data_frame=frame, fname="scoring.csv")
    assert uploaded.row_count == 2345 and uploaded.name == "scoring.csv"
    assert uploaded.processing_state == "COMPLETED"
    fetched = dr.Dataset.get(uploaded.id)
    assert fetched.version_id == uploaded.version_id

    intake = open_intake({"type": "dataset", "datasetId": uploaded.id, "datasetVersionId": uploaded.version_id},
                         context(side_store, chunk_rows=1000))
    chunks = list(intake.chunks())
    intake.close()
    assert [len(c) for c in chunks] == [1000, 1000, 345]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), frame)

    path = tmp_path / "file.csv"
    path.write_bytes(b"x,y\r\n1,2\r\n3,4\r\n")  # CRLF inside the multipart body
    from_file = dr.Dataset.create_from_file(file_path=str(path))
    assert from_file.row_count == 2 and from_file.name == "file.csv"
    with pytest.raises(AdapterError, match="no dataset"):
        open_intake({"type": "dataset", "datasetId": from_file.id, "datasetVersionId": uploaded.version_id},
                    context(side_store))
    dr.Dataset.delete(from_file.id)
    with pytest.raises(AdapterError, match="no dataset"):
        open_intake({"type": "dataset", "datasetId": from_file.id}, context(side_store))


def test_bad_uploads_are_4xx(server: LocalServer) -> None:
    with httpx.Client(base_url=server.api_url, headers=server.headers()) as client:
        assert client.post("datasets/fromFile/", json={"file": "x"}).status_code == 415
        empty = client.post("datasets/fromFile/", files={"file": ("e.csv", b"")})
        assert empty.status_code == 422 and "empty" in empty.json()["message"]
        truncated = client.post("datasets/fromFile/", content=b"--abc\r\nContent-Disposition: form-data; "
                                b'name="file"; filename="t.csv"\r\n\r\na,b\r\n1,2',
                                headers={"Content-Type": "multipart/form-data; boundary=abc"})
        assert truncated.status_code == 400
        assert client.get("datasets/ffffffffffffffffffffffff/").status_code == 404


def test_data_store_url_passwords_are_masked(server: LocalServer, side_store: Store) -> None:
    with httpx.Client(base_url=server.api_url, headers=server.headers()) as client:
        made = client.post("externalDataStores/", json={
            "canonicalName": "wh", "params": {"url": "postgresql://scorer:pg-pass-77@db.internal:5432/wh"}})
        assert made.status_code == 201, made.text
        texts = [made.text, client.get(f"externalDataStores/{made.json()['id']}/").text,
                 client.get("externalDataStores/", params={"limit": 1000}).text]
    assert all("pg-pass-77" not in text for text in texts)
    assert made.json()["params"]["url"] == "postgresql://scorer:***@db.internal:5432/wh"
    stored = side_store.get_resource("dataStore", made.json()["id"])
    assert stored.body["params"]["url"].endswith("pg-pass-77@db.internal:5432/wh")  # kept for the adapter


def test_dataset_intake_reports_progress(server: LocalServer, side_store: Store) -> None:
    """percentageCompleted of a dataset job moves while it runs: the intake tells the runner how
    many of the catalog's rows it has read (it stayed 0 until the job completed)."""
    frame = pd.DataFrame({"a": [str(i) for i in range(2500)]})
    uploaded: Any = dr.Dataset.create_from_in_memory_data(data_frame=frame, fname="progress.csv")
    intake: Any = open_intake({"type": "dataset", "datasetId": uploaded.id}, context(side_store, chunk_rows=1000))
    seen = [intake.fraction_read()]
    for _ in intake.chunks():
        seen.append(intake.fraction_read())
    intake.close()
    assert seen == [0.0, 0.4, 0.8, 1.0]


def test_sdk_data_store_create_get_list_delete(server: LocalServer) -> None:
    """DataStore's converter requires creator, updated and role (datarobot/models/data_store.py):
    without them create and get raised ``DataError: creator, updated, role is required``."""
    made = dr.DataStore.create(data_store_type="jdbc", canonical_name="warehouse-sdk", driver_id="pg-driver",
                               jdbc_url="jdbc:postgresql://db.internal:5432/wh")
    got = dr.DataStore.get(made.id)
    assert (got.id, got.canonical_name, got.type) == (made.id, "warehouse-sdk", "jdbc")
    assert (got.params.jdbc_url, got.params.driver_id) == ("jdbc:postgresql://db.internal:5432/wh", "pg-driver")
    assert got.role == "OWNER" and len(got.creator) == 24 and got.updated.year >= 2024
    assert made.id in [store.id for store in dr.DataStore.list()]
    made.delete()
    with pytest.raises(dr.errors.ClientError) as gone:
        dr.DataStore.get(made.id)
    assert gone.value.status_code == 404


def test_a_login_a_sqlite_data_store_cannot_use_is_refused_when_the_job_is_asked_for(
        server: LocalServer, tmp_path: Path) -> None:
    """Ad hoc (the SDK's score), from a definition (run once) and again (fromExisting): 422 naming
    the field and the reason, instead of a job that fails later with an internal error."""
    with httpx.Client(base_url=server.api_url, headers=server.headers()) as client:
        deployment = client.post("deployments/", json={"label": "login-dep"}).json()["id"]
        data_store = client.post("externalDataStores/", json={
            "canonicalName": "local-file-db", "params": {"url": f"sqlite:///{tmp_path}/user.db"}}).json()["id"]
        credential = client.post("credentials/", json={
            "name": "db-login", "credentialType": "basic", "user": "scorer", "password": "pw-3c7"}).json()["id"]
        intake = {"type": "jdbc", "dataStoreId": data_store, "credentialId": credential, "table": "t"}
        adhoc = client.post("batchPredictions/", json={"deploymentId": deployment, "intakeSettings": intake})
        assert adhoc.status_code == 422, adhoc.text
        assert "is a SQLite file, which has no logins" in adhoc.json()["errors"]["intakeSettings.credentialId"]
        made = client.post("batchPredictionJobDefinitions/", json={"deploymentId": deployment, "intakeSettings": intake})
        assert made.status_code == 202, made.text
        run = client.post("batchPredictions/fromJobDefinition/", json={"jobDefinitionId": made.json()["id"]})
        assert run.status_code == 422 and "intakeSettings.credentialId" in run.json()["errors"]
        assert "pw-3c7" not in adhoc.text + run.text
        jobs = client.get("batchPredictions/", params={"limit": 1000}).json()["data"]
        assert not [job for job in jobs if job["jobSpec"]["intakeSettings"].get("credentialId") == credential]
    with pytest.raises(dr.errors.ClientError) as refused:
        dr.BatchPredictionJob.score(deployment, intake_settings={
            "type": "jdbc", "data_store_id": data_store, "credential_id": credential, "table": "t"})
    assert refused.value.status_code == 422 and "has no logins" in str(refused.value)
