"""Environments: variables and overlays per target, with errors located in the file at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.specs import environments as env
from reconciler.specs.config import Scope, TargetConfig, parse_config, parse_target
from reconciler.specs.load import load_paths, load_text

MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: demo-churn
spec:
  enabled: true
  schedule: {cron: "0 2 * * *"}
  batchPredictionJob:
    deploymentId: ${DEPLOYMENT}
    numConcurrent: ${CONCURRENCY}
    intakeSettings:
      type: s3
      url: s3://${BUCKET}/in.csv
      credentialId: 64b0c0ffee000000000c0001
    outputSettings:
      type: s3
      url: "s3://${BUCKET}/out-$${NOT_A_VAR}.csv"
      credentialId: 64b0c0ffee000000000c0001
"""

RAW_TARGETS: dict[str, Any] = {
    "dev": {"endpoint": "http://127.0.0.1:9/api/v2", "tokenFrom": {"env": "DEV_TOKEN"},
            "variables": {"DEPLOYMENT": "64b0c0ffee000000000d0001", "CONCURRENCY": 1, "BUCKET": "acme-dev"}},
    "prod": {"endpoint": "https://prod.example/api/v2", "tokenFrom": {"file": "/run/secrets/token"},
             "scope": {"namePrefix": "demo-"}, "overlays": "overlays/prod",
             "variables": {"DEPLOYMENT": "64b0c0ffee000000000d0002", "CONCURRENCY": 8, "BUCKET": "acme-prod"}},
}
TARGETS = parse_config({"targets": RAW_TARGETS}).targets


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_substitute_typed_embedded_escaped() -> None:
    assert env.substitute("${N}", {"N": 8}) == (8, [])
    assert env.substitute("${B}", {"B": True}) == (True, [])
    assert env.substitute("n=${N}, b=${B}", {"N": 8, "B": False}) == ("n=8, b=false", [])
    assert env.substitute("$${N} and $5 and $$", {"N": 8}) == ("${N} and $5 and $$", [])
    assert env.substitute("plain", {}) == ("plain", [])


@pytest.mark.parametrize(("text", "message"), [
    ("${MISSING}", "unknown variable ${MISSING}"),
    ("x ${bad-name} y", "malformed placeholder ${bad-name}"),
    ("${}", "malformed placeholder ${}"),
    ("open ${N", "unclosed placeholder"),
])
def test_substitute_problems(text: str, message: str) -> None:
    value, problems = env.substitute(text, {"N": 1, "MISSING_": 2})
    assert value == text
    assert len(problems) == 1 and message in problems[0][1]


def test_unknown_variable_suggests_close_name() -> None:
    _, problems = env.substitute("${BUCKT}", {"BUCKET": "b"})
    assert problems[0][2] is not None and "BUCKET" in problems[0][2]


def test_resolve_target_choices() -> None:
    assert env.resolve_target({}, None) == TargetConfig(name="default")
    only = env.resolve_target({"dev": TARGETS["dev"]}, None)
    assert only.name == "dev" and only.variables["CONCURRENCY"] == 1 and only.token_from == {"env": "DEV_TOKEN"}
    prod = env.resolve_target(TARGETS, "prod")
    assert prod.overlays == "overlays/prod" and prod.scope == Scope(name_prefix="demo-")
    assert prod is TARGETS["prod"]  # chosen, not parsed again
    with pytest.raises(env.TargetError, match="choose one with --target"):
        env.resolve_target(TARGETS, None)
    with pytest.raises(env.TargetError, match="did you mean `prod`"):
        env.resolve_target(TARGETS, "prd")


