"""Hostile input to the controls (issue #13): policy files that leave the project, CEL rules that
exhaust the runtime, literals pasted where a secret reference belongs, notification secret files
that cannot be read, time zones in window crons. Each is a located error from ``validate`` and
``plan`` (never a traceback), ``apply`` writes nothing, and no secret reaches the output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.testing import LocalServer

from .conftest import TOKEN
from .specs import PROJECT, manifest, write_specs

L10 = "[1,2,3,4,5,6,7,8,9,10]"
OVER_BUDGET = f"{L10}.all(a, {L10}.all(b, {L10}.all(c, {L10}.all(d, true))))"  # 10,000 iterations


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"NO_COLOR": "1", **env}, catch_exceptions=False)


def _plan_env(tmp_path: Path) -> dict[str, str]:
    return {"RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/plan.db"}


def _line(file: Path, text: str) -> int:
    return next(i for i, line in enumerate(file.read_text().splitlines(), 1) if text in line)


def _no_traceback(result: Any) -> None:
    assert "Traceback" not in result.stdout + result.stderr and "internal error" not in result.stdout + result.stderr


# -- policy files ----------------------------------------------------------------------------------

def _project(root: Path, config: str) -> Path:
    """``root/reconciler.yaml`` and one manifest in ``root/specs`` (policy and secret files go
    beside them, outside the manifests' directory); returns the manifests' directory."""
    specs = write_specs(root / "specs", [manifest("demo-a")], project=None)
    (root / "reconciler.yaml").write_text(config)
    return specs


def test_a_policy_file_outside_the_project_is_a_located_error(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "allow-all.yaml"
    outside.parent.mkdir()
    outside.write_text("apiVersion: reconciler.io/v1alpha1\nkind: Policy\nrules: []\n")
    root = tmp_path / "project"
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "ok.yaml").write_text(outside.read_text())
    (root / "policies" / "linked.yaml").symlink_to(outside)
    (root / "policies" / "inside-link.yaml").symlink_to(root / "policies" / "ok.yaml")
    config = root / "reconciler.yaml"
    for written, shown in ((str(outside), f"it resolves to {outside}"),
                           ("../elsewhere/allow-all.yaml", f"it resolves to {outside}"),
                           ("policies/linked.yaml", f"it resolves through a symbolic link to {outside}")):
        specs = _project(root, PROJECT + f"policies:\n  files: ['{written}']\n")
        for args, env in ((("validate", str(specs)), {}), (("plan", str(specs)), _plan_env(tmp_path))):
            result = _cli(env, *args)
            _no_traceback(result)
            assert result.exit_code == 1, (written, result.stdout, result.stderr)
            out = result.stdout + result.stderr
            assert f"reconciler.yaml:{_line(config, 'files:')}:11: policies.files[0]: policy file {written!r} is " \
                   f"outside the project: {shown}" in out
            assert "hint: keep policy files in the project's directory" in out
    # inside the project, a symlink that stays inside included
    specs = _project(root, PROJECT + "policies:\n  files: [policies/ok.yaml, policies/inside-link.yaml]\n")
    assert _cli({}, "validate", str(specs)).exit_code == 0


# -- CEL that exhausts the runtime -----------------------------------------------------------------

def test_a_rule_over_the_runtimes_iteration_budget_is_a_located_verdict(tmp_path: Path) -> None:
    project = PROJECT + ("policies:\n  rules:\n"
                         f"    - {{name: nested, expression: '{OVER_BUDGET}', message: too much}}\n"
                         "    - {name: fine, expression: 'true', message: never}\n"
                         f"    - {{name: nested-action, on: action, expression: '{OVER_BUDGET}', message: m}}\n"
                         "    - {name: fine-action, on: action, expression: 'true', message: m}\n")
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=project)
    validated = _cli({}, "validate", str(root))
    _no_traceback(validated)
    assert validated.exit_code == 3
    assert (f"{root / 'demo-a.yaml'}:4:9: policy nested: too much (the rule could not be evaluated: INTERNAL: "
            "Iteration budget exceeded") in validated.stdout
    assert f"hint: rule at {root / 'reconciler.yaml'}:9:" in validated.stdout  # the rule's own place
    assert "policy fine" not in validated.stdout
    # the action rule the same way, in plan (the manifest rule removed)
    project = project.replace(f"    - {{name: nested, expression: '{OVER_BUDGET}', message: too much}}\n", "")
    write_specs(root, [manifest("demo-a")], project=project)
    planned = _cli(_plan_env(tmp_path), "plan", str(root))
    _no_traceback(planned)
    assert planned.exit_code == 1
    assert "error: policy nested-action denied create demo-a: m (the rule could not be evaluated: INTERNAL: " \
           "Iteration budget exceeded" in planned.stdout + planned.stderr


def test_rules_too_big_to_combine_are_judged_one_by_one(tmp_path: Path) -> None:
    """Twelve rules of 6,200 characters each compile alone, but as one program they pass the
    runtime's 100,000-character limit: that was an internal error."""
    big = " && ".join(["true"] * 1240)
    rules = "".join(f"    - {{name: big-{i}, expression: '{big}', message: m}}\n" for i in range(12))
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=PROJECT + "policies:\n  rules:\n" + rules)
    result = _cli({}, "validate", str(root))
    _no_traceback(result)
    assert result.exit_code == 0 and "OK: 1 manifest(s)" in result.stdout
    broken = rules.replace("big-11, expression: '", "big-11, expression: 'false && ")
    write_specs(root, [manifest("demo-a")], project=PROJECT + "policies:\n  rules:\n" + broken)
    result = _cli({}, "validate", str(root))
    assert result.exit_code == 3 and "policy big-11: m" in result.stdout and "policy big-10" not in result.stdout


