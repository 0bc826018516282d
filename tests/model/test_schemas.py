"""The schemas themselves: well-formed, self-describing, and bundled without losing meaning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from reconciler import schemas
from reconciler.cli import app
from reconciler.specs.load import load_paths

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = load_paths([ROOT / "specs"]).documents


@pytest.mark.parametrize("name", schemas.names())
def test_each_schema_is_valid_2020_12_with_id_title_description(name: str) -> None:
    doc = schemas.get(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == schemas.uri(name)
    assert doc.get("title") and doc.get("description"), "editors show title and description"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_resolves() -> None:
    for name in schemas.names():
        doc = schemas.get(name)
        for ref in _refs(doc):
            if ref.startswith("#/"):
                node: Any = doc
                for part in ref[2:].split("/"):
                    node = node[part]
                assert isinstance(node, dict), (name, ref)
            else:
                assert ref.endswith(schemas.SUFFIX), (name, ref)
                assert ref[: -len(schemas.SUFFIX)] in schemas.names(), (name, ref)


@pytest.mark.parametrize("name", ["manifest", "api-definition", "job-spec", "schedule"])
def test_bundle_is_self_contained_and_agrees_with_the_registry(name: str) -> None:
    bundled = schemas.bundle(name)
    assert all(ref.startswith("#/$defs/") for ref in _refs(bundled))
    validator = jsonschema.Draft202012Validator(bundled)
    if name == "manifest":
        for doc in EXAMPLES:
            assert validator.is_valid(doc.data)
            broken = json.loads(json.dumps(doc.data))
            intake = broken["spec"]["batchPredictionJob"]["intakeSettings"]
            intake["bogus"] = 1
            if schemas.get(f"intake-{intake['type']}").get("x-unknownKeys") == "warn":
                continue  # unverified field lists (snowflake, synapse) only warn about unknown keys
            assert not validator.is_valid(broken)
            assert not schemas.validator("manifest").is_valid(broken)
            assert not schemas.fast_validator("manifest").is_valid(broken)


def test_schema_command_prints_a_bundle_and_lists_names() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["schema", "manifest"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == schemas.bundle("manifest")
    listed = runner.invoke(app, ["schema", "--list"])
    assert listed.stdout.split() == schemas.names()
    missing = runner.invoke(app, ["schema", "nope"])
    assert missing.exit_code == 1


def test_version_flag() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("reconciler ")
