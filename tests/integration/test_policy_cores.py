"""`reconciler validate` over enough manifests to judge them on every core (reconciler.cores): the
command, run as its own process, reports exactly the issues that judging them one by one in one
process gives, in the same order (deny, warn, a rule that fails, a rule that is not a bool, a
rewritten matches())."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler import cores
from reconciler.engine import policy
from reconciler.specs.config import load_config
from reconciler.specs.validate import validate_paths

from .specs import PROJECT, manifest

ROOT = Path(__file__).resolve().parents[2]

RULES = """\
policies:
  rules:
    - name: prefixed
      expression: manifest.metadata.name.startsWith('demo-')
      message: names start with demo-
    - name: small
      severity: warn
      expression: manifest.spec.batchPredictionJob.numConcurrent <= 4
      message: at most 4 at once
    - name: tier-text
      selector: tier
      expression: labels.tier
      message: tier is a word
    - name: url-pattern
      severity: warn
      expression: manifest.spec.batchPredictionJob.intakeSettings.url.matches('^s3://bucket/demo-\\\\d+[.]csv$')
      message: each definition reads its own file
"""


def test_validate_on_every_core_reports_what_one_process_reports(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    count = cores.MINIMUM + 100
    (tmp_path / "reconciler.yaml").write_text(PROJECT + RULES.replace("selector: tier\n", "selector: tier=gold\n"))
    specs = tmp_path / "specs"
    specs.mkdir()
    for part in range(count // 100):
        docs = []
        for i in range(part * 100, part * 100 + 100):
            doc = manifest(f"demo-{i:05d}" if i % 3 else f"other-{i:05d}")
            if i % 4:  # the others have none: "small" cannot be evaluated there
                doc["spec"]["batchPredictionJob"]["numConcurrent"] = 1 + i % 9
            if i % 5 == 0:
                doc["metadata"]["labels"] = {"tier": "gold"}
            docs.append(doc)
        (specs / f"part-{part:02d}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "reconciler", "validate", "specs", "-o", "json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"})
    assert done.returncode == 3, done.stderr
    printed = json.loads(done.stdout)

    monkeypatch.chdir(tmp_path)  # the paths as the command names them
    report = validate_paths(["specs"])
    rules = policy.compile_policies(load_config(Path("reconciler.yaml")).policies.rules)
    one = policy.manifest_issues(rules, report.documents, target=None)  # one process
    report.issues = sorted([*report.issues, *one], key=lambda i: (i.file, i.line, i.col, i.field))
    assert [r.rule.name for r in rules.manifest_rules if r.original is not None] == ["url-pattern"]  # rewritten
    assert len(report.documents) == count and printed == report.as_json()
    issues = [*printed["errors"], *printed["warnings"]]
    assert {"policy prefixed", "policy small", "policy tier-text", "policy url-pattern"} <= {i["field"] for i in issues}
    messages = " ".join(i["message"] for i in issues)
    assert "could not be evaluated" in messages and "not a bool" in messages
