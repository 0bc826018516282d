"""The commands end to end against the served service: exit codes, saved and stale plans,
export round trip, run, and the token / secret never appearing in any output or file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.contract import validators
from reconciler.engine import plan as plans
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
    validators.validator("plan").validate(doc)
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
    # a pipeline that parses `plan -o json` gets JSON on stdout either way: here the validation report
    planned = _cli(env, "plan", str(root), "-o", "json")
    assert planned.exit_code == 3
    report = json.loads(planned.stdout)
    assert report["valid"] is False and report["format_version"] == "1.0"
    (error,) = report["errors"]
    assert error["field"].endswith("num_concurrent") and error["line"] > 0 and error["file"].endswith(".yaml")


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
    assert "FAILED" in listed.stdout  # the last job's status, and where to read why
    assert "hint: 1 definition(s) whose last job FAILED; `reconciler jobs demo-run` shows why" in listed.stderr


def test_usage_errors_exit_1_never_2_and_damaged_plan_files_are_refused(tmp_path: Path) -> None:
    env = {"NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db", "DATAROBOT_ENDPOINT": None}
    for args in (["plan", "--detailed-exitcode", "--bogus"], ["plan", "-o", "yaml"], ["apply", "--concurrency", "0"]):
        result = CliRunner().invoke(app, args, env=env)  # type: ignore[arg-type]
        assert result.exit_code == 1, (args, result.exit_code)  # 2 would read as "changes present" in CI
    (tmp_path / "notjson.plan").write_text("nope\n")
    (tmp_path / "other.json").write_text('{"x": 1}')
    old = {"format_version": "1.1", "actions": [{"kind": "explode"}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    damaged: dict[str, Any] = {"format_version": "1.2", "actions": [{"kind": "explode"}]}
    damaged["digest"] = plans.content_digest(damaged)  # intact, but not a plan
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    for name, expected in (("notjson.plan", "not JSON (line 1, column 1)"), ("other.json", "no format_version"),
                           ("old.json", "the plan has no digest (format_version '1.1'"),
                           ("damaged.json", "is not a valid saved plan: ")):
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


def _apply_on_a_terminal(env: dict[str, str], root: Path, keys: bytes) -> tuple[int | None, str]:
    """`reconciler apply` in a real pseudo-terminal: wait for the approval prompt, type `keys`.
    Returns the exit code (None if it had not exited 20 s later) and everything it printed."""
    import os
    import pty
    import select
    import signal
    import sys
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command as a user runs it
        os.environ.update(env)
        os.execv(sys.executable, [sys.executable, "-c", "from reconciler.cli import main; main()",
                                  "apply", str(root)])
    seen = b""

    def read_until(done: Any, seconds: float) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not done():
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                seen += chunk

    def exited() -> int | None:
        got, status = os.waitpid(pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if got else None

    code: int | None = None
    try:
        read_until(lambda: b"Only 'yes' is accepted" in seen, 60)
        assert b"Only 'yes' is accepted" in seen, seen.decode(errors="replace")
        os.write(fd, keys)
        read_until(lambda: False, 0.5)
        end = time.monotonic() + 20
        while code is None and time.monotonic() < end:
            read_until(lambda: False, 0.2)
            code = exited()
    finally:
        if code is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return code, seen.decode(errors="replace")


@pytest.mark.parametrize("keys", [b"\x03", b"\x04", b"no\r"], ids=["ctrl-c", "ctrl-d", "no"])
def test_apply_at_the_prompt_ctrl_c_ctrl_d_or_no_cancels_at_once(server: LocalServer, tmp_path: Path,
                                                                   keys: bytes) -> None:
    """Ctrl-C at the approval prompt used to hang: asyncio's SIGINT handler only cancels the main
    task, which cannot run while input() blocks."""
    root = write_specs(tmp_path / "specs", standard())
    code, shown = _apply_on_a_terminal(_env(server, tmp_path), root, keys)
    assert code == 1, shown
    assert "Apply cancelled; nothing was changed." in shown and "Traceback" not in shown
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        assert h.get(server.api_url + "batchPredictionJobDefinitions/").json()["data"] == []


def test_export_never_overwrites_a_file_that_differs_without_force(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard())
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    out = tmp_path / "exported"
    out.mkdir()
    mine = "# hand-written, with comments\nkeep: me\n"
    (out / "demo-0.yaml").write_text(mine)
    refused = _cli(env, "export", "--out", str(out))
    assert refused.exit_code == 1
    assert f"would overwrite 1 existing file(s) that differ: {out / 'demo-0.yaml'}; nothing was written" in refused.stderr
    assert "--force" in refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["demo-0.yaml"] and (out / "demo-0.yaml").read_text() == mine
    forced = _cli(env, "export", "--out", str(out), "--force")
    assert forced.exit_code == 0 and "(1 overwritten)" in forced.stderr
    assert (out / "demo-0.yaml").read_text() != mine
    again = _cli(env, "export", "--out", str(out))  # the same content again: nothing differs, no --force needed
    assert again.exit_code == 0 and "overwritten" not in again.stderr
    assert _cli(env, "export", "--out", str(out / "demo-0.yaml")).exit_code == 1  # a file is not a directory
    (out / "demo-1.yaml").unlink()
    os.mkfifo(out / "demo-1.yaml")  # reading or writing it would block until someone opens the other end
    blocked = _cli(env, "export", "--out", str(out), "--force")
    assert blocked.exit_code == 1 and f"not a regular file: {out / 'demo-1.yaml'}; nothing was written" in blocked.stderr


def test_help_documents_exit_codes_and_shows_no_value_for_flags() -> None:
    env = {"NO_COLOR": "1", "COLUMNS": "200"}
    root = CliRunner().invoke(app, ["--help"], env=env)
    assert root.exit_code == 0
    assert ("Exit codes: 0 success, no changes; 1 error (API failure, refused plan, usage error); "
            "2 changes present (plan --detailed-exitcode); 3 invalid manifests.") in " ".join(root.stdout.split())
    for command in ("validate", "plan", "apply", "diff", "export", "list", "run"):
        shown = CliRunner().invoke(app, [command, "--help"], env=env)
        assert shown.exit_code == 0, command
        assert "Exit 0" in shown.stdout, command
        # a flag takes no value: `--prune <bool>` read as if `--prune true` were the way to write it
        assert "<bool>" not in shown.stdout, command
    plan = " ".join(CliRunner().invoke(app, ["plan", "--help"], env=env).stdout.split())
    assert "2: changes, with --detailed-exitcode; 3: invalid manifests" in plan
    # options that take a value still show its type (older typer releases bracket it as [a|b])
    assert "--output -o <text|json|markdown>" in plan or "--output -o [text|json|markdown]" in plan


def test_diff_of_an_unknown_name_says_where_it_looked_and_suggests_the_closest(server: LocalServer,
                                                                               tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard())
    typo = _cli(env, "diff", "demo-Two-EU", "-p", str(root))
    assert typo.exit_code == 1
    assert f"no manifest in {root} declares a definition named 'demo-Two-EU'; did you mean 'demo-Two EU'?" in typo.stderr
    unknown = _cli(env, "diff", "zzz", "-p", str(root))
    assert unknown.exit_code == 1 and "4 are declared there" in unknown.stderr and "--path" in unknown.stderr


def test_apply_of_a_file_that_is_neither_plan_nor_manifest_says_what_apply_takes(tmp_path: Path) -> None:
    env = {"NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db", "DATAROBOT_ENDPOINT": None}
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk\n")
    result = CliRunner().invoke(app, ["apply", str(notes)], env=env)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert f"{notes} is not a saved plan: not JSON (line 1, column 1)" in result.stderr
    assert "manifests: *.yaml/*.yml files and directories" in result.stderr
    assert f"--out {notes}" not in result.stderr  # never suggest overwriting the user's file with a plan
    assert notes.read_text() == "remember the milk\n"


def test_plan_out_into_a_directory_or_an_unwritable_place_is_one_line_not_a_traceback(server: LocalServer,
                                                                                    tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", standard())
    (tmp_path / "plans").mkdir()
    into_dir = _cli(env, "plan", str(root), "--out", str(tmp_path / "plans"))
    assert into_dir.exit_code == 1
    assert into_dir.stderr == (f"error: --out {tmp_path / 'plans'} is a directory; give a file name, e.g. "
                               f"--out {tmp_path / 'plans' / 'plan.json'}\n")
    (tmp_path / "afile").write_text("x")
    under_file = _cli(env, "plan", str(root), "--out", str(tmp_path / "afile" / "plan.json"))
    assert under_file.exit_code == 1 and under_file.stderr.startswith(
        f"error: cannot save the plan to {tmp_path / 'afile' / 'plan.json'}: ")
