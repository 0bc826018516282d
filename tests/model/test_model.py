"""The models add no rules of their own: defaults come from the schemas, and every example round-trips."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from reconciler.contract import schemas, validators
from reconciler.contract.defaults import fill_defaults, job_spec_defaults
from reconciler.specs.load import load_paths
from reconciler.specs.model import Manifest, Schedule

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = load_paths([ROOT / "specs"]).documents


def _manifest(job: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "reconciler.io/v1alpha1", "kind": "BatchPredictionJobDefinition",
            "metadata": {"name": "demo-x"}, "spec": {"batchPredictionJob": job, **spec}}


JOB = {"deploymentId": "64b0c0ffee000000000d0001",
       "intakeSettings": {"type": "s3", "url": "s3://b/in.csv"}}


def test_examples_exist_for_every_adapter_that_a_definition_can_use() -> None:
    intakes = {d.data["spec"]["batchPredictionJob"]["intakeSettings"]["type"] for d in EXAMPLES}
    outputs = {d.data["spec"]["batchPredictionJob"]["outputSettings"]["type"] for d in EXAMPLES}
    # localFile needs a client to upload/download and dss scores leaderboard models only: neither fits a
    # scheduled definition, so the examples leave them out on purpose.
    assert intakes == {"s3", "azure", "gcp", "jdbc", "dataset", "snowflake", "synapse", "bigquery", "datasphere"}
    assert outputs == {"s3", "azure", "gcp", "jdbc", "snowflake", "synapse", "bigquery", "datasphere"}


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda d: Path(d.file).name)
def test_every_example_builds_a_model_that_round_trips(doc: Any) -> None:
    model = Manifest.from_document(doc)
    data = model.to_data()
    assert validators.validator("manifest").is_valid(data), "a model dump must itself be a valid manifest"
    again = Manifest.from_data(data)
    assert again.to_data() == data
    assert model.source is not None and model.source.file == doc.file


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda d: Path(d.file).name)
def test_defaults_are_explicit_and_filling_is_idempotent(doc: Any) -> None:
    job = Manifest.from_document(doc).spec.batchPredictionJob
    for key in ("chunkSize", "csvSettings", "includeProbabilities", "includeProbabilitiesClasses",
                "includePredictionStatus", "skipDriftTracking", "abortOnError", "maxExplanations",
                "disableRowLevelErrorHandling", "outputSettings"):
        assert key in job, key
    assert job_spec_defaults(job) == job


def test_defaults_come_from_the_schema_not_from_python() -> None:
    job = job_spec_defaults(copy.deepcopy(JOB))
    fields = schemas.get("job-spec-fields")["properties"]
    for key, prop in fields.items():
        if "default" in prop:
            assert job[key] == prop["default"], key
    assert job["intakeSettings"]["format"] == schemas.get("intake-s3")["properties"]["format"]["default"]


def test_default_of_the_selected_adapter_only() -> None:
    job = job_spec_defaults({**JOB, "outputSettings": {"type": "jdbc", "dataStoreId": "64b0c0ffee000000000e0001",
                                                        "table": "t", "statementType": "insert"}})
    assert job["outputSettings"]["createTableIfNotExists"] is False
    assert "format" not in job["outputSettings"], "an s3-only default must not leak into jdbc settings"
    assert job["intakeSettings"]["format"] == "csv"


def test_user_values_win_over_defaults() -> None:
    job = job_spec_defaults({**JOB, "abortOnError": False, "csvSettings": {"delimiter": "tab"}})
    assert job["abortOnError"] is False
    assert job["csvSettings"] == {"delimiter": "tab", "quotechar": '"', "encoding": "utf-8"}


def test_spec_defaults() -> None:
    model = Manifest.from_data(_manifest(JOB))
    assert model.spec.enabled is False
    assert model.spec.deletionPolicy == "Delete"
    assert model.spec.preventDestroy is False
    assert model.spec.driftPolicy == "Correct"
    assert model.spec.previousNames == []
    assert model.definition_name == "demo-x"
    named = Manifest.from_data(_manifest(JOB, name="Churn nightly"))
    assert named.definition_name == "Churn nightly"


def test_cron_and_names_become_the_apis_numbers() -> None:
    model = Manifest.from_data(_manifest(JOB, enabled=True, schedule={"cron": "*/20 9-17 * jan,jul mon-fri"}))
    assert model.spec.schedule == Schedule(minute=[0, 20, 40], hour=list(range(9, 18)), dayOfMonth=["*"],
                                           month=[1, 7], dayOfWeek=[1, 2, 3, 4, 5])
    lists = Manifest.from_data(_manifest(JOB, enabled=True, schedule={
        "minute": [30, 0], "hour": ["*"], "dayOfMonth": ["*"], "month": ["October", "jan"], "dayOfWeek": ["Sunday", "sat"]}))
    assert lists.spec.schedule is not None
    assert lists.spec.schedule.as_api() == {"minute": [0, 30], "hour": ["*"], "dayOfMonth": ["*"],
                                            "month": [1, 10], "dayOfWeek": [0, 6]}


def test_fill_defaults_leaves_unknown_shapes_alone() -> None:
    assert fill_defaults(5, {"type": "integer", "default": 3}) == 5
    assert fill_defaults([{"a": 1}], {"items": {"properties": {"b": {"default": 2}}}}) == [{"a": 1, "b": 2}]
