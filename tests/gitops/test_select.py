"""Selective runs: --selector, --only and plan --changed-since, pure and against the embedded
local service in a real git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconciler.engine.plan import ActionKind, build_plan
from reconciler.engine.select import (
    ChangedSet,
    Removed,
    Selection,
    SelectionError,
    parse_selectors,
)
from reconciler.engine.types import Desired, Live, Scope

SCOPE = Scope(name_prefix="demo-")


def _desired(name: str, n: int = 1) -> Desired:
    return Desired(name=name, body={"name": name}, comparable={"name": name, "enabled": True,
                                                             "batchPredictionJob": {"numConcurrent": n}})


def _live(name: str, n: int = 1, id_: str | None = None) -> Live:
    return Live(id=id_ or f"id-{name}", name=name, comparable={"name": name, "enabled": True,
                                                              "batchPredictionJob": {"numConcurrent": n}})


def _selected_plan(**kwargs: Any) -> Any:
    """The plan of a selection: engine.plan.build_plan, the one function every entry point uses."""
    return build_plan(**kwargs)


def test_parse_selectors() -> None:
    assert parse_selectors(["team=growth", "tier!=batch, env=prod"]) == (
        ("team", "growth", True), ("tier", "batch", False), ("env", "prod", True))
    for bad in ("team", "=x", "team=", "a=b=c"):
        with pytest.raises(SelectionError, match="expected LABEL=VALUE"):
            parse_selectors([bad])


def test_unselected_manifests_and_live_definitions_are_left_alone() -> None:
    desired = [_desired("demo-a", 2), _desired("demo-b", 2)]
    live = [_live("demo-a"), _live("demo-b"), _live("demo-stray")]
    plan = _selected_plan(desired=desired, selected=desired[:1], live=live,
                               selection=Selection(names=frozenset({"demo-a"})), scope=SCOPE, prune=True)
    assert [(a.kind, a.name) for a in plan.actions] == [(ActionKind.update, "demo-a")]
    assert plan.orphans == () and not plan.errors  # demo-b (unselected) and demo-stray are not pruned
    assert any("partial plan (--only demo-a): 1 of 2 manifest(s)" in w for w in plan.warnings)
    # the saved plan's fingerprint is the full one, so `apply plan.json` does not call it stale
    full = build_plan(desired=desired, live=live, scope=SCOPE)
    assert plan.fingerprint.digest != "" and set(plan.fingerprint.objects) == set(full.fingerprint.objects)


def test_only_a_name_without_manifest_selects_its_live_definition() -> None:
    live = [_live("demo-a"), _live("demo-old")]
    desired = [_desired("demo-a")]
    plan = _selected_plan(desired=desired, selected=[], live=live,
                               selection=Selection(names=frozenset({"demo-old"})), scope=SCOPE, prune=True)
    assert [(a.kind, a.name) for a in plan.actions] == [(ActionKind.delete, "demo-old")]
    typo = _selected_plan(desired=desired, selected=[], live=live,
                               selection=Selection(names=frozenset({"demo-nope"})), scope=SCOPE)
    assert typo.errored and not typo.applyable  # a name that selects nothing is an error, not a quiet no-op
    assert typo.errors[0].startswith("--only demo-nope: no manifest declares it and no live definition has that name")


def test_removed_manifests_are_deletions_and_the_guard_counts_the_whole_scope() -> None:
    changed = ChangedSet(ref="main", base="0" * 40, removed=(Removed(name="demo-gone"), Removed(name="demo-moved")))
    desired = [_desired("demo-moved")]  # moved to another file: still declared, not removed
    live = [_live("demo-gone"), _live("demo-moved"), *(_live(f"demo-{i}") for i in range(3))]
    selection = Selection(changed=changed)
    without = _selected_plan(desired=desired, selected=[], live=live, selection=selection, scope=SCOPE)
    assert without.orphans == ("demo-gone",) and not without.actions
    pruned = _selected_plan(desired=desired, selected=[], live=live, selection=selection, scope=SCOPE,
                                 prune=True, max_delete_fraction=0.25)
    assert [(a.kind, a.name) for a in pruned.actions] == [(ActionKind.delete, "demo-gone")]
    assert not pruned.errors  # 1 of 5 in scope, not 1 of 1
    refused = _selected_plan(desired=desired, selected=[], live=live, selection=selection, scope=SCOPE,
                                  prune=True, max_delete_fraction=0.1)
    assert refused.errors and "1 of 5" in refused.errors[0]


# --- the command line, in a real git repository, against the embedded local service ---------

CONFIG = """\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope: {namePrefix: demo-}
prune: {maxDeleteFraction: 0.5}
localService:
  seed:
    deployments: [{id: 64b0c0ffee000000000d0001, label: churn}]
    credentials: [{id: 64b0c0ffee000000000c0001, name: s3}]
