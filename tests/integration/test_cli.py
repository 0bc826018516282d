"""The commands end to end against the served service: exit codes, saved and stale plans,
export round trip, run, and the token / secret never appearing in any output or file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reconciler import schemas
from reconciler.cli import app
from reconciler.service.testing import LocalServer

from .conftest import TOKEN
from .specs import manifest, standard, write_specs

SECRET = "pred-SECRET-value-91"


def _env(server: LocalServer, tmp_path: Path) -> dict[str, str]:
    return {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "PRED_API_KEY": SECRET,
            "NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}


def _cli(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result


def test_full_run_exit_codes_and_no_token_anywhere(server: LocalServer, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard())
    outputs: list[str] = []

    def run(*args: str, code: int) -> Any:
        result = _cli(env, *args)
        outputs.extend([result.stdout, result.stderr])
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    run("plan", str(root), "--detailed-exitcode", code=2)
    shown = run("plan", str(root), "-o", "json", "--out", str(tmp_path / "plan.json"), "--verbose", code=0)
    doc = json.loads(shown.stdout)
    schemas.validator("plan").validate(doc)
    assert doc["summary"]["text"] == "Plan: 4 to create, 0 to update, 0 to delete."
    assert json.loads((tmp_path / "plan.json").read_text())["fingerprint"] == doc["fingerprint"]
    run("plan", str(root), "-o", "markdown", code=0)
    refused = run("apply", "-p", str(root), code=1)  # no TTY, no --auto-approve
    assert "--auto-approve" in refused.stderr
    applied = run("apply", str(tmp_path / "plan.json"), "--verbose", code=0)
    assert "Apply complete: 4 created, 0 updated, 0 deleted." in applied.stdout
    run("plan", str(root), "--detailed-exitcode", code=0)
    again = run("apply", "-p", str(root), "--auto-approve", code=0)
    assert "No changes." in again.stdout
    run("diff", "demo-0", "-p", str(root), code=0)
    run("export", "--search", "demo-", "--out", str(tmp_path / "exported"), code=0)
    exported = sorted(p.name for p in (tmp_path / "exported").glob("*.yaml"))
    assert exported == ["demo-0.yaml", "demo-1.yaml", "demo-3.yaml", "demo-two-eu.yaml"]
    (tmp_path / "exported" / "reconciler.yaml").write_text((root / "reconciler.yaml").read_text())
    run("validate", str(tmp_path / "exported"), code=0)
    roundtrip = run("plan", str(tmp_path / "exported"), "--detailed-exitcode", code=0)
    assert "No changes." in roundtrip.stdout
    started = run("run", "demo-0", code=0)
    job_id, status = started.stdout.split()[:2]
    assert len(job_id) == 24 and status in ("INITIALIZING", "RUNNING", "COMPLETED")
    # the token and the resolved secret appear nowhere: outputs, logs, files written
    files = [p for p in tmp_path.rglob("*") if p.is_file()]  # every file the run wrote, whatever its kind
    assert len(files) >= 6
    haystack = ("\n".join(outputs) + caplog.text).encode() + b"".join(p.read_bytes() for p in files)
    assert TOKEN.encode() not in haystack and SECRET.encode() not in haystack
    assert "PRED_API_KEY" in (tmp_path / "plan.json").read_text()  # the reference is kept


def test_saved_plan_is_refused_when_live_state_changed(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard())
    assert _cli(env, "apply", "-p", str(root), "--auto-approve").exit_code == 0
    docs = standard()
    docs[0]["spec"]["enabled"] = False
    write_specs(root, docs)
    assert _cli(env, "plan", str(root), "--out", str(tmp_path / "p.json")).exit_code == 0
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        items = h.get(server.api_url + "batchPredictionJobDefinitions/", params={"searchName": "demo-3"}).json()
        h.patch(server.api_url + f"batchPredictionJobDefinitions/{items['data'][0]['id']}",
                json={"enabled": False, "numConcurrent": 3}).raise_for_status()
    result = _cli(env, "apply", str(tmp_path / "p.json"))
    assert result.exit_code == 1
    assert "stale" in result.stderr and "demo-3" in result.stderr and "changed" in result.stderr


def test_saved_plan_is_only_applied_where_it_was_made(server: LocalServer, tmp_path: Path) -> None:
    """A plan of creates made against one target must not be carried out against another: the
    fingerprint of an empty scope cannot tell them apart, the recorded target can."""
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard())
    assert _cli(env, "plan", str(root), "--out", str(tmp_path / "p.json")).exit_code == 0
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["target"] == {"name": None, "endpoint": server.api_url, "local_db": None}
    assert TOKEN not in (tmp_path / "p.json").read_text()
    # The same plan, applied with no endpoint configured, would go to the embedded local service.
    local = {**env, "DATAROBOT_ENDPOINT": None, "DATAROBOT_API_TOKEN": None}
    refused = CliRunner().invoke(app, ["apply", str(tmp_path / "p.json")], env=local)  # type: ignore[arg-type]
    assert refused.exit_code == 1
    assert f"was made for {server.api_url}" in refused.stderr and "embedded local service" in refused.stderr
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        assert h.get(server.api_url + "batchPredictionJobDefinitions/").json()["totalCount"] == 0
    # Where it was made, it applies.
    applied = _cli(env, "apply", str(tmp_path / "p.json"))
    assert applied.exit_code == 0, applied.stdout + applied.stderr


def test_invalid_manifests_exit_3_with_zero_writes(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = standard()
    docs[3]["spec"]["batchPredictionJob"]["num_concurrent"] = 2
    root = write_specs(tmp_path / "specs", docs)
    result = _cli(env, "apply", "-p", str(root), "--auto-approve")
    assert result.exit_code == 3 and "num_concurrent" in result.stderr
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        assert h.get(server.api_url + "batchPredictionJobDefinitions/").json()["data"] == []


def test_prune_without_scope_and_insecure_endpoint_are_errors(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard(), project=None)
    (tmp_path / ".git").mkdir()  # stop the config search here
    result = _cli(env, "plan", str(root), "--prune")
    assert result.exit_code == 1 and "scope" in result.stderr
    remote = {**env, "DATAROBOT_ENDPOINT": "http://dr.example.com/api/v2"}
    result = _cli(remote, "plan", str(root))
    assert result.exit_code == 1 and "--allow-http" in result.stderr


def test_apply_takes_paths_positionally_and_list_shows_the_result(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = [manifest(f"demo-pos-{i}") for i in range(3)]
    root = write_specs(tmp_path / "positional", docs)
    applied = _cli(env, "apply", str(root), "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "Apply complete: 3 created" in applied.stdout
    listed = _cli(env, "list", "--search", "demo-pos-", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["name"] for r in rows) == [f"demo-pos-{i}" for i in range(3)]
    assert all(len(r["id"]) == 24 for r in rows)
    table = _cli(env, "list", "--search", "demo-pos-")
    assert table.exit_code == 0
    assert "3 live definition(s)" in table.stdout and rows[0]["name"] in table.stdout


def test_embedded_service_run_wait_executes_the_job_and_list_never_folds(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from .specs import CREDENTIAL, DATASTORE, DEPLOYMENT, PROJECT

    project = (PROJECT + "localService:\n  seed:\n"
               f"    deployments: [{{id: {DEPLOYMENT}, label: dep}}]\n"
               f"    credentials: [{{id: {CREDENTIAL}, name: cred, credentialType: s3}}]\n"
               f"    dataStores: [{{id: {DATASTORE}, canonicalName: store, type: jdbc}}]\n")
    long_name = "demo-a-rather-long-definition-name-for-the-table"
    root = write_specs(tmp_path / "specs", [manifest("demo-run"), manifest(
        long_name, enabled=True, schedule={"cron": "30 2 * * *"})], project=project)
    env = {"DATAROBOT_ENDPOINT": None, "DATAROBOT_API_TOKEN": None, "NO_COLOR": "1",
           "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db"}
    applied = CliRunner().invoke(app, ["apply", str(root), "--auto-approve"], env=env)  # type: ignore[arg-type]
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    # in-process the service has no lifespan: `run --wait` must start its job runner, or this hangs
    ran = CliRunner().invoke(app, ["run", "demo-run", "--wait", "--timeout", "60"], env=env)  # type: ignore[arg-type]
    lines = ran.stdout.split("\n")
    job_id = lines[0].split()[0]
    assert lines[0] == f"{job_id} INITIALIZING" and lines[1] == f"{job_id} FAILED", ran.stdout
    assert ran.exit_code == 1 and f"job {job_id} FAILED: " in ran.stderr and "has no model" in ran.stderr
    listed = CliRunner().invoke(app, ["list"], env=env)  # type: ignore[arg-type]
    assert listed.exit_code == 0, listed.stderr
    rows = json.loads(CliRunner().invoke(app, ["list", "-o", "json"], env=env).stdout)  # type: ignore[arg-type]
    for row in rows:  # every row on one line: the whole name and the whole id, never folded
        (line,) = [line for line in listed.stdout.splitlines() if row["id"] in line]
        assert line.startswith(row["name"] + " ")
    (sched,) = [r for r in rows if r["name"] == long_name]
    when = sched["nextScheduledRunTime"]  # e.g. 2026-12-02T02:30:00.000000Z -> 2026-12-02 02:30
    assert f"{when[:10]} {when[11:16]}" in listed.stdout and when not in listed.stdout
    assert "FAILED" in listed.stdout  # the last job's status


def test_usage_errors_exit_1_never_2_and_damaged_plan_files_are_refused(tmp_path: Path) -> None:
    env = {"NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db", "DATAROBOT_ENDPOINT": None}
    for args in (["plan", "--detailed-exitcode", "--bogus"], ["plan", "-o", "yaml"], ["apply", "--concurrency", "0"]):
        result = CliRunner().invoke(app, args, env=env)  # type: ignore[arg-type]
        assert result.exit_code == 1, (args, result.exit_code)  # 2 would read as "changes present" in CI
    (tmp_path / "notjson.plan").write_text("nope\n")
    (tmp_path / "other.json").write_text('{"x": 1}')
    plan = {"format_version": "1.0", "actions": [{"kind": "explode"}]}
    (tmp_path / "edited.json").write_text(json.dumps(plan))
    for name, expected in (("notjson.plan", "not JSON (line 1, column 1)"), ("other.json", "no format_version"),
                           ("edited.json", "is not a valid saved plan: ")):
        result = CliRunner().invoke(app, ["apply", str(tmp_path / name)], env=env)  # type: ignore[arg-type]
        assert result.exit_code == 1 and expected in result.stderr and "reconciler plan --out" in result.stderr, (
            name, result.stderr)
    assert not (tmp_path / "local.db").exists()  # refused before any request


def test_a_failed_write_stops_the_prune_and_the_summary_says_what_was_applied(server: LocalServer,
                                                                              tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = standard()
    root = write_specs(tmp_path / "specs", docs)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    docs[0]["spec"]["batchPredictionJob"]["deploymentId"] = "0" * 24  # valid shape, unknown to the server
    write_specs(root, [*docs[:3], manifest("demo-new")])  # demo-3 goes: a delete under --prune
    result = _cli(env, "apply", str(root), "--prune", "--auto-approve")
    assert result.exit_code == 1, result.stdout
    out = result.stdout
    assert "demo-0: update FAILED: PATCH " in out and "demo-new: created [id " in out
    assert "demo-3: delete not attempted (an earlier action failed, so nothing is pruned)" in out
    assert out.rstrip().endswith("Apply failed: 1 created, 0 updated, 0 deleted; 1 failed, 1 not attempted.")
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        names = {d["name"] for d in h.get(server.api_url + "batchPredictionJobDefinitions/").json()["data"]}
    assert {"demo-3", "demo-new"} <= names
