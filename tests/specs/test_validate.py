"""The validator beyond the corpus: warnings, JSON output and exit codes of `reconciler validate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.contract import schemas
from reconciler.contract.issues import Issue, check_instance, suggest_key
from reconciler.specs.load import load_text
from reconciler.specs.validate import validate_documents, validate_paths

GOOD = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: {name}
spec:
  enabled: {enabled}
  schedule: {schedule}
  batchPredictionJob:
    deploymentId: 5dc5b1015e6e762a6241f9aa
    intakeSettings: {intake}
    outputSettings: {{type: s3, url: "s3://bucket/out.csv"}}
"""


def manifest(name: str = "churn", *, enabled: str = "true", schedule: str = '{cron: "0 2 * * 1-5"}',
             intake: str = '{type: s3, url: "s3://bucket/in.csv"}') -> str:
    return GOOD.format(name=name, enabled=enabled, schedule=schedule, intake=intake)


def report_of(text: str) -> list[Issue]:
    docs, errors = load_text(text, file="m.yaml")
    return validate_documents(docs, errors).issues


def test_a_valid_manifest_has_no_issues() -> None:
    report = validate_documents(load_text(manifest(), file="m.yaml")[0])
    assert report.ok and report.issues == [] and len(report.documents) == 1 and report.checked == 1


def test_leap_day_only_is_a_warning() -> None:
    issues = report_of(manifest(schedule='{cron: "0 0 29 2 *"}'))
    assert [(i.severity, i.field, i.message) for i in issues] == [
        ("warning", "spec.schedule", "fires only on 29 February, once every four years")]


def test_local_file_in_a_disabled_definition_is_a_warning() -> None:
    issues = report_of(manifest(enabled="false", intake="{type: localFile}"))
    assert [(i.severity, i.field) for i in issues] == [("warning", "spec.batchPredictionJob.intakeSettings.type")]
    enabled = report_of(manifest(enabled="true", intake="{type: localFile}"))
    assert [i.severity for i in enabled] == ["error"]


@pytest.mark.parametrize(
    ("intake", "field", "hint"),
    [
        ("{type: snowflake, dataStoreId: 5dc5b1015e6e762a6241f9aa, externalStage: st, table: t, warehouse: wh}",
         "spec.batchPredictionJob.intakeSettings.warehouse", "allowed here:"),
        ("{type: synapse, dataStoreId: 5dc5b1015e6e762a6241f9aa, externalDataSource: src, tabel: t}",
         "spec.batchPredictionJob.intakeSettings.tabel", "did you mean `table`?"),
    ],
)
def test_unknown_key_on_unverified_adapters_is_a_warning(intake: str, field: str, hint: str) -> None:
    issues = report_of(manifest(intake=intake))
    assert [(i.severity, i.field) for i in issues] == [("warning", field)]
    assert issues[0].hint is not None and issues[0].hint.startswith(hint)
    # for a verified adapter the same slip is an error
    strict = report_of(manifest(intake='{type: s3, url: "s3://b/x", tabel: t}'))
    assert [i.severity for i in strict] == ["error"]


def test_warnings_alone_keep_a_report_ok_and_errors_are_sorted() -> None:
    text = manifest("b-def", schedule='{cron: "0 0 29 2 *"}') + "---\n" + manifest("a-def", schedule='{cron: "61 * * * *"}')
    docs, errors = load_text(text, file="m.yaml")
    report = validate_documents(docs, errors)
    assert not report.ok and len(report.warnings) == 1 and len(report.errors) == 1
    assert [i.line for i in report.issues] == sorted(i.line for i in report.issues)
    assert [d.data["metadata"]["name"] for d in report.documents] == ["b-def"]


def test_suggest_key() -> None:
    known = ["numConcurrent", "intakeSettings", "outputSettings"]
    assert suggest_key("num_concurrent", known) == "did you mean `numConcurrent`? Fields use the API's camelCase names"
    assert suggest_key("NumConcurrent", known) == "did you mean `numConcurrent`? Field names are case-sensitive"
    assert suggest_key("intakeSetting", known) == "did you mean `intakeSettings`?"
    assert suggest_key("zzz", known) == "allowed here: intakeSettings, numConcurrent, outputSettings"


