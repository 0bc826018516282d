"""References by name against the served local service: the official SDK lists what a reference
names through the same routes; a plan resolves every name with one list call per kind, shows name
and id in every format; a missing or ambiguous name refuses the plan with close matches; the
service refuses a request that still holds a reference; export writes references."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import datarobot as dr
import httpx
import pytest
import yaml
from typer.testing import CliRunner

from reconciler.api.client import Client
from reconciler.cli import app
from reconciler.contract import validators
from reconciler.service.testing import LocalServer
from reconciler.session import Options, Session

from .conftest import TOKEN, seed
from .specs import CREDENTIAL, DATASTORE, DEPLOYMENT, manifest, write_specs


def _env(server: LocalServer, tmp_path: Path) -> dict[str, str]:
    return {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
            "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def _by_name(name: str, *, deployment: str = "dep", credential: str = "cred", store: str = "store") -> dict[str, Any]:
    return manifest(name, job={
        "deploymentRef": {"name": deployment},
        "intakeSettings": {"type": "s3", "url": f"s3://bucket/{name}.csv", "credentialRef": {"name": credential}},
        "outputSettings": {"type": "jdbc", "dataStoreRef": {"name": store}, "credentialRef": {"name": credential},
                           "table": "scores", "statementType": "insert"}})


def test_the_sdk_lists_what_references_name(server: LocalServer) -> None:
    dr.Client(endpoint=server.api_url.rstrip("/"), token=TOKEN)
    assert [(d.id, d.label) for d in dr.Deployment.list()] == [(DEPLOYMENT, "dep")]
    assert [(c.credential_id, c.name) for c in dr.Credential.list()] == [(CREDENTIAL, "cred")]
    assert [(s.id, s.canonical_name) for s in dr.DataStore.list()] == [(DATASTORE, "store")]



@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_sdk_search_filters_select_on_the_local_service(database: str, request: pytest.FixtureRequest) -> None:
    """The filters the SDK sends (``Deployment.list(search=)``, ``DataStore.list(name=, typ=)``),
    honoured as DataRobot documents them: case-insensitive substrings, deployments by label or
    description, data stores of type jdbc unless another type is asked for."""
    db_url = request.getfixturevalue("postgres_server").create_database() if database == "postgresql" else None
    with LocalServer(token=TOKEN, db_url=db_url) as served:
        seed(served.api_url, TOKEN)
        with httpx.Client(base_url=served.api_url, headers={"Authorization": f"Token {TOKEN}"}) as h:
            for path, body in (
                    ("deployments/", {"label": "Churn classifier", "description": "prod scoring"}),
                    ("deployments/", {"label": "fraud 50%_off", "description": "Holds CHURN features too"}),
                    ("externalDataStores/", {"canonicalName": "Warehouse EU"}),
                    ("externalDataStores/", {"canonicalName": "warehouse bq", "type": "dr-database-v1"})):
                h.post(path, json=body).raise_for_status()
        dr.Client(endpoint=served.api_url.rstrip("/"), token=TOKEN)
        labels = [d.label for d in dr.Deployment.list(search="churn")]
        assert labels == ["Churn classifier", "fraud 50%_off"]  # the label, or the description
        assert [d.label for d in dr.Deployment.list(search="50%_")] == ["fraud 50%_off"]  # no LIKE wildcards
        assert [d.label for d in dr.Deployment.list(search="%")] == ["fraud 50%_off"]
        assert [d.label for d in dr.Deployment.list(search="nothing")] == []
        assert len(dr.Deployment.list()) == 3
        assert [s.canonical_name for s in dr.DataStore.list(name="WAREHOUSE")] == ["Warehouse EU"]  # jdbc only
        assert [s.canonical_name for s in dr.DataStore.list(name="warehouse", typ="all")] == ["Warehouse EU",
                                                                                            "warehouse bq"]
        assert [s.canonical_name for s in dr.DataStore.list(typ="dr-database-v1")] == ["warehouse bq"]
        assert [s.canonical_name for s in dr.DataStore.list(typ="databases")] == ["store", "Warehouse EU",
                                                                                  "warehouse bq"]
        assert [s.canonical_name for s in dr.DataStore.list()] == ["store", "Warehouse EU"]
        assert [c.name for c in dr.Credential.list()] == ["cred"]  # the SDK sends no filter for credentials
        with httpx.Client(base_url=served.api_url, headers={"Authorization": f"Token {TOKEN}"}) as h:
            bad = h.get("externalDataStores/", params={"type": "mongo"})
            assert bad.status_code == 422 and "type" in bad.text
            assert h.get("deployments/", params={"search": "x" * 256}).status_code == 422



def test_a_reference_names_a_data_store_of_any_type(server: LocalServer) -> None:
    """The catalog lists data stores with ``type=all``: a dr-database-v1 store (which DataRobot's
    default list, jdbc only, leaves out) resolves by name."""
    from reconciler.api.refs import Catalog

    made = httpx.post(server.api_url + "externalDataStores/", headers={"Authorization": f"Token {TOKEN}"},
                      json={"canonicalName": "lakehouse", "type": "dr-database-v1"})
    made.raise_for_status()

    async def listed() -> list[tuple[str, str]]:
        async with Client(endpoint=server.api_url, token=TOKEN, allow_http=True) as client:
            return await Catalog(client).items("dataStore")

    assert asyncio.run(listed()) == [(DATASTORE, "store"), (made.json()["id"], "lakehouse")]


def test_plan_resolves_names_to_ids_and_shows_both_then_apply_converges(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", [_by_name("demo-a"), _by_name("demo-b")])
    text = _cli(env, "plan", str(root))
    assert text.exit_code == 0, text.stdout
    assert f'= batchPredictionJob.deploymentRef "dep" is deployment {DEPLOYMENT}' in text.stdout
    assert f'= batchPredictionJob.outputSettings.dataStoreRef "store" is dataStore {DATASTORE}' in text.stdout
    assert f'+ batchPredictionJob.intakeSettings.credentialId = "{CREDENTIAL}"' in text.stdout
    doc = json.loads(_cli(env, "plan", str(root), "-o", "json").stdout)
    validators.validator("plan").validate(doc)
    create = doc["actions"][0]
    assert create["body"]["deploymentId"] == DEPLOYMENT and "deploymentRef" not in create["body"]
    assert {(r["path"], r["name"], r["id"]) for r in create["references"]} == {
        ("batchPredictionJob.deploymentRef", "dep", DEPLOYMENT),
        ("batchPredictionJob.intakeSettings.credentialRef", "cred", CREDENTIAL),
        ("batchPredictionJob.outputSettings.credentialRef", "cred", CREDENTIAL),
        ("batchPredictionJob.outputSettings.dataStoreRef", "store", DATASTORE)}
    markdown = _cli(env, "plan", str(root), "-o", "markdown").stdout
    assert f'batchPredictionJob.deploymentRef "dep" is deployment {DEPLOYMENT}' in markdown
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    live = httpx.get(server.api_url + "batchPredictionJobDefinitions/",
                     headers={"Authorization": f"Token {TOKEN}"}).json()["data"]
    assert {item["batchPredictionJob"]["deploymentId"] for item in live} == {DEPLOYMENT}
    again = _cli(env, "plan", str(root), "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes." in again.stdout


def test_one_list_call_per_kind_for_many_manifests(server: LocalServer, tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [_by_name(f"demo-{i}") for i in range(12)])
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        query = f"?{request.url.query.decode()}" if request.url.query else ""
        seen.append(f"{request.method} {request.url.path}{query}")

    async def main() -> None:
        session = Session.open(Options(paths=(root,), endpoint=server.api_url, environ={
            "DATAROBOT_API_TOKEN": TOKEN}))
        async with (httpx.AsyncClient(event_hooks={"request": [record]}) as http,
                    Client(endpoint=server.api_url, token=TOKEN, http=http, allow_http=True) as client):
            plan = await session.plan(client, session.load())
        assert plan.summary.create == 12 and not plan.errors

    asyncio.run(main())
    lists = [line for line in seen if "batchPredictionJobDefinitions/" not in line]
    assert sorted(lists) == ["GET /api/v2/credentials/", "GET /api/v2/deployments/",
                             "GET /api/v2/externalDataStores/?type=all"]  # every type: DataRobot's default is jdbc


def test_a_missing_or_ambiguous_name_refuses_the_plan_with_close_matches(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    headers = {"Authorization": f"Token {TOKEN}"}
    httpx.post(server.api_url + "credentials/", json={"name": "twin"}, headers=headers).raise_for_status()
    httpx.post(server.api_url + "credentials/", json={"name": "twin"}, headers=headers).raise_for_status()
    root = write_specs(tmp_path / "specs", [_by_name("demo-a", deployment="Dep"), _by_name("demo-b", credential="twin")])
    result = _cli(env, "apply", str(root), "--auto-approve")
    assert result.exit_code == 1
    out = result.stdout + result.stderr
    assert "demo-a: batchPredictionJob.deploymentRef: no deployment (by label) named 'Dep'; close matches: 'dep'" in out
    assert "demo-b: batchPredictionJob.intakeSettings.credentialRef: 2 credentials are named 'twin'" in out
    live = httpx.get(server.api_url + "batchPredictionJobDefinitions/", headers=headers).json()
    assert live["data"] == []  # nothing written


def test_the_service_refuses_a_request_that_holds_a_reference(server: LocalServer) -> None:
    body = {"name": "demo-raw", "enabled": False, "deploymentRef": {"name": "dep"},
            "intakeSettings": {"type": "s3", "url": "s3://b/in.csv", "credentialId": CREDENTIAL}}
    answer = httpx.post(server.api_url + "batchPredictionJobDefinitions/", json=body,
                        headers={"Authorization": f"Token {TOKEN}"})
    assert answer.status_code == 422
    assert "send deploymentId" in answer.json()["errors"]["deploymentRef"]


def test_export_with_refs_writes_names_that_are_unique(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", [manifest("demo-a")])
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    httpx.post(server.api_url + "credentials/", json={"name": "cred"},
               headers={"Authorization": f"Token {TOKEN}"}).raise_for_status()  # now "cred" is ambiguous
    result = _cli(env, "export", "--search", "demo-", "--refs", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stdout + result.stderr
    job = yaml.safe_load((tmp_path / "out" / "demo-a.yaml").read_text())["spec"]["batchPredictionJob"]
    assert job["deploymentRef"] == {"name": "dep"} and "deploymentId" not in job
    assert job["outputSettings"]["dataStoreRef"] == {"name": "store"}
    assert job["intakeSettings"]["credentialId"] == CREDENTIAL  # two credentials named "cred": the id stays
    (tmp_path / "out" / "reconciler.yaml").write_text((root / "reconciler.yaml").read_text())
    again = _cli(env, "plan", str(tmp_path / "out"), "--detailed-exitcode")
    assert again.exit_code == 0, again.stdout