"""

MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: {name}
  labels: {{team: {team}}}
spec:
  enabled: true
  schedule: {{cron: "0 2 * * *"}}
  batchPredictionJob:
    deploymentId: 64b0c0ffee000000000d0001
    numConcurrent: {n}
    intakeSettings: {{type: s3, url: "s3://bucket/{name}.csv", credentialId: 64b0c0ffee000000000c0001}}
    outputSettings: {{type: s3, url: "s3://bucket/{name}-out.csv", credentialId: 64b0c0ffee000000000c0001}}
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   check=True, capture_output=True, timeout=30)


def _write(repo: Path, file: str, *docs: tuple[str, str, int]) -> None:
    (repo / "specs" / file).write_text("---\n".join(MANIFEST.format(name=n, team=t, n=c) for n, t, c in docs))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "reconciler.yaml").write_text(CONFIG)
    _write(repo, "a.yaml", ("demo-a", "growth", 1))
    _write(repo, "b.yaml", ("demo-b", "risk", 1))
    _write(repo, "pair.yaml", ("demo-c", "risk", 1), ("demo-d", "growth", 1))
    _write(repo, "e.yaml", ("demo-e", "risk", 1))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "initial")
    monkeypatch.setenv("RECONCILER_LOCAL_DB_URL", f"sqlite:///{tmp_path}/local.db")
    monkeypatch.delenv("DATAROBOT_ENDPOINT", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(repo)
    assert _cli("apply", "specs", "--auto-approve").exit_code == 0
    return repo


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app_(), list(args), catch_exceptions=False)


def app_() -> Any:
    from reconciler.cli import app

    return app


def _plan_json(*args: str) -> dict[str, Any]:
    result = _cli("plan", "specs", "--output", "json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _kinds(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((a["kind"], a["name"]) for a in plan["actions"] if a["kind"] != "noop")


def test_selector_and_only_narrow_plan_and_apply(repo: Path) -> None:
    for name, team, file in (("demo-a", "growth", "a.yaml"), ("demo-b", "risk", "b.yaml")):
        _write(repo, file, (name, team, 5))
    (repo / "specs" / "e.yaml").unlink()  # removed, but not part of the selection
    assert _kinds(_plan_json("--selector", "team=growth")) == [("update", "demo-a")]
    assert _kinds(_plan_json("-l", "team!=growth")) == [("update", "demo-b")]
    assert _kinds(_plan_json("--only", "demo-b")) == [("update", "demo-b")]
    assert _kinds(_plan_json("--only", "demo-b", "--selector", "team=growth")) == []
    full = _plan_json("--prune")
    assert ("delete", "demo-e") in _kinds(full)

    applied = _cli("apply", "specs", "--selector", "team=risk", "--prune", "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "1 updated" in applied.stdout and "0 deleted" in applied.stdout  # demo-e is not team=risk's to prune
    assert _kinds(_plan_json("--prune")) == [("delete", "demo-e"), ("update", "demo-a")]

    bad = _cli("plan", "specs", "--selector", "team")
    assert bad.exit_code == 1 and "expected LABEL=VALUE" in bad.stderr


def test_saved_selected_plan_applies(repo: Path, tmp_path: Path) -> None:
    _write(repo, "a.yaml", ("demo-a", "growth", 3))
    out = tmp_path / "plan.json"
    assert _cli("plan", "specs", "--only", "demo-a", "--out", str(out)).exit_code == 0
    applied = _cli("apply", str(out))
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "1 updated" in applied.stdout
    refused = _cli("apply", str(out), "--only", "demo-a")
    assert refused.exit_code == 1 and "saved plan" in refused.stderr


def test_only_a_name_that_matches_nothing_is_an_error_in_every_command(repo: Path, tmp_path: Path) -> None:
    """A typo in --only used to print a warning and exit 0: a CI job "planned" nothing and passed."""
    out = tmp_path / "plan.json"
    for args in (("plan", "specs", "--only", "demo-nope"), ("plan", "specs", "--only", "demo-nope", "--detailed-exitcode"),
                 ("plan", "specs", "--only", "demo-nope", "--out", str(out)),
                 ("apply", "specs", "--only", "demo-nope", "--auto-approve")):
        result = _cli(*args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert "--only demo-nope: no manifest declares it and no live definition has that name" in result.stdout
        assert not out.exists()
    both = _cli("plan", "specs", "--only", "demo-a", "--only", "demo-nope")
    assert both.exit_code == 1 and "demo-nope" in both.stdout


def test_changed_since_includes_edits_new_files_and_removals(repo: Path) -> None:
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, "a.yaml", ("demo-a", "growth", 2))                    # edited, committed
    _git(repo, "rm", "-q", "specs/b.yaml")                             # file deleted
    _git(repo, "commit", "-qam", "edit a, delete b")
    _write(repo, "pair.yaml", ("demo-c", "risk", 1))                   # demo-d taken out of a file, uncommitted
    _write(repo, "new.yaml", ("demo-new", "growth", 1))                # untracked new file
    plan = _plan_json("--changed-since", "main")
    assert _kinds(plan) == [("create", "demo-new"), ("update", "demo-a")]
    assert sorted(plan["orphans"]) == ["demo-b", "demo-d"]  # removed in the range; demo-c and demo-e untouched
    pruned = _plan_json("--changed-since", "main", "--prune")
    assert _kinds(pruned) == [("create", "demo-new"), ("delete", "demo-b"), ("delete", "demo-d"),
                              ("update", "demo-a")]
    assert _kinds(_plan_json("--changed-since", "main", "--selector", "team=risk", "--prune")) == [
        ("delete", "demo-b")]

    markdown = _cli("plan", "specs", "--changed-since", "main", "--output", "markdown", "--detailed-exitcode")
    assert markdown.exit_code == 2
    assert "partial plan (--changed-since main)" in markdown.stdout

    # main moves on after the branch point: its own changes are not this branch's
    _git(repo, "checkout", "-q", "main")
    _write(repo, "e.yaml", ("demo-e", "risk", 9))
    _git(repo, "commit", "-qam", "main edits e")
    _git(repo, "checkout", "-q", "feature")
    assert "demo-e" not in json.dumps(_kinds(_plan_json("--changed-since", "main")))

    # the config changed: every manifest may look different, so all are planned
    (repo / "reconciler.yaml").write_text(CONFIG + "# touched\n")
    everything = _plan_json("--changed-since", "main")
    assert ("update", "demo-a") in _kinds(everything) and len(everything["actions"]) >= 4


def test_changed_since_errors_are_clear(repo: Path, tmp_path: Path) -> None:
    unknown = _cli("plan", "specs", "--changed-since", "origin/nope")
    assert unknown.exit_code == 1
    assert "--changed-since origin/nope" in unknown.stderr and "fetch-depth: 0" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    outside = tmp_path / "outside"
    (outside / "specs").mkdir(parents=True)
    (outside / "specs" / "a.yaml").write_text(MANIFEST.format(name="demo-a", team="growth", n=1))
    result = _cli("plan", str(outside / "specs"), "--changed-since", "main")
    assert result.exit_code == 1 and "not in a git repository" in result.stderr


def test_changed_since_follows_overlays_and_names_removals_with_variables(tmp_path: Path) -> None:
    from reconciler.gitops.changes import changed_since

    repo = tmp_path / "r"
    (repo / "specs").mkdir(parents=True)
    (repo / "overlays" / "prod").mkdir(parents=True)
    (repo / "reconciler.yaml").write_text(CONFIG)
    (repo / "specs" / "a.yaml").write_text(MANIFEST.format(name="demo-a", team="x", n=1))
    (repo / "specs" / "v.yaml").write_text(MANIFEST.format(name="demo-${ENV}-v", team="y", n=1))
    (repo / "overlays" / "prod" / "demo-a.yaml").write_text("spec: {enabled: false}\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    (repo / "overlays" / "prod" / "demo-a.yaml").write_text("spec: {enabled: true}\n")
    (repo / "specs" / "v.yaml").unlink()
    changed = changed_since("HEAD", paths=[repo / "specs"], overlays_dir=repo / "overlays" / "prod",
                            config_file=repo / "reconciler.yaml", variables={"ENV": "prod"})
    assert changed.overlay_names == {"demo-a"} and changed.files == frozenset() and not changed.config_changed
    assert [(r.name, dict(r.labels)) for r in changed.removed] == [("demo-prod-v", {"team": "y"})]
