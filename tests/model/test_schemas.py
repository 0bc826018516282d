"""The schemas themselves: well-formed, self-describing, and bundled without losing meaning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.contract import schemas, validators
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
            assert not validators.validator("manifest").is_valid(broken)
            assert not validators.fast_validator("manifest").is_valid(broken)


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


def _undocumented(node: Any, where: str) -> list[str]:
    """Properties an editor would show without a description (if-conditions and `not: {}` bans aside)."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, prop in node.get("properties", {}).items():
            if isinstance(prop, dict) and "description" not in prop and "$ref" not in prop and "not" not in prop:
                out.append(f"{where}.{key}")
        for key, value in node.items():
            if key != "if":
                out += _undocumented(value, f"{where}/{key}")
    elif isinstance(node, list):
        for value in node:
            out += _undocumented(value, where)
    return out


@pytest.mark.parametrize("name", [n for n in schemas.names() if not n.startswith(("plan", "api-", "project"))])
def test_every_manifest_field_has_a_description_for_editors(name: str) -> None:
    assert _undocumented(schemas.get(name), name) == []


# Every field of the reference (api-contract §6 job spec, §7 adapters, §8 schedule) that a manifest
# can carry. `redactedFields` is response-only and the secret keys are written as *From references.
JOB_FIELDS = ["deploymentId", "modelId", "numConcurrent", "chunkSize", "intakeSettings", "outputSettings",
    "csvSettings", "timeseriesSettings", "passthroughColumns", "passthroughColumnsSet",
    "includeProbabilities", "includeProbabilitiesClasses", "includePredictionStatus", "skipDriftTracking",
    "abortOnError", "predictionWarningEnabled", "predictionThreshold", "thresholdHigh", "thresholdLow",
    "maxExplanations", "maxNgramExplanations", "explanationAlgorithm", "explanationClassNames",
    "explanationNumTopClasses", "columnNamesRemapping", "predictionInstance", "batchJobType",
    "disableRowLevelErrorHandling", "modelPackageId", "monitoringBatchPrefix", "pinnedModelId",
    "secondaryDatasetsConfigId", "explanationsMode"]
ADAPTER_FIELDS = {
    "intake-localFile": "type", "output-localFile": "type",
    "intake-s3": "url credentialId endpointUrl format", "output-s3": "url credentialId endpointUrl format",
    "intake-azure": "url credentialId format", "output-azure": "url credentialId format",
    "intake-gcp": "url credentialId format", "output-gcp": "url credentialId format",
    "intake-jdbc": "dataStoreId query table schema catalog fetchSize credentialId",
    "output-jdbc": "dataStoreId table statementType schema catalog updateColumns whereColumns credentialId "
                   "createTableIfNotExists",
    "intake-dataset": "datasetId datasetVersionId", "intake-dss": "projectId datasetId partition",
    "intake-datasphere": "dataStoreId table schema credentialId", "output-datasphere": "dataStoreId table schema credentialId",
    "intake-snowflake": "dataStoreId externalStage table query schema catalog credentialId cloudStorageType "
                        "cloudStorageCredentialId",
    "output-snowflake": "dataStoreId externalStage table statementType schema catalog credentialId cloudStorageType "
                        "cloudStorageCredentialId createTableIfNotExists",
    "intake-synapse": "dataStoreId externalDataSource table query schema credentialId cloudStorageCredentialId",
    "output-synapse": "dataStoreId externalDataSource table statementType schema credentialId "
                      "cloudStorageCredentialId createTableIfNotExists",
    "intake-bigquery": "dataset table bucket credentialId", "output-bigquery": "dataset table bucket credentialId",
}


def test_every_field_of_the_reference_is_in_the_schemas() -> None:
    assert sorted(set(JOB_FIELDS) - set(schemas.get("job-spec-fields")["properties"])) == []
    for name, fields in ADAPTER_FIELDS.items():
        assert sorted(set(fields.split()) - set(schemas.get(name)["properties"])) == [], name
    intake_types = schemas.get("intake")["properties"]["type"]["enum"]
    output_types = schemas.get("output")["properties"]["type"]["enum"]
    assert sorted(intake_types) == sorted(n[len("intake-"):] for n in ADAPTER_FIELDS if n.startswith("intake-"))
    assert sorted(output_types) == sorted(n[len("output-"):] for n in ADAPTER_FIELDS if n.startswith("output-"))
    assert set(schemas.get("schedule")["properties"]) == {"minute", "hour", "dayOfMonth", "month", "dayOfWeek"}
    for adapter in ADAPTER_FIELDS:  # a typo is an error, except where the reference says warn
        closed = schemas.get(adapter).get("additionalProperties") is False
        assert closed != (schemas.get(adapter).get("x-unknownKeys") == "warn"), adapter
