"""The example GitOps repository end to end, with the commands its README gives: validate per
target, the pull-request plan in markdown, apply, and the scheduled drift check, against a real
local service on loopback standing in for the dev installation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.testing import LocalServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops-repo"
TOKEN = "dev-token-for-the-example-e2e"


@pytest.fixture(scope="module")
def dev_server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN, settings={"scheduler_interval": 0}) as server:
        yield server


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_example_repository_validate_plan_apply_and_drift_check(dev_server: LocalServer, tmp_path: Path) -> None:
    repo = tmp_path / "gitops-repo"
    shutil.copytree(EXAMPLE, repo)
    variables = yaml.safe_load((repo / "reconciler.yaml").read_text())["targets"]["dev"]["variables"]
    headers = dev_server.headers()
    # The dev installation's deployment and credential, which the dev variables point at.
    httpx.post(dev_server.api_url + "deployments/", headers=headers,
               json={"id": variables["DEPLOYMENT_ID"], "label": "dev churn model"}).raise_for_status()
    httpx.post(dev_server.api_url + "credentials/", headers=headers,
               json={"id": variables["CREDENTIAL_ID"], "name": "dev bucket", "credentialType": "basic"}).raise_for_status()
    # The target's own endpoint is a placeholder host; --endpoint points the run at the stand-in,
    # while the target's variables, scope and tokenFrom variable still apply. DATAROBOT_ENDPOINT
    # would not: a chosen target is never redirected by the environment.
    env = {"DEV_DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1"}
    specs, config = str(repo / "specs"), str(repo / "reconciler.yaml")
    at = ("--endpoint", dev_server.api_url)

    for target in ("dev", "prod"):
        validated = _cli(env, "validate", specs, "--target", target, "--config", config)
        assert validated.exit_code == 0, validated.stdout

    drift = _cli(env, "plan", specs, "--target", "dev", "--config", config, *at, "--detailed-exitcode")
    assert drift.exit_code == 2, drift.stdout + drift.stderr
    markdown = _cli(env, "plan", specs, "--target", "dev", "--config", config, *at, "--output", "markdown")
    assert markdown.exit_code == 0, markdown.stderr
    assert "2 to create" in markdown.stdout and "<details>" in markdown.stdout

    applied = _cli(env, "apply", specs, "--target", "dev", "--config", config, *at, "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "Apply complete: 2 created" in applied.stdout

    live = httpx.get(dev_server.api_url + "batchPredictionJobDefinitions/", headers=headers,
                     params={"searchName": "acme-churn-nightly"}).json()["data"]
    assert len(live) == 1
    job = live[0]["batchPredictionJob"]
    assert job["deploymentId"] == variables["DEPLOYMENT_ID"]
    assert job["numConcurrent"] == variables["CONCURRENCY"]  # ${CONCURRENCY} kept its integer type
    assert job["outputSettings"]["url"] == f"s3://{variables['BUCKET']}/churn/scored-dev.csv"
    assert live[0]["enabled"] is variables["ENABLED"]

    in_sync = _cli(env, "plan", specs, "--target", "dev", "--config", config, *at, "--detailed-exitcode")
    assert in_sync.exit_code == 0, in_sync.stdout

    # Someone edits the live definition outside git: the scheduled drift check fails with 2.
    httpx.patch(dev_server.api_url + f"batchPredictionJobDefinitions/{live[0]['id']}", headers=headers,
                json={"numConcurrent": 7}).raise_for_status()
    drifted = _cli(env, "plan", specs, "--target", "dev", "--config", config, *at, "--detailed-exitcode")
    assert drifted.exit_code == 2
    assert "numConcurrent" in drifted.stdout
    corrected = _cli(env, "apply", specs, "--target", "dev", "--config", config, *at, "--auto-approve")
    assert corrected.exit_code == 0 and "1 updated" in corrected.stdout