# -- secrets ---------------------------------------------------------------------------------------

def test_a_literal_pasted_where_a_secret_reference_belongs_is_never_echoed(tmp_path: Path) -> None:
    url = "https://hooks.example.com/services/T0KEN-7c1f"
    key = "sk-live-4b9a"
    project = PROJECT + ("notifications:\n  - name: ops\n"
                         f"    webhook: {{urlFrom: '{url}', secretFrom: {{env: '{key}'}}}}\n")
    doc = manifest("demo-a")
    doc["spec"]["batchPredictionJob"]["predictionInstance"] = {"hostName": "pred.example.com",
                                                               "apiKeyFrom": "sk-pasted-91e0"}
    root = write_specs(tmp_path / "specs", [doc], project=project)
    config = root / "reconciler.yaml"
    for args, env in ((("validate", str(root)), {}), (("plan", str(root)), _plan_env(tmp_path))):
        result = _cli(env, *args)
        out = result.stdout + result.stderr
        _no_traceback(result)
        assert result.exit_code in (1, 3)
        for secret in (url, "T0KEN-7c1f", key, "sk-pasted-91e0"):
            assert secret not in out, (secret, out)
        line = _line(config, "urlFrom")
        assert (f"reconciler.yaml:{line}:24: notifications[0].webhook.urlFrom: expected a reference {{env: NAME}} "
                "or {file: PATH}, got a string (not shown: it may be a secret)") in out
        assert "hint: write urlFrom: {env: NAME} (NAME: the environment variable holding the value) or " \
               "urlFrom: {file: path/to/secret}; never the secret itself" in out
        assert "notifications[0].webhook.secretFrom.env: expected an environment variable name, got a string " \
               "(not shown: it may be a secret)" in out
    validated = _cli({}, "validate", str(root)).stdout
    assert ("spec.batchPredictionJob.predictionInstance.apiKeyFrom: expected a reference {env: NAME} or "
            "{file: PATH}, got a string (not shown: it may be a secret)") in validated


