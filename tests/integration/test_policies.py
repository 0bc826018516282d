"""Policies end to end against the served local service: manifest rules in validate and plan
(per target), action rules refusing plan and apply with nothing written, warnings kept in the JSON
plan and shown in the markdown a PR comment posts, and `reconciler policy test`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.contract import validators
from reconciler.service.testing import LocalServer

from .conftest import TOKEN
from .specs import manifest, write_specs

ROOT = Path(__file__).resolve().parents[2]

RULES = """\
policies:
  rules:
    - name: max-concurrency-prod
      targets: [prod]
      expression: "!has(manifest.spec.batchPredictionJob.numConcurrent) || manifest.spec.batchPredictionJob.numConcurrent <= 8"
      message: numConcurrent may be at most 8 in prod
    - name: no-critical-delete
      on: action
      selector: tier=critical
      expression: action.kind != 'delete'
      message: critical definitions are never deleted
    - name: frozen-concurrency
      on: action
      expression: action.kind != 'update' || !('batchPredictionJob.numConcurrent' in action.changes)
      message: numConcurrent changes go through the capacity review, not a plan
    - name: created-scheduled
      on: action
      severity: warn
      expression: action.kind != 'create' || has(desired.schedule)
      message: a new definition without a schedule runs only when started by hand
"""


NO_DELETE_RULE = """\
    - name: no-critical-delete
      on: action
      selector: tier=critical
      expression: action.kind != 'delete'
      message: critical definitions are never deleted