def test_check_instance_reports_at_one_one() -> None:
    issues = check_instance({"type": "s3"}, "intake-s3")
    assert [(i.line, i.col, i.message) for i in issues] == [(1, 1, "missing required field 'url'")]
    assert check_instance([], "intake-s3")[0].message == "expected a JSON object, got a list"


# --- the command line ------------------------------------------------------------------------

@pytest.fixture()
def specs(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(manifest("good"), encoding="utf-8")
    return tmp_path


def test_cli_exit_0_when_valid(specs: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(specs), "--no-color"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "OK: 1 manifest(s) in 1 file(s): 0 error(s), 0 warning(s)"


def test_cli_exit_3_when_invalid_with_text_output(specs: Path) -> None:
    bad = specs / "bad.yaml"
    bad.write_text(manifest("bad").replace("deploymentId:", "deployment_id:"), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(specs), "--no-color"])
    assert result.exit_code == 3
    lines = result.output.splitlines()
    assert lines[0] == f"{bad}:9:5: spec.batchPredictionJob.deployment_id: unknown field 'deployment_id'"
    assert lines[1] == "    hint: did you mean `deploymentId`? Fields use the API's camelCase names"
    assert lines[-1] == "INVALID: 2 manifest(s) in 2 file(s): 1 error(s), 0 warning(s)"


def test_cli_json_output(specs: Path) -> None:
    (specs / "warn.yaml").write_text(manifest("warn", schedule='{cron: "0 0 29 2 *"}'), encoding="utf-8")
    (specs / "broken.yaml").write_text("a: [1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(specs), "--output", "json"])
    assert result.exit_code == 3
    body = json.loads(result.stdout)
    assert body["format_version"] == "1.0" and body["valid"] is False
    assert (body["files"], body["documents"]) == (3, 2)
    assert body["errors"] == [{
        "file": str(specs / "broken.yaml"), "line": 1, "column": 4, "field": "",
        "message": "not valid YAML: the '[' opened here is never closed (did not find expected ',' or ']' on line 2)",
        "hint": "add the missing ']' (or a ',' between items), or quote a value that contains '['",
        "severity": "error"}]
    assert [(w["field"], w["severity"]) for w in body["warnings"]] == [("spec.schedule", "warning")]


def test_cli_json_output_valid(specs: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(specs), "-o", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["valid"] is True


def test_validate_paths_reads_directories(specs: Path) -> None:
    (specs / "nested").mkdir()
    (specs / "nested" / "other.yml").write_text(manifest("good"), encoding="utf-8")
    report = validate_paths([specs])
    assert report.files == 2
    assert [i.message.split(" is also")[0] for i in report.errors] == ["definition name 'good'"]


def test_cli_exit_1_on_an_internal_error(specs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(paths: object, **options: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("reconciler.specs.validate.validate_paths", broken)
    result = CliRunner().invoke(app, ["validate", str(specs)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), "the error must be handled, not escape as a traceback"
    assert "internal error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output


def test_cli_checks_the_project_config(specs: Path) -> None:
    """A reconciler.yaml that plan would refuse fails validate too, located like a manifest."""
    (specs / "reconciler.yaml").write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: Project\nscope:\n  name_prefix: demo-\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(specs), "--no-color"])
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("reconciler.yaml:4:3: scope.name_prefix: unknown field 'name_prefix'")
    assert lines[1] == "    hint: did you mean `namePrefix`? Fields use the API's camelCase names"
    assert lines[-1] == "INVALID: 1 manifest(s) in 1 file(s): 1 error(s), 0 warning(s)"
    (specs / "reconciler.yaml").write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: Project\nscope:\n  namePrefix: demo-\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["validate", str(specs)]).exit_code == 0


def test_cli_reports_an_unreadable_config_given_explicitly(specs: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(specs), "--config", str(specs / "missing.yaml"), "--no-color"])
    assert result.exit_code == 3
    assert "missing.yaml:1:1: cannot read the project config: No such file or directory" in result.output


def test_an_empty_directory_is_a_warning_not_a_silent_ok(tmp_path: Path) -> None:
    report = validate_paths([tmp_path])
    assert report.ok and report.files == 0
    assert [(i.severity, i.message) for i in report.issues] == [("warning", "no manifest files (*.yaml or *.yml) found")]


def test_explanations_mode_is_a_known_string_field() -> None:
    ok = manifest().replace("    intakeSettings:", "    explanationsMode: topClasses\n    intakeSettings:")
    assert report_of(ok) == []
    bad = manifest().replace("    intakeSettings:", "    explanationsMode: 3\n    intakeSettings:")
    assert [(i.field, i.message) for i in report_of(bad)] == [
        ("spec.batchPredictionJob.explanationsMode", "expected a string, got 3")]


def test_dss_intake_is_refused_in_a_definition() -> None:
    issues = report_of(manifest(intake="{type: dss, projectId: 5e1b3d2c8f1a4c0012345678}"))
    assert [(i.field, i.severity) for i in issues] == [("spec.batchPredictionJob.intakeSettings.type", "error")]
    assert "leaderboard" in issues[0].message


# --- one file, one answer: YAML 1.2 booleans, as check-jsonschema and editors read them ----------

def test_yaml_1_1_booleans_get_the_same_answer_as_check_jsonschema(tmp_path: Path) -> None:
    """`enabled: yes` was accepted here (PyYAML reads YAML 1.1) and refused by check-jsonschema and
    editors (YAML 1.2); `passthroughColumns: [no, on]` the other way round. Now both agree."""
    import subprocess
    import sys

    schema = tmp_path / "manifest.schema.json"
    schema.write_text(json.dumps(schemas.bundle("manifest")), encoding="utf-8")
    refused = tmp_path / "refused.yaml"
    refused.write_text(manifest("refused", enabled="yes"), encoding="utf-8")
    accepted = tmp_path / "accepted.yaml"
    accepted.write_text(manifest("accepted", enabled="false").replace(
        "    intakeSettings:", "    passthroughColumns: [no, on, Off, y]\n    intakeSettings:"), encoding="utf-8")

    def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), str(path)],
                              capture_output=True, text=True, timeout=120)

    theirs = check_jsonschema(refused)
    assert theirs.returncode == 1 and "$.spec.enabled: 'yes' is not of type 'boolean'" in theirs.stdout
    ours = CliRunner().invoke(app, ["validate", str(refused), "--no-color"])
    assert ours.exit_code == 3
    assert ours.output.splitlines()[:2] == [
        f"{refused}:6:12: spec.enabled: expected true or false, got 'yes'",
        "    hint: write true: YAML 1.2, which editors and check-jsonschema follow, reads 'yes' as text, not a boolean"]

    assert check_jsonschema(accepted).returncode == 0
    assert CliRunner().invoke(app, ["validate", str(accepted)]).exit_code == 0
    (doc,) = validate_paths([accepted]).documents
    assert doc.data["spec"]["batchPredictionJob"]["passthroughColumns"] == ["no", "on", "Off", "y"]


