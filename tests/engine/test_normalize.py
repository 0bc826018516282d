"""Normalization: manifest and live answer reach the same comparable form."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from reconciler.api.secrets import SecretError, resolve_secrets
from reconciler.engine import normalize
from reconciler.engine.diff import diff
from reconciler.specs.model import Manifest

from .helpers import CREDENTIAL, DEPLOYMENT, api_item, desired, manifest_data


def _changes(d: normalize.Desired, item: dict) -> tuple:
    live = normalize.live_from_api(item)
    return diff(normalize.compare_view(d.comparable, live.comparable), d.comparable)


def test_body_flattens_job_spec_and_uses_definition_name() -> None:
    d = desired("demo-a", name="Demo A", enabled=True, schedule={"cron": "0 2 * * mon-fri"})
    assert d.name == "Demo A"
    assert d.body["name"] == "Demo A" and d.body["enabled"] is True
    assert d.body["deploymentId"] == DEPLOYMENT and "batchPredictionJob" not in d.body
    assert d.body["schedule"]["dayOfWeek"] == [1, 2, 3, 4, 5]
    assert d.body["chunkSize"] == "auto"  # defaults explicit


def test_live_answer_with_read_only_fields_and_server_choices_is_no_change() -> None:
    d = desired("demo-a", enabled=True, schedule={"cron": "30 1 * * *"})
    item = api_item(d, id_="a" * 24, redactedFields=[])
    item["batchPredictionJob"]["redactedFields"] = ["x"]
    item["batchPredictionJob"]["columnNamesRemapping"] = None
    item["batchPredictionJob"]["predictionWarningEnabled"] = None
    assert _changes(d, item) == ()


def test_schedule_names_become_numbers_and_tf_spelling_is_read() -> None:
    job = {"deploymentId": DEPLOYMENT, "intakeSettings": {"type": "dataset", "datasetId": CREDENTIAL},
           "maxNgramExplanations": 5}
    d = desired("demo-a", job=job, enabled=True, schedule={"minute": [0], "hour": [1], "dayOfMonth": ["*"],
                                                            "month": ["jan"], "dayOfWeek": ["sun", "Monday"]})
    item = api_item(d, id_="a" * 24)
    item["schedule"] = {"minute": [0], "hour": [1], "dayOfMonth": ["*"], "month": ["January"], "dayOfWeek": ["mon", 0]}
    item["batchPredictionJob"]["maxNGramExplanations"] = item["batchPredictionJob"].pop("maxNgramExplanations")
    assert _changes(d, item) == ()


def test_set_like_lists_compare_as_sets_but_ordered_lists_do_not() -> None:
    job = {"deploymentId": DEPLOYMENT, "intakeSettings": {"type": "dataset", "datasetId": CREDENTIAL},
           "passthroughColumns": ["b", "a"], "includeProbabilitiesClasses": ["y", "x"],
           "outputSettings": {"type": "jdbc", "dataStoreId": CREDENTIAL, "table": "t", "statementType": "update",
                              "updateColumns": ["c2", "c1"], "whereColumns": ["k2", "k1"]}}
    d = desired("demo-a", job=job)
    item = api_item(d, id_="a" * 24)
    bj = item["batchPredictionJob"]
    bj["passthroughColumns"] = ["a", "b"]
    bj["includeProbabilitiesClasses"] = ["x", "y"]
    bj["outputSettings"]["updateColumns"] = ["c1", "c2"]
    bj["outputSettings"]["whereColumns"] = ["k1", "k2"]
    assert _changes(d, item) == ()
    bj["passthroughColumns"] = ["a", "c"]
    (change,) = _changes(d, item)
    assert change.path == "batchPredictionJob.passthroughColumns"
    assert (change.old, change.new) == (["a", "c"], ["a", "b"])


def test_write_only_keys_and_secret_refs_are_not_compared_and_plan_holds_the_reference() -> None:
    job = {"deploymentId": DEPLOYMENT, "intakeSettings": {"type": "dataset", "datasetId": CREDENTIAL},
           "predictionInstance": {"hostName": "p.example.com", "apiKeyFrom": {"env": "PRED_KEY"}}}
    d = desired("demo-a", job=job)
    assert d.body["predictionInstance"]["apiKeyFrom"] == {"env": "PRED_KEY"}
    assert "apiKey" not in d.body["predictionInstance"]
    item = api_item(d, id_="a" * 24)
    assert _changes(d, item) == ()
    resolved = resolve_secrets(d.body, environ={"PRED_KEY": "s3cr3t"})
    assert resolved["predictionInstance"] == {"hostName": "p.example.com", "sslEnabled": True, "apiKey": "s3cr3t"}
    assert "apiKey" not in d.body["predictionInstance"]  # the plan's body is untouched
    with pytest.raises(SecretError, match="PRED_KEY is not set"):
        resolve_secrets(d.body, environ={})


def test_secret_file_is_relative_to_the_manifest(tmp_path) -> None:
    (tmp_path / "key.txt").write_text("filekey\n")
    body = {"predictionInstance": {"hostName": "h", "datarobotKeyFrom": {"file": "key.txt"}}}
    assert resolve_secrets(body, base_dir=str(tmp_path))["predictionInstance"] == {
        "hostName": "h", "datarobotKey": "filekey"}


def test_a_real_change_shows_with_its_path() -> None:
    d = desired("demo-a")
    item = api_item(d, id_="a" * 24)
    item["batchPredictionJob"]["intakeSettings"]["url"] = "s3://old/x.csv"
    item["batchPredictionJob"]["numConcurrent"] = 9  # server-chosen and not in the manifest: ignored
    assert [tuple(c) for c in _changes(d, item)] == [
        ("batchPredictionJob.intakeSettings.url", "change", "s3://old/x.csv", "s3://bucket/demo-a.csv")]


def test_num_concurrent_is_compared_when_the_manifest_sets_it() -> None:
    job = {"deploymentId": DEPLOYMENT, "intakeSettings": {"type": "dataset", "datasetId": CREDENTIAL},
           "numConcurrent": 2}
    d = desired("demo-a", job=job)
    item = api_item(d, id_="a" * 24)
    item["batchPredictionJob"]["numConcurrent"] = 3
    assert [c.path for c in _changes(d, item)] == ["batchPredictionJob.numConcurrent"]


def test_export_round_trip_has_no_changes() -> None:
    d = desired("demo-a", enabled=True, schedule={"cron": "0 3 * * *"}, name="Nightly Churn (EU)")
    item = api_item(d, id_="a" * 24)
    exported = normalize.manifest_from_live(item)
    assert exported["metadata"]["name"] == "nightly-churn-eu"
    assert exported["spec"]["name"] == "Nightly Churn (EU)"
    from reconciler.contract import validators
    assert validators.fast_validator("manifest").is_valid(exported)
    again = normalize.desired_from_manifest(Manifest.from_data(copy.deepcopy(exported)))
    assert _changes(again, item) == ()


def test_the_manifests_fill_leaves_the_job_spec_as_job_spec_defaults_would() -> None:
    """desired_from_manifest does not fill the job spec again when the manifest was built by
    Manifest.from_data (its fill reached the job spec): that must give the very same job spec,
    keys in the same order, for every manifest this repository ships and for every adapter."""
    from reconciler.contract.defaults import job_spec_defaults
    from reconciler.specs.validate import validate_paths

    root = Path(__file__).resolve().parents[2]
    report = validate_paths([root / "specs", root / "examples"])
    documents = [doc.data for doc in report.documents]
    assert len(documents) >= 10
    documents += [manifest_data_for(kind) for kind in ("s3", "gcp", "azure", "jdbc", "dataset", "bigquery",
                                                         "snowflake", "synapse")]
    for data in documents:
        manifest = Manifest.from_data(copy.deepcopy(data))
        assert manifest.defaults_filled
        job = manifest.spec.batchPredictionJob
        again = job_spec_defaults(copy.deepcopy(job))
        assert again == job and list(again) == list(job), data["metadata"]["name"]
        unfilled = Manifest.model_validate(manifest.model_dump(exclude_none=True))
        assert not unfilled.defaults_filled  # built otherwise: desired_from_manifest fills it itself
        assert normalize.desired_from_manifest(unfilled).body == normalize.desired_from_manifest(manifest).body


def manifest_data_for(kind: str) -> dict:
    intake = {"type": kind, "dataStoreId": CREDENTIAL, "table": "t"} if kind == "jdbc" else (
        {"type": "dataset", "datasetId": CREDENTIAL} if kind == "dataset" else {"type": kind})
    return manifest_data(f"fill-{kind}", job={"deploymentId": DEPLOYMENT, "intakeSettings": intake,
                                             "outputSettings": {"type": "localFile"}})
