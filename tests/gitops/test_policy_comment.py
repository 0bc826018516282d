"""`ci comment PATHS` with policies: a plan an action rule refuses is posted with its violations
on the pull request, and the command exits 1 as plan does."""

from __future__ import annotations

from pathlib import Path

from .test_github import PR, FakeGitHub, _run, github  # noqa: F401 (the fixture)

PROJECT = """\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope: {namePrefix: demo-}
localService:
  seed:
    deployments: [{id: 64b0c0ffee000000000d0001, label: stand-in}]
policies:
  rules:
    - name: no-new-critical
      on: action
      selector: tier=critical
      expression: action.kind != 'create'
      message: critical definitions are created by the platform team
"""
MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata: {name: demo-churn, labels: {tier: critical}}
spec:
  batchPredictionJob:
    deploymentId: 64b0c0ffee000000000d0001
    intakeSettings: {type: s3, url: "s3://b/in.csv"}
    outputSettings: {type: s3, url: "s3://b/out.csv"}
"""


def test_a_refused_plan_is_posted_with_its_violations(github: FakeGitHub, tmp_path: Path) -> None:  # noqa: F811
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "reconciler.yaml").write_text(PROJECT)
    (specs / "churn.yaml").write_text(MANIFEST)
    ran = _run(github, str(specs), "--pr", str(PR), extra_env={"RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/l.db"})
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    (comment,) = github.comments
    body = comment["body"]
    assert "**Plan refused.**" in body
    assert (":x: policy no-new-critical denied create demo-churn: critical definitions are created by the platform "
            "team") in body