@pytest.mark.parametrize("word, hint", [("no", "write false"), ("ON", "write true"), ("y", "write true"),
                                        ("Off", "write false"), ("N", "write false")])
def test_every_yaml_1_1_boolean_gets_a_hint_where_a_boolean_is_expected(word: str, hint: str) -> None:
    issues = report_of(manifest(enabled="false").replace("    intakeSettings:",
                                                         f"    skipDriftTracking: {word}\n    intakeSettings:"))
    assert [(i.line, i.field, i.message) for i in issues] == [
        (10, "spec.batchPredictionJob.skipDriftTracking", f"expected true or false, got {word!r}")]
    assert (issues[0].hint or "").startswith(hint + ": YAML 1.2")
    quoted = report_of(manifest(enabled="false").replace("    intakeSettings:",
                                                         f"    skipDriftTracking: '{word}'\n    intakeSettings:"))
    assert quoted[0].hint is None  # quoted, it is text on purpose


# --- values the API cannot take, secrets outside the project ---------------------------------------

def test_values_json_cannot_carry_are_errors_reported_with_the_rest() -> None:
    text = manifest(enabled="false").replace("    intakeSettings:", "    predictionThreshold: .nan\n"
                                             "    num_concurrent: 2\n    intakeSettings:")
    docs, errors = load_text(text, file="m.yaml")
    report = validate_documents(docs, errors)
    assert [(i.line, i.field, i.message) for i in report.errors] == [
        (10, "spec.batchPredictionJob.predictionThreshold",
         ".nan is not a number the API can take: JSON has no NaN or infinity"),
        (11, "spec.batchPredictionJob.num_concurrent", "unknown field 'num_concurrent'")]
    assert report.documents == []
    alone = validate_documents(load_text(manifest(enabled="false").replace(
        "    intakeSettings:", "    predictionThreshold: -.inf\n    intakeSettings:"), file="m.yaml")[0])
    # where the schema has its own word for the value, that word is the one message for the field
    assert [i.message for i in alone.errors] == ["expected a number from 0 to 1, got -inf"]