@pytest.mark.parametrize(("raw", "message"), [
    ({"token": "abc"}, "a token never belongs in the config"),
    ({"tokenFrom": {"env": "A", "file": "B"}}, "exactly one of"),
    ({"tokenFrom": {"value": "abc"}}, "exactly one of"),
    ({"variables": {"a-b": 1}}, "is not a variable name"),
    ({"variables": {"A": [1]}}, "expected a string, number or boolean"),
    ({"overlays": 3}, "expected a directory path"),
])
def test_parse_target_refuses_bad_config(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(env.TargetError, match=message) as caught:
        parse_target("t", raw)
    assert "abc" not in str(caught.value)  # a token given by mistake is never echoed


def test_variables_substituted_per_target(tmp_path: Path) -> None:
    _write(tmp_path / "specs" / "churn.yaml", MANIFEST)
    loaded = load_paths([tmp_path / "specs"])
    for name, concurrency, bucket in (("dev", 1, "acme-dev"), ("prod", 8, "acme-prod")):
        target = parse_target(name, {**RAW_TARGETS[name], "overlays": None})
        docs, issues = env.apply_environment(loaded.documents, target, overlays_root=tmp_path)
        assert issues == []
        job = docs[0].data["spec"]["batchPredictionJob"]
        assert job["numConcurrent"] == concurrency
        assert job["intakeSettings"]["url"] == f"s3://{bucket}/in.csv"
        assert job["outputSettings"]["url"] == f"s3://{bucket}/out-${{NOT_A_VAR}}.csv"
    assert "${" in loaded.documents[0].data["spec"]["batchPredictionJob"]["deploymentId"]  # input untouched


def test_unknown_variable_located_at_value() -> None:
    docs, _ = load_text(MANIFEST, file="specs/churn.yaml")
    target = TargetConfig(name="dev", variables={"DEPLOYMENT": "x", "CONCURRENCY": 1})
    out, issues = env.apply_environment(docs, target, overlays_root=None)
    assert out == []  # a document with an error is left out, never half-substituted
    located = {(i.file, i.line, i.col, i.field) for i in issues}
    assert located == {("specs/churn.yaml", 13, 12, "spec.batchPredictionJob.intakeSettings.url"),
                       ("specs/churn.yaml", 17, 12, "spec.batchPredictionJob.outputSettings.url")}
    assert all("unknown variable ${BUCKET}" in i.message and "'dev'" in i.message for i in issues)


def test_merge_patch_rfc7386_examples() -> None:
    # the examples of RFC 7386, appendix A
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert env.merge_patch(target, patch) == expected


def _prod_repo(tmp_path: Path, overlay: str) -> tuple[Path, TargetConfig]:
    _write(tmp_path / "specs" / "churn.yaml", MANIFEST)
    _write(tmp_path / "overlays" / "prod" / "demo-churn.yaml", overlay)
    return tmp_path, env.resolve_target(TARGETS, "prod")


def test_overlay_merges_and_deletes(tmp_path: Path) -> None:
    root, target = _prod_repo(tmp_path, """\
spec:
  enabled: false
  schedule: null
  batchPredictionJob:
    numConcurrent: 16
    outputSettings: {url: "s3://${BUCKET}/prod-out.csv"}
""")
    report = env.validate_for_target([root / "specs"], target, overlays_root=root)
    assert report.ok, [i.format() for i in report.issues]
    data = report.documents[0].data
    assert data["spec"]["enabled"] is False and "schedule" not in data["spec"]
    job = data["spec"]["batchPredictionJob"]
    assert job["numConcurrent"] == 16
    assert job["outputSettings"] == {"type": "s3", "url": "s3://acme-prod/prod-out.csv",
                                     "credentialId": "64b0c0ffee000000000c0001"}
    dev = env.validate_for_target([root / "specs"], env.resolve_target(TARGETS, "dev"), overlays_root=root)
    assert dev.documents[0].data["spec"]["batchPredictionJob"]["numConcurrent"] == 1  # dev has no overlays


def test_schema_error_from_overlay_points_into_overlay(tmp_path: Path) -> None:
    root, target = _prod_repo(tmp_path, """\
# prod runs hotter
spec:
  batchPredictionJob:
    numConcurrent: lots
""")
    report = env.validate_for_target([root / "specs"], target, overlays_root=root)
    errors = [(i.file, i.line, i.col, i.field) for i in report.errors]
    overlay = str(root / "overlays" / "prod" / "demo-churn.yaml")
    assert errors == [(overlay, 4, 20, "spec.batchPredictionJob.numConcurrent")]


def test_schema_error_in_base_stays_in_base(tmp_path: Path) -> None:
    root, target = _prod_repo(tmp_path, "spec:\n  enabled: false\n")
    manifest = root / "specs" / "churn.yaml"
    manifest.write_text(MANIFEST.replace("    numConcurrent: ${CONCURRENCY}\n",
                                         "    numConcurrent: ${CONCURRENCY}\n    numConcurent: 3\n"))
    report = env.validate_for_target([root / "specs"], target, overlays_root=root)
    assert [(i.file, i.line) for i in report.errors] == [(str(manifest), 11)]


def test_overlay_errors(tmp_path: Path) -> None:
    root, target = _prod_repo(tmp_path, "metadata:\n  name: other\nspec:\n  enabled: ${NOPE}\n")
    _write(root / "overlays" / "prod" / "demo-gone.yaml", "spec: {enabled: false}\n")
    loaded = load_paths([root / "specs"])
    docs, issues = env.apply_environment(loaded.documents, target, overlays_root=root)
    assert docs == []
    overlay = str(root / "overlays" / "prod" / "demo-churn.yaml")
    found = {(i.file, i.line, i.col, i.severity): i.message for i in issues}
    assert "cannot change metadata.name" in found[(overlay, 2, 9, "error")]
    assert "unknown variable ${NOPE}" in found[(overlay, 4, 12, "error")]
    stray = str(root / "overlays" / "prod" / "demo-gone.yaml")
    assert "matches no manifest" in found[(stray, 1, 1, "warning")]


def test_overlay_yaml_error_located(tmp_path: Path) -> None:
    root, target = _prod_repo(tmp_path, "spec:\n  enabled: [unclosed\n")
    loaded = load_paths([root / "specs"])
    docs, issues = env.apply_environment(loaded.documents, target, overlays_root=root)
    assert docs == []
    assert [i.file for i in issues] == [str(root / "overlays" / "prod" / "demo-churn.yaml")]
    assert issues[0].line >= 2 and "YAML" in issues[0].message


def test_without_target_the_default_target_reports_placeholders(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No --target: the embedded local service with no variables and no overlays; every command says to
    choose a target, at file:line:col, instead of schema errors about the literal placeholder."""
    from typer.testing import CliRunner

    from reconciler.cli import app

    _write(tmp_path / "specs" / "churn.yaml", MANIFEST)
    _write(tmp_path / "reconciler.yaml", "apiVersion: reconciler.io/v1alpha1\nkind: Project\ntargets:\n"
           "  dev: {variables: {DEPLOYMENT: 64b0c0ffee000000000d0001, CONCURRENCY: 1, BUCKET: b}}\n"
           "  prod: {variables: {DEPLOYMENT: 64b0c0ffee000000000d0001, CONCURRENCY: 8, BUCKET: b}}\n")
    _write(tmp_path / "overlays" / "default" / "demo-churn.yaml", "spec: {enabled: false}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_LOCAL_DB_URL", f"sqlite:///{tmp_path}/local.db")
    monkeypatch.delenv("DATAROBOT_ENDPOINT", raising=False)
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", "specs", "--no-color"])
    assert validated.exit_code == 3
    assert "specs/churn.yaml:9:19: spec.batchPredictionJob.deploymentId: unknown variable ${DEPLOYMENT}" in validated.stdout
    assert "choose one with --target NAME (known: dev, prod)" in validated.stdout
    assert "expected a 24-character" not in validated.stdout and "overlay" not in validated.stdout
    planned = runner.invoke(app, ["plan", "specs"])
    assert planned.exit_code == 3 and "choose one with --target NAME (known: dev, prod)" in planned.stderr
    assert runner.invoke(app, ["validate", "specs", "--target", "dev"]).exit_code == 0

    # a project without targets: manifests are taken as written (a `${` is just text there)
    _write(tmp_path / "reconciler.yaml", "apiVersion: reconciler.io/v1alpha1\nkind: Project\n")
    plain = env.validate_for([tmp_path / "specs"], targets={}, target_name=None, overlays_root=tmp_path)
    assert not any("unknown variable" in i.message for i in plain.issues)
    assert any("24-character" in i.message for i in plain.issues)


def test_the_config_is_parsed_once_and_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session connects with, validates with and selects with the same parsed target."""
    import yaml

    from reconciler.session import Options, Session
    from reconciler.specs import config as config_module

    _write(tmp_path / "specs" / "churn.yaml", MANIFEST)
    _write(tmp_path / "reconciler.yaml", yaml.safe_dump(
        {"apiVersion": "reconciler.io/v1alpha1", "kind": "Project",
         "targets": RAW_TARGETS}))
    parsed: list[str] = []
    real = config_module.parse_target
    monkeypatch.setattr(config_module, "parse_target", lambda name, raw: parsed.append(name) or real(name, raw))
    session = Session.open(Options(paths=(tmp_path / "specs",), paths_given=True, target="dev",
                                   environ={"DEV_TOKEN": "t"}))
    chosen = session.environment()
    assert chosen is session.config.targets["dev"]
    assert env.resolve_target(session.config.targets, "dev") is chosen
    assert session.connection.endpoint.rstrip("/") == chosen.endpoint
    manifests = session.load()
    assert manifests.desired[0].body["numConcurrent"] == 1  # the dev variables were applied
    assert sorted(parsed) == ["dev", "prod"]  # each entry parsed once, whatever ran after
