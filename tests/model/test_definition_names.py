"""Definition names hold no control characters (Cc) and no bidirectional overrides or isolates,
in manifests as at the API: one schema (``definition-name``) says so, and every validator reads
its pattern the same way (issue #11 section 5)."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
import regress

from reconciler.contract import schemas, validators
from reconciler.specs.load import load_text
from reconciler.specs.validate import validate_documents

REFUSED = ["zz\nNo changes. Live definitions match the manifests.\n", "evil\u202ename", "tab\there",
           "esc\x1b[31mred", "del\x7f", "c1\x85", "iso\u2066x\u2069", "ends with a newline\n", "\u202a", "nul\x00"]
KEPT = ["churn-daily", "Прогноз 予測 – ünïcode ✓", "a b (c) [d] {e}", "x" * 100]

MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: churn
spec:
  name: {name}
  previousNames: [{previous}]
  batchPredictionJob:
    deploymentId: 5dc5b1015e6e762a6241f9aa
    intakeSettings: {{type: s3, url: "s3://bucket/in.csv"}}
"""


def _manifest(name: str, previous: str = "old-name") -> str:
    return MANIFEST.format(name=json.dumps(name), previous=json.dumps(previous))


@pytest.mark.parametrize("name", REFUSED)
def test_every_validator_refuses_the_name(name: str) -> None:
    schema = schemas.get("definition-name")
    assert not validators.validator("definition-name").is_valid(name)  # Python, as reconciler validate runs it
    assert not validators.fast_validator("definition-name").is_valid(name)  # jsonschema-rs, the API's fast path
    assert not jsonschema_rs.validator_for(schema).is_valid(name)
    assert regress.Regex(schema["pattern"], flags="u").find(name) is None  # ECMA-262, as check-jsonschema reads it


@pytest.mark.parametrize("name", KEPT)
def test_every_validator_keeps_other_names(name: str) -> None:
    assert validators.validator("definition-name").is_valid(name)
    assert validators.fast_validator("definition-name").is_valid(name)
    assert regress.Regex(schemas.get("definition-name")["pattern"], flags="u").find(name) is not None


@pytest.mark.parametrize("name", REFUSED)
def test_a_manifest_name_is_a_located_error(name: str) -> None:
    docs, errors = load_text(_manifest(name), file="m.yaml")
    issues = [i for i in validate_documents(docs, errors).issues if i.severity == "error"]
    assert [(i.file, i.line, i.field) for i in issues] == [("m.yaml", 6, "spec.name")], issues
    assert "control characters" in issues[0].message
    assert issues[0].format().startswith("m.yaml:6:9: spec.name: ")
    assert issues[0].format().isprintable()  # the message quotes the name escaped, never raw


def test_previous_names_are_names_too() -> None:
    docs, errors = load_text(_manifest("churn", previous="old\u202ename"), file="m.yaml")
    issues = [i for i in validate_documents(docs, errors).issues if i.severity == "error"]
    assert [(i.line, i.field) for i in issues] == [(7, "spec.previousNames[0]")], issues


def test_the_python_validator_reads_dollar_as_ecma_does() -> None:
    """Python's ``$`` matches before a final newline; JSON Schema's (ECMA-262) does not."""
    assert validators.python_regex("^[a-z]+$").search("abc\n") is None
    assert validators.python_regex("^[a-z]+$").search("abc") is not None
    assert validators.python_regex("^[$a]+$").search("$a") is not None  # a $ inside a class stays literal
    assert validators.python_regex("^a\\$$").search("a$") is not None  # so does an escaped one