def test_a_secret_file_reference_must_resolve_inside_the_secret_roots(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "key").write_text("k")
    (root / "keys" / "out").symlink_to(tmp_path)
    (tmp_path / "outside-key").write_text("k")
    text = manifest(enabled="false").replace(
        "    intakeSettings:", "    predictionInstance: {hostName: h.example.com, apiKeyFrom: {file: %s}}\n"
        "    intakeSettings:")

    def issues(ref: str, roots: list[str] | None) -> list[str]:
        docs, errors = load_text(text % ref, file=str(root / "m.yaml"))
        return [f"{i.line}:{i.col} {i.field}: {i.message}" for i in
                validate_documents(docs, errors, secret_roots=roots).errors]

    inside = [str(root)]
    assert issues("keys/key", inside) == []
    assert issues("keys/key", []) == []  # no roots: the manifest's own directory
    assert len(issues("../outside-key", [])) == 1
    assert issues("../outside-key", None) == []  # not checked: documents that come from no directory
    field = "spec.batchPredictionJob.predictionInstance.apiKeyFrom.file"
    assert issues("../outside-key", inside) == [
        f"10:70 {field}: secret file '../outside-key' is outside the project: it resolves to "
        f"{tmp_path / 'outside-key'}, outside {root}"]
    assert issues("keys/out/outside-key", inside) == [
        f"10:70 {field}: secret file 'keys/out/outside-key' is outside the project: it resolves to "
        f"{tmp_path / 'outside-key'} (through a symbolic link), outside {root}"]
    assert issues(str(tmp_path / "outside-key"), inside)[0].startswith(f"10:70 {field}: secret file '/")
    assert issues("../outside-key", [str(root), str(tmp_path)]) == []  # an allowed directory


@pytest.mark.parametrize("colour", [False, True])
def test_cli_prints_each_issue_and_its_hint_styled_as_one_print_each_did(specs: Path, colour: bool) -> None:
    """The issues are printed as one text (fast for thousands of policy warnings): the same bytes
    as a print per line, in colour (red errors, yellow warnings, dim hints) and without."""
    import io

    from rich.console import Console

    for name in ("bad", "worse"):
        (specs / f"{name}.yaml").write_text(manifest(name).replace("deploymentId:", "deployment_id:"), encoding="utf-8")
    env = {"FORCE_COLOR": "1", "TERM": "xterm-256color"} if colour else {"NO_COLOR": "1"}
    result = CliRunner().invoke(app, ["validate", str(specs), *([] if colour else ["--no-color"])], env=env)
    assert result.exit_code == 3
    report = validate_paths([specs])
    expected = Console(file=io.StringIO(), force_terminal=colour, no_color=not colour,
                       color_system="truecolor" if colour else None, highlight=False, soft_wrap=True)
    for issue in report.issues:
        head, _, hint = issue.format().partition("\n")
        expected.print(head, style="yellow" if issue.severity == "warning" else "red", markup=False)
        if hint:
            expected.print(hint, style="dim", markup=False)
    printed = expected.file.getvalue()  # type: ignore[attr-defined]
    # the same text; in colour each line opens with its style (where rich puts the codes around a
    # line break differs between its releases: 13.x styles the break of a joined text too)
    plain = re.compile(r"\x1b\[[0-9;]*m")
    assert len(report.issues) >= 2 and plain.sub("", result.output).startswith(plain.sub("", printed)), (
        result.output, printed)
    assert ("\x1b[31m" in result.output) == colour
    for issue in report.issues if colour else ():
        head, _, hint = issue.format().partition("\n")
        assert ("\x1b[33m" if issue.severity == "warning" else "\x1b[31m") + head in result.output, result.output
        assert not hint or "\x1b[2m" + hint in result.output, result.output