"""


def _project(server: LocalServer, rules: str = RULES) -> str:
    return (f"apiVersion: reconciler.io/v1alpha1\nkind: Project\nscope: {{namePrefix: pol-}}\n"
            f"targets:\n  prod: {{endpoint: '{server.api_url}', tokenFrom: {{env: PROD_TOKEN}}}}\n"
            f"  dev: {{endpoint: '{server.api_url}', tokenFrom: {{env: PROD_TOKEN}}}}\n" + rules)


def _cli(tmp_path: Path, *args: str, code: int) -> Any:
    env = {"PROD_TOKEN": TOKEN, "NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return result


def _live(server: LocalServer) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=server.api_url, headers={"Authorization": f"Token {TOKEN}"}) as c:
        items = c.get("batchPredictionJobDefinitions/", params={"limit": 100}).json()["data"]
    return {item["name"]: item for item in items}


def test_manifest_rules_make_a_manifest_invalid_for_one_target_only(server: LocalServer, tmp_path: Path) -> None:
    big = manifest("pol-big")
    big["spec"]["batchPredictionJob"]["numConcurrent"] = 16
    root = write_specs(tmp_path / "specs", [big], project=_project(server))
    _cli(tmp_path, "validate", str(root), "--target", "dev", code=0)
    refused = _cli(tmp_path, "validate", str(root), "--target", "prod", code=3)
    assert f"{root / 'pol-big.yaml'}:4:9: policy max-concurrency-prod: numConcurrent may be at most 8 in prod" \
        in refused.stdout
    assert "hint: rule at " in refused.stdout and "reconciler.yaml:11:19" in refused.stdout
    as_json = json.loads(_cli(tmp_path, "validate", str(root), "--target", "prod", "-o", "json", code=3).stdout)
    assert [e["field"] for e in as_json["errors"]] == ["policy max-concurrency-prod"]
    _cli(tmp_path, "plan", str(root), "--target", "prod", code=3)  # plan validates (and judges) first
    _cli(tmp_path, "apply", "-p", str(root), "--target", "prod", "--auto-approve", code=3)
    assert "pol-big" not in _live(server)


def test_action_rules_refuse_plan_and_apply_and_nothing_is_written(server: LocalServer, tmp_path: Path) -> None:
    critical = manifest("pol-critical")
    critical["metadata"]["labels"] = {"tier": "critical"}
    critical["spec"]["batchPredictionJob"]["numConcurrent"] = 2
    root = write_specs(tmp_path / "specs", [critical, manifest("pol-other")], project=_project(server))

    # a warn: shown, kept in the JSON plan (valid against plan.schema.json), and the apply goes on
    shown = json.loads(_cli(tmp_path, "plan", str(root), "--target", "prod", "-o", "json", code=0).stdout)
    validators.validator("plan").validate(shown)
    assert shown["applyable"] and [(v["rule"], v["severity"], v["subject"]) for v in shown["policy"]["verdicts"]] == [
        ("created-scheduled", "warn", "pol-critical"), ("created-scheduled", "warn", "pol-other")]
    assert "policy created-scheduled warns on create pol-critical: a new definition without a schedule runs only when started by hand" \
        in shown["warnings"]
    ok = tmp_path / "ok.json"  # saved and applied under the same rules
    _cli(tmp_path, "plan", str(root), "--target", "prod", "--out", str(ok), code=0)
    _cli(tmp_path, "apply", str(ok), "--config", str(root / "reconciler.yaml"), "--target", "prod", "--auto-approve",
         code=0)
    before = _live(server)
    assert before["pol-critical"]["batchPredictionJob"]["numConcurrent"] == 2

    # a deny on an update: plan says refused; apply exits 1 and the live definition is unchanged
    critical["spec"]["batchPredictionJob"]["numConcurrent"] = 4
    critical["spec"]["batchPredictionJob"]["intakeSettings"]["url"] = "s3://bucket/moved.csv"
    write_specs(root, [critical, manifest("pol-other")], project=_project(server))
    plan = _cli(tmp_path, "plan", str(root), "--target", "prod", code=1)  # a refused plan is an error
    assert ("error: policy frozen-concurrency denied update pol-critical: numConcurrent changes go through the "
            "capacity review, not a plan") in plan.stdout + plan.stderr
    markdown = _cli(tmp_path, "plan", str(root), "--target", "prod", "-o", "markdown", code=1).stdout
    assert "**Plan refused.**" in markdown and ":x: policy frozen-concurrency denied update pol-critical" in markdown
    refused = _cli(tmp_path, "apply", "-p", str(root), "--target", "prod", "--auto-approve", code=1)
    assert "frozen-concurrency" in refused.stdout + refused.stderr
    after = _live(server)["pol-critical"]
    assert after["batchPredictionJob"]["numConcurrent"] == 2 and after["updated"] == before["pol-critical"]["updated"]
    assert after["batchPredictionJob"]["intakeSettings"]["url"] == "s3://bucket/pol-critical.csv"

    # a deny on a delete: plan --destroy is refused (and not saved) ...
    critical["spec"]["batchPredictionJob"]["numConcurrent"] = 2
    critical["spec"]["batchPredictionJob"]["intakeSettings"]["url"] = "s3://bucket/pol-critical.csv"
    write_specs(root, [critical, manifest("pol-other")], project=_project(server))
    saved = tmp_path / "destroy.json"
    refused = _cli(tmp_path, "plan", str(root), "--target", "prod", "--destroy", "--force", "--out", str(saved), code=1)
    assert "policy no-critical-delete denied delete pol-critical" in refused.stdout + refused.stderr
    assert not saved.exists()
    # ... and a plan saved before the rule existed is not applied once the rules changed
    assert NO_DELETE_RULE in RULES
    write_specs(root, [critical, manifest("pol-other")], project=_project(server, RULES.replace(NO_DELETE_RULE, "")))
    _cli(tmp_path, "plan", str(root), "--target", "prod", "--destroy", "--force", "--out", str(saved), code=0)
    assert json.loads(saved.read_text())["policy"]["verdicts"] == []
    write_specs(root, [critical, manifest("pol-other")], project=_project(server))
    stale = _cli(tmp_path, "apply", str(saved), "--config", str(root / "reconciler.yaml"), "--target", "prod",
                 "--auto-approve", code=1)
    assert "was judged by other policy rules than the project's now" in stale.stdout + stale.stderr
    assert {"pol-critical", "pol-other"} <= set(_live(server))


def test_policy_test_runs_the_examples_and_fails_on_a_mismatch(tmp_path: Path) -> None:
    example = tmp_path / "policies"
    shutil.copytree(ROOT / "examples" / "policies", example)
    passed = _cli(tmp_path, "policy", "test", "--config", str(example / "reconciler.yaml"), code=0)
    assert passed.stdout.rstrip().endswith("13 passed, 0 failed")
    one = _cli(tmp_path, "policy", "test", str(example / "policies" / "office-hours.yaml"), "-o", "json", code=0)
    assert json.loads(one.stdout)["passed"] == 5
    broken = example / "policies" / "concurrency.yaml"
    broken.write_text(broken.read_text().replace("expect: {deny: [max-concurrency-prod]}", "expect: {}", 1)
                      .replace("    target: prod\n", "    target: prod\n    # edited\n", 1))
    failed = _cli(tmp_path, "policy", "test", str(broken), code=1)
    assert "FAIL 16 workers in prod is denied" in failed.stdout and "unexpected deny: max-concurrency-prod" in failed.stdout
    assert "policy max-concurrency-prod denied acme-a:" in failed.stdout and failed.stdout.rstrip().endswith(
        "2 passed, 1 failed")
    typo = example / "policies" / "typo.yaml"
    typo.write_text("apiVersion: reconciler.io/v1alpha1\nkind: Policy\nrules:\n  - name: r\n    expression: 'true'\n"
                    "    message: m\ntests:\n  - name: t\n    manifest: {}\n    expect: {deny: [rr]}\n")
    assert "expects rule(s) that do not exist: rr" in _cli(tmp_path, "policy", "test", str(typo), code=1).stdout
    empty = example / "policies" / "empty.yaml"
    empty.write_text("apiVersion: reconciler.io/v1alpha1\nkind: Policy\nrules: []\n")
    assert "no test cases in" in _cli(tmp_path, "policy", "test", str(empty), code=1).stderr


def test_the_readme_policies_example_runs_as_written(tmp_path: Path) -> None:
    """README "Controls" > "Policies": its shell block in bash, from the repository root, on a copy."""
    section = (ROOT / "README.md").read_text().split("### Policies", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAROBOT_", "RECONCILER_"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "NO_COLOR": "1",
                "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    done = subprocess.run(["bash", "-c", block.replace("/tmp/policies", str(tmp_path / "policies"))], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in out, out
    assert "13 passed, 0 failed" in out and "OK: 1 manifest(s) in 1 file(s)" in out
    assert ("specs/churn-nightly.yaml:4:9: policy max-concurrency-prod: numConcurrent may be at most 8 in prod" in out
            and "exit 3" in out)
    assert "Apply complete: 1 created" in out
    assert "error: policy no-critical-delete denied delete acme-churn-nightly" in out and out.rstrip().endswith("exit 1")
