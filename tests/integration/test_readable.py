"""Readable plans: a create lists what its manifest sets and folds the API's defaults into one
line (``--show-defaults`` lists them; JSON keeps all), and ``diff --exit-code`` exits 1 on
differences. Against the embedded local service, as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconciler.cli import app

from .specs import CREDENTIAL, DATASTORE, DEPLOYMENT, PROJECT, manifest, write_specs

SEEDED = (PROJECT + "localService:\n  seed:\n"
          f"    deployments: [{{id: {DEPLOYMENT}, label: dep}}]\n"
          f"    credentials: [{{id: {CREDENTIAL}, name: cred, credentialType: s3}}]\n"
          f"    dataStores: [{{id: {DATASTORE}, canonicalName: store, type: jdbc}}]\n")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    monkeypatch.chdir(tmp_path)
    return {"DATAROBOT_ENDPOINT": None, "DATAROBOT_API_TOKEN": None, "NO_COLOR": "1",
            "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db"}


def _cli(env: dict[str, str | None], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)  # type: ignore[arg-type]


def _manifest() -> dict[str, Any]:
    doc = manifest("demo-readable", enabled=True, schedule={"cron": "0 2 * * *"})
    job = doc["spec"]["batchPredictionJob"]
    job["csvSettings"] = {"delimiter": ";"}  # set: shown; quotechar and encoding are defaults
    job["abortOnError"] = True  # set, but equal to the default: folded like one
    return doc


def test_a_create_folds_the_api_defaults_into_one_line(env: dict[str, str | None], tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [_manifest()], project=SEEDED)
    text = _cli(env, "plan", str(root))
    assert text.exit_code == 0, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    folded = [line for line in lines if "defaults (--show-defaults lists them)" in line]
    assert len(folded) == 1
    count = int(re.search(r"\+ (\d+) defaults", folded[0]).group(1))  # type: ignore[union-attr]
    shown = [line.strip() for line in lines if line.startswith("      + ") and "defaults (" not in line]
    assert '+ batchPredictionJob.csvSettings.delimiter = ";"' in shown
    assert '+ batchPredictionJob.intakeSettings.url = "s3://bucket/demo-readable.csv"' in shown
    assert '+ schedule.hour = [2]' in shown and "+ enabled = true" in shown
    for default in ("chunkSize", "quotechar", "encoding", "abortOnError", "maxExplanations", "intakeSettings.format"):
        assert default not in text.stdout, default

    full = _cli(env, "plan", str(root), "--show-defaults")
    every = [line for line in full.stdout.splitlines() if line.startswith("      + ")]
    assert len(every) == len(shown) + count and "--show-defaults" not in full.stdout
    assert '+ batchPredictionJob.chunkSize = "auto"' in full.stdout
    assert '+ batchPredictionJob.csvSettings.quotechar = "\\""' in full.stdout

    markdown = _cli(env, "plan", str(root), "-o", "markdown").stdout
    assert f"+ {count} defaults (--show-defaults lists them)" in markdown and "chunkSize" not in markdown
    doc = json.loads(_cli(env, "plan", str(root), "-o", "json").stdout)
    paths = {c["path"] for a in doc["actions"] for c in a["changes"]}
    assert "batchPredictionJob.chunkSize" in paths and len(paths) == len(every)  # JSON keeps everything


def test_diff_exit_code_exits_1_on_differences_only(env: dict[str, str | None], tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [_manifest()], project=SEEDED)
    assert _cli(env, "diff", "-p", str(root)).exit_code == 0  # without the flag: 0 either way
    different = _cli(env, "diff", "-p", str(root), "--exit-code")
    assert different.exit_code == 1 and "create demo-readable" in different.stdout
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    same = _cli(env, "diff", "-p", str(root), "--exit-code")
    assert same.exit_code == 0 and "No differences." in same.stdout
    one = _cli(env, "diff", "demo-readable", "-p", str(root), "--exit-code")
    assert one.exit_code == 0 and "live matches the manifest" in one.stdout
    changed = _manifest()
    changed["spec"]["batchPredictionJob"]["csvSettings"]["delimiter"] = "|"
    write_specs(root, [changed], project=SEEDED)
    drift = _cli(env, "diff", "demo-readable", "-p", str(root), "--exit-code")
    assert drift.exit_code == 1 and '~ batchPredictionJob.csvSettings.delimiter: ";" -> "|"' in drift.stdout