def test_notification_secret_files_that_cannot_be_read_are_located(server: LocalServer, tmp_path: Path) -> None:
    root = tmp_path / "project"
    secrets = root / "secrets"
    secrets.mkdir(parents=True)
    outside = tmp_path / "outside.url"
    outside.write_text("https://hooks.example.com/OUTSIDE-TOKEN")
    (secrets / "out-link.url").symlink_to(outside)
    (secrets / "a-directory").mkdir()
    os.mkfifo(secrets / "a-pipe")
    (secrets / "huge.url").write_text("x" * (64 * 1024 + 1))
    (secrets / "loop.url").symlink_to(secrets / "loop.url")
    (secrets / "good.url").write_text("https://hooks.example.com/GOOD-TOKEN")
    files = {"outside": str(outside), "linked": "secrets/out-link.url", "directory": "secrets/a-directory",
             "pipe": "secrets/a-pipe", "huge": "secrets/huge.url", "loop": "secrets/loop.url",
             "missing": "secrets/not-yet.url", "good": "secrets/good.url"}
    specs = _project(root, PROJECT + "notifications:\n" + "".join(
        f"  - name: {name}\n    webhook: {{urlFrom: {{file: '{file}'}}}}\n" for name, file in files.items()))
    config = root / "reconciler.yaml"

    def at(name: str) -> str:
        index = list(files).index(name)
        return f"reconciler.yaml:{_line(config, f'name: {name}') + 1}:31: notifications[{index}].webhook.urlFrom.file: "

    result = _cli({}, "validate", str(specs))
    _no_traceback(result)
    out = result.stdout
    assert result.exit_code == 3, out
    assert at("outside") + f"secret file {str(outside)!r} is outside the project: it resolves to {outside}" in out
    assert at("linked") + f"secret file 'secrets/out-link.url' is outside the project: it resolves to {outside} " \
                          "(through a symbolic link)" in out
    assert "hint: keep it inside the project, or allow its directory with `secrets: {allowedDirs: [DIR]}`" in out
    assert at("directory") + f"secret file {str(secrets / 'a-directory')!r} is not a regular file" in out
    assert at("pipe") + f"secret file {str(secrets / 'a-pipe')!r} is not a regular file" in out
    assert at("huge") + f"secret file {str(secrets / 'huge.url')!r} is 65537 bytes, over the 65536-byte limit" in out
    assert at("loop") + f"cannot look at secret file {str(secrets / 'loop.url')!r}: Too many levels of symbolic " \
                        "links" in out
    assert at("missing").replace(": notifications", ": warning: notifications") + \
        f"secret file {str(secrets / 'not-yet.url')!r} does not exist (now)" in out
    assert "6 error(s), 1 warning(s)" in out and "notifications[7]" not in out
    assert "TOKEN" not in out
    # plan and apply refuse before anything is written
    env = {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN}
    applied = _cli(env, "apply", str(specs), "--auto-approve")
    _no_traceback(applied)
    assert applied.exit_code == 1 and at("outside") in applied.stdout + applied.stderr
    listed = _cli(env, "list", "-o", "json")
    assert listed.exit_code == 0 and "demo-a" not in listed.stdout
    # the missing file alone is no reason to refuse: it may be mounted where the commands run
    specs = _project(root, PROJECT + "notifications:\n  - name: missing\n    webhook: {urlFrom: {file: nope.url}}\n")
    assert _cli({}, "validate", str(specs)).exit_code == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode; the other cases run as root")
def test_a_notification_secret_file_this_user_cannot_read_is_located(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "hook.url").write_text("https://hooks.example.com/T")
    (root / "hook.url").chmod(0)
    specs = _project(root, PROJECT + "notifications:\n  - name: ops\n    webhook: {urlFrom: {file: hook.url}}\n")
    result = _cli({}, "validate", str(specs))
    assert result.exit_code == 3
    assert f"notifications[0].webhook.urlFrom.file: secret file {str(root / 'hook.url')!r} cannot be read by this " \
           "user (permission denied)" in result.stdout


# -- window time zones -----------------------------------------------------------------------------

def test_a_time_zone_in_a_window_cron_is_named_as_such(tmp_path: Path) -> None:
    project = PROJECT + ("syncWindows:\n"
                         "  - {kind: deny, schedule: 'CRON_TZ=Mars/Olympus 0 22 * * 5', duration: 1h}\n"
                         "  - {kind: deny, schedule: '0 22 * * 5 Europe/Paris', duration: 1h}\n")
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=project)
    result = _cli({}, "validate", str(root))
    _no_traceback(result)
    assert result.exit_code == 3
    out = result.stdout
    assert ("reconciler.yaml:8:28: syncWindows[0].schedule: sync window schedule 'CRON_TZ=Mars/Olympus 0 22 * * 5': "
            "a time zone prefix ('CRON_TZ=Mars/Olympus') is not supported: schedules are in UTC") in out
    assert "hint: remove 'CRON_TZ=Mars/Olympus' and write the times in UTC" in out
    assert ("reconciler.yaml:9:28: syncWindows[1].schedule: sync window schedule '0 22 * * 5 Europe/Paris': "
            "a time zone ('Europe/Paris') is not supported: schedules are in UTC") in out
    # a time zone field of its own: the schema has none
    write_specs(root, [manifest("demo-a")], project=PROJECT + (
        "syncWindows:\n  - {kind: deny, schedule: '0 22 * * 5', duration: 1h, timezone: Europe/Paris}\n"))
    result = _cli({}, "validate", str(root))
    assert result.exit_code == 3
    assert "reconciler.yaml:8:56: syncWindows[0].timezone: unknown field 'timezone'" in result.stdout
