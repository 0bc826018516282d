"""``reconciler jobs`` and ``reconciler job ID`` against a served instance that really runs jobs
(uvicorn on 127.0.0.1, a model trained here): a COMPLETED job with its rows, an ABORTED one with
its details, the filters, JSON, and ``job --wait``'s exit codes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.testing import LocalServer

from .conftest import TOKEN, make_frame


def _cli(server: LocalServer, tmp_path: Path, *args: str) -> Any:
    env = {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
           "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_jobs_and_job_show_what_ran_and_why_it_stopped(server: LocalServer, client: httpx.Client,
                                                       deployments: dict[str, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"jobs-cli-{time.time_ns()}"
    created = client.post("batchPredictionJobDefinitions/", json={
        "name": name, "enabled": False, "deploymentId": deployments["regression"],
        "intakeSettings": {"type": "localFile"}, "outputSettings": {"type": "localFile"}})
    assert created.status_code == 202, created.text
    definition_id = created.json()["id"]

    def start() -> dict[str, Any]:
        response = client.post("batchPredictions/fromJobDefinition/", json={"jobDefinitionId": definition_id})
        assert response.status_code == 202, response.text
        return dict(response.json())

    aborted = start()
    assert client.delete(f"batchPredictions/{aborted['id']}/").status_code == 204
    done = start()
    upload = client.put(done["links"]["csvUpload"], content=make_frame(300, seed=3).to_csv(index=False).encode(),
                        headers={"Content-Type": "text/csv"})
    assert upload.status_code == 202, upload.text

    waited = _cli(server, tmp_path, "job", done["id"], "--wait", "--timeout", "120")
    assert waited.exit_code == 0, waited.stdout + waited.stderr
    assert "status        COMPLETED" in waited.stdout and "scored rows   300" in waited.stdout

    refused = _cli(server, tmp_path, "job", aborted["id"], "--wait")
    assert refused.exit_code == 1
    assert re.search(f"^error: {aborted['id']} ABORTED after \\d+s: Job aborted by the user$", refused.stderr, re.M)
    assert refused.stderr.count("Job aborted by the user") == 1  # said once, as the error
    shown = _cli(server, tmp_path, "job", aborted["id"], "-o", "json")  # reading it is no failure
    assert shown.exit_code == 0 and json.loads(shown.stdout)["statusDetails"] == "Job aborted by the user"

    table = _cli(server, tmp_path, "jobs", name)
    assert table.exit_code == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if line.startswith((done["id"], aborted["id"]))]
    assert [line.split()[0] for line in lines] == [done["id"], aborted["id"]]  # newest first
    assert lines[0].split()[1:3] == [name, "COMPLETED"] and " 300 " in lines[0]
    assert "ABORTED" in lines[1] and lines[1].rstrip().endswith("Job aborted by the user")
    assert f"2 most recent job(s) of {name}" in table.stdout

    only = json.loads(_cli(server, tmp_path, "jobs", name, "--status", "ABORTED", "-o", "json").stdout)
    assert [j["id"] for j in only] == [aborted["id"]]
    assert only[0]["batchPredictionJobDefinition"] == {"id": definition_id, "name": name}
    last = json.loads(_cli(server, tmp_path, "jobs", "--limit", "1", "-o", "json").stdout)
    assert [j["id"] for j in last] == [done["id"]]

    missing = _cli(server, tmp_path, "jobs", f"{name}-nope")
    assert missing.exit_code == 1 and "no live definition named" in missing.stderr
    bad = _cli(server, tmp_path, "job", "../definitions")
    assert bad.exit_code == 1 and "not 24 hex digits" in bad.stderr
