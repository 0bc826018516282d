"""``export`` writes manifests a person would: a schedule as a cron string where the translation
is exact, no value equal to the API's default, labels and annotations kept from the manifest it
replaces; and a plan over the exported files still shows no changes. The corpus is this
repository's specs/ (every adapter: s3, jdbc, gcs, bigquery, snowflake, synapse, azure, datasphere,
localFile...) plus schedules cron cannot say exactly, against the embedded local service."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.contract.defaults import job_spec_defaults

ROOT = Path(__file__).resolve().parents[2]
EVERY_MINUTE = list(range(60))  # the five lists can say it; a cron "0-59" would come back as "*"


def _cli(env: dict[str, str | None], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)  # type: ignore[arg-type]


def _docs(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml")) if p.name != "reconciler.yaml"}


def test_export_is_readable_and_plans_no_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {"DATAROBOT_ENDPOINT": None, "DATAROBOT_API_TOKEN": None, "NO_COLOR": "1",
                                  "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db"}
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    sources = _docs(specs)
    churn = sources["churn-nightly.yaml"]
    churn["metadata"]["labels"] = {"team": "growth"}
    churn["metadata"]["annotations"] = {"owner": "growth@acme.test"}
    (specs / "churn-nightly.yaml").unlink()  # export names a file after metadata.name
    (specs / "demo-churn-nightly.yaml").write_text(yaml.safe_dump(churn, sort_keys=False))
    lists = dict(sources["fraud-hourly.yaml"], metadata={"name": "demo-every-minute"})
    lists["spec"] = dict({k: v for k, v in lists["spec"].items() if k != "name"}, enabled=True, schedule={
        "minute": EVERY_MINUTE, "hour": [3], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]})
    union = dict(sources["fraud-hourly.yaml"], metadata={"name": "demo-union-days"})
    union["spec"] = dict({k: v for k, v in union["spec"].items() if k != "name"}, enabled=True, schedule={
        "minute": [0, 30], "hour": [1, 2, 3, 4, 9], "dayOfMonth": [1, 15], "month": ["*"], "dayOfWeek": [1]})
    for doc in (lists, union):
        (specs / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    applied = _cli(env, "apply", str(specs), "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr

    out = tmp_path / "exported"
    exported = _cli(env, "export", "--out", str(out))
    assert exported.exit_code == 0, exported.stderr
    docs = _docs(out)
    assert len(docs) == len(sources) + 2
    scheduled = {name: doc["spec"]["schedule"] for name, doc in docs.items() if "schedule" in doc["spec"]}
    assert len(scheduled) >= 5
    assert scheduled["demo-union-days.yaml"] == {"cron": "0,30 1-4,9 1,15 * 1"}
    assert scheduled["demo-every-minute.yaml"]["minute"] == EVERY_MINUTE  # not exact as cron: the lists stay
    assert all(set(s) == {"cron"} for name, s in scheduled.items() if name != "demo-every-minute.yaml")
    for name, doc in docs.items():
        job = doc["spec"]["batchPredictionJob"]
        filled = job_spec_defaults(job)
        for key, value in job.items():  # nothing written that the API would fill in anyway
            alone = job_spec_defaults({k: v for k, v in job.items() if k != key})
            assert alone.get(key) != value or key not in alone, (name, key)
        assert "chunkSize" not in job or filled["chunkSize"] != "auto"
    assert "labels" not in docs["demo-churn-nightly.yaml"]["metadata"]  # the API keeps no labels

    shutil.copy(specs / "reconciler.yaml", out / "reconciler.yaml")
    assert _cli(env, "validate", str(out)).exit_code == 0
    again = _cli(env, "plan", str(out), "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes." in again.stdout, again.stdout

    # exported over a manifest that has labels and annotations: they are kept
    shutil.copy(specs / "demo-churn-nightly.yaml", out / "demo-churn-nightly.yaml")
    over = _cli(env, "export", "--out", str(out), "--force")
    assert over.exit_code == 0, over.stderr
    kept = yaml.safe_load((out / "demo-churn-nightly.yaml").read_text())
    assert kept["metadata"]["labels"] == {"team": "growth"}
    assert kept["metadata"]["annotations"] == {"owner": "growth@acme.test"}
    assert kept["spec"]["schedule"] == {"cron": "0 2 * * *"}
    unchanged = _cli(env, "export", "--out", str(out))  # the same text again: nothing to force
    assert unchanged.exit_code == 0, unchanged.stderr
    final = _cli(env, "plan", str(out), "--detailed-exitcode", "--selector", "team=growth")
    assert final.exit_code == 0 and "No changes." in final.stdout, final.stdout
