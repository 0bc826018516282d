"""End to end with the official SDK 3.20: ad-hoc localFile jobs (plain and multipart uploads),
score_to_file, score_pandas, a definition's run_once, abort, bad rows, an ONNX model."""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path
from typing import Any

import datarobot as dr
import httpx
import numpy as np
import pandas as pd
import pytest

from reconciler.service.testing import LocalServer, wait_for_job

from .conftest import FEATURES, Models, make_frame, register


def test_score_binary_matches_the_model(tmp_path: Path, models: Models, deployments: dict[str, str],
                                        client: httpx.Client) -> None:
    frame = make_frame(2000, seed=3)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    job = dr.BatchPredictionJob.score(
        deployments["binary"], intake_settings={"type": "localFile", "file": str(source)},
        output_settings={"type": "localFile", "path": str(target)}, passthrough_columns=["row_id"])
    status = job.get_status()
    assert status["status"] == "COMPLETED", status
    assert status["scored_rows"] == 2000 and status["failed_rows"] == 0 and status["percentage_completed"] == 100
    scored = pd.read_csv(target, dtype={"row_id": str})
    # contract §7b: passthrough, per-class probabilities (positive class first), label, threshold, positive class
    assert list(scored.columns) == ["row_id", "label_1_PREDICTION", "label_0_PREDICTION", "label_PREDICTION",
                                    "THRESHOLD", "POSITIVE_CLASS"]
    expected = models.binary.predict_proba(frame[FEATURES])
    assert np.allclose(scored["label_1_PREDICTION"], expected[:, 1], atol=1e-12)
    assert np.allclose(scored["label_0_PREDICTION"], expected[:, 0], atol=1e-12)
    assert (scored["label_PREDICTION"].to_numpy() == models.binary.predict(frame[FEATURES])).all()
    assert (scored["row_id"] == frame["row_id"]).all()
    assert set(scored["THRESHOLD"]) == {0.5} and set(scored["POSITIVE_CLASS"]) == {1}


def test_score_to_file_multiclass_multipart_all_passthrough(tmp_path: Path, models: Models,
                                                           deployments: dict[str, str]) -> None:
    frame = make_frame(1500, seed=4)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    # multipart: the SDK re-chunks the file with csv.writer, which rejects "tab" (an SDK limit), so comma here
    dr.BatchPredictionJob.score(
        deployments["multiclass"], intake_settings={"type": "localFile", "file": str(source), "multipart": True},
        output_settings={"type": "localFile", "path": str(target)}, passthrough_columns_set="all",
        include_prediction_status=True, download_timeout=30)
    scored = pd.read_csv(target, dtype={"row_id": str})
    classes = list(models.multiclass.classes_)
    assert list(scored.columns) == [*frame.columns, *[f"level_{c}_PREDICTION" for c in classes],
                                    "level_PREDICTION", "prediction_status"]
    expected = models.multiclass.predict_proba(frame[FEATURES])
    for i, name in enumerate(classes):
        assert np.allclose(scored[f"level_{name}_PREDICTION"], expected[:, i], atol=1e-12)
    assert (scored["level_PREDICTION"] == models.multiclass.predict(frame[FEATURES])).all()
    assert set(scored["prediction_status"]) == {"OK"}

    again = tmp_path / "again.csv"
    frame.to_csv(source, sep="\t", index=False)
    job = dr.BatchPredictionJob.score_to_file(deployments["multiclass"], str(source), str(again),
                                              csv_settings={"delimiter": "tab", "quotechar": '"', "encoding": "utf-8"},
                                              include_probabilities_classes=["low"])
    assert job.get_status()["status"] == "COMPLETED"
    assert list(pd.read_csv(again, sep="\t").columns) == ["level_low_PREDICTION", "level_PREDICTION"]


def test_score_pandas_regression(models: Models, deployments: dict[str, str]) -> None:
    frame = make_frame(800, seed=5)
    job, scored = dr.BatchPredictionJob.score_pandas(deployments["regression"], frame,
                                                     column_names_remapping={"x3": None})
    assert job.get_status()["status"] == "COMPLETED"
    # the SDK passes its own index column through and joins on it; the model adds y_PREDICTION
    assert list(scored.columns) == [*frame.columns, "y_PREDICTION"]
    assert np.allclose(scored["y_PREDICTION"], models.regression.predict(frame[FEATURES]), atol=1e-9)


def test_run_once_definition_with_uploaded_data(tmp_path: Path, models: Models, deployments: dict[str, str],
                                                client: httpx.Client) -> None:
    """run_once of a definition; its intake is localFile, so the data is PUT to links.csvUpload."""
    spec = {"deployment_id": deployments["binary"], "intake_settings": {"type": "localFile"},
            "output_settings": {"type": "localFile"}, "prediction_threshold": 0.8, "num_concurrent": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        definition = dr.BatchPredictionJobDefinition.create(enabled=False, batch_prediction_job=spec,
                                                            name=f"runner-{time.time_ns()}")
        job = definition.run_once()
    status = client.get(f"batchPredictions/{job.id}/").json()
    assert status["status"] == "INITIALIZING" and status["links"]["csvUpload"].endswith(f"/{job.id}/csvUpload/")
    frame = make_frame(500, seed=6)
    uploaded = client.put(status["links"]["csvUpload"], content=frame.to_csv(index=False).encode(),
                          headers={"Content-Type": "text/csv"})
    assert uploaded.status_code == 202, uploaded.text
    finished = wait_for_job(client, job.id)
    assert finished["status"] == "COMPLETED", finished
    scored = pd.read_csv(io_of(client.get(finished["links"]["download"]).content))
    probability = models.binary.predict_proba(frame[FEATURES])[:, 1]
    assert (scored["THRESHOLD"] == 0.8).all()
    assert scored["label_PREDICTION"].tolist() == np.where(probability > 0.8, 1, 0).tolist()
    fetched = client.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
    assert fetched["lastStartedJobStatus"] == "COMPLETED" and fetched["lastSuccessfulRunTime"] == finished["updated"] \
        if "updated" in finished else fetched["lastStartedJobStatus"] == "COMPLETED"


def io_of(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def test_abort_running_job(tmp_path: Path, deployments: dict[str, str], client: httpx.Client) -> None:
    frame = make_frame(300_000, seed=7)
    body = {"deploymentId": deployments["binary"], "intakeSettings": {"type": "localFile"},
            "outputSettings": {"type": "localFile"}, "chunkSize": 65536, "numConcurrent": 1,
            "passthroughColumnsSet": "all"}
    created = client.post("batchPredictions/", json=body)
    assert created.status_code == 202 and created.headers["Location"].endswith(f"/{created.json()['id']}/")
    job_id = created.json()["id"]
    assert client.put(f"batchPredictions/{job_id}/csvUpload/", content=frame.to_csv(index=False).encode(),
                      headers={"Content-Type": "text/csv"}).status_code == 202
    deadline = time.monotonic() + 30
    while client.get(f"batchPredictions/{job_id}/").json()["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.delete(f"batchPredictions/{job_id}/").status_code == 204
    time.sleep(1.0)  # let the runner notice and stop
    job = client.get(f"batchPredictions/{job_id}/").json()
    assert job["status"] == "ABORTED" and job["statusDetails"] == "Job aborted by the user"
    assert job["scoredRows"] < 300_000 and "download" not in job["links"]
    assert client.get(f"batchPredictions/{job_id}/download/").status_code == 404


def test_bad_rows(deployments: dict[str, str], client: httpx.Client) -> None:
    csv = "row_id,x1,x2,x3\na,0.1,0.2,0.3\nb,oops,0.2,0.3\nc,,1,1\nd,-1,-1,-1\n"

    def run(**extra: Any) -> dict[str, Any]:
        body = {"deploymentId": deployments["binary"], "intakeSettings": {"type": "localFile"},
                "outputSettings": {"type": "localFile"}, "passthroughColumns": ["row_id"], **extra}
        job_id = client.post("batchPredictions/", json=body).json()["id"]
        client.put(f"batchPredictions/{job_id}/csvUpload/", content=csv.encode(), headers={"Content-Type": "text/csv"})
        return wait_for_job(client, job_id)

    lenient = run(abortOnError=False, includePredictionStatus=True)
    assert lenient["status"] == "COMPLETED" and lenient["failedRows"] == 2 and lenient["scoredRows"] == 2
    scored = pd.read_csv(io_of(client.get(lenient["links"]["download"]).content), keep_default_na=False)
    assert scored["prediction_status"].tolist()[0] == "OK" and scored["prediction_status"].tolist()[3] == "OK"
    assert "x1" in scored["prediction_status"][1] and "x1" in scored["prediction_status"][2]
    assert scored["label_PREDICTION"].tolist()[1] == "" and scored["row_id"].tolist() == ["a", "b", "c", "d"]
    strict = run()
    assert strict["status"] == "FAILED" and strict["statusDetails"].startswith("row 2: ")
    unsupported = run(maxExplanations=3)
    assert unsupported["status"] == "FAILED" and "maxExplanations" in unsupported["statusDetails"]


def test_onnx_model(tmp_path: Path, models: Models, client: httpx.Client) -> None:
    from skl2onnx import to_onnx

    onnx_model = to_onnx(models.binary, make_frame(5)[FEATURES].to_numpy(dtype=np.float32),
                         options={"zipmap": False}, target_opset=15)
    deployment_id = register(client, onnx_model.SerializeToString(), kind="onnx", featureNames="x1,x2,x3",
                             targetName="label")
    described = client.get(f"deployments/{deployment_id}/model").json()
    assert described["targetType"] == "binary" and described["classNames"] == ["0", "1"]
    frame = make_frame(1000, seed=8)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    dr.BatchPredictionJob.score_to_file(deployment_id, str(source), str(target))
    scored = pd.read_csv(target)
    expected = models.binary.predict_proba(frame[FEATURES])[:, 1]
    assert np.allclose(scored["label_1_PREDICTION"], expected, atol=1e-5)  # float32 inside ONNX


def test_dataset_intake_from_the_ai_catalog(tmp_path: Path, models: Models, deployments: dict[str, str]) -> None:
    """``Dataset.create_from_in_memory_data`` then ``score`` with a ``dataset`` intake: the job reads
    the catalog's file; text passthrough values stay as uploaded."""
    frame = make_frame(1200, seed=9)
    frame["row_id"] = [f"00{i}" for i in range(1200)]
    dataset: Any = dr.Dataset.create_from_in_memory_data(data_frame=frame, fname="catalog.csv")
    target = tmp_path / "out.csv"
    job = dr.BatchPredictionJob.score(deployments["regression"], intake_settings={"type": "dataset", "dataset": dataset},
                                      output_settings={"type": "localFile", "path": str(target)},
                                      passthrough_columns=["row_id"])
    status = job.get_status()
    assert status["status"] == "COMPLETED" and status["scored_rows"] == 1200, status
    assert status["job_spec"]["intake_settings"]["dataset_id"] == dataset.id
    scored = pd.read_csv(target, dtype={"row_id": str})
    assert list(scored.columns) == ["row_id", "y_PREDICTION"] and scored["row_id"].tolist() == frame["row_id"].tolist()
    assert np.allclose(scored["y_PREDICTION"], models.regression.predict(frame[FEATURES]), atol=1e-9)


def test_no_model_fails_clearly(client: httpx.Client, server: LocalServer) -> None:
    deployment = client.post("deployments/", json={"label": "no model"}).json()["id"]
    body = {"deploymentId": deployment, "intakeSettings": {"type": "localFile"}}
    job_id = client.post("batchPredictions/", json=body).json()["id"]
    client.put(f"batchPredictions/{job_id}/csvUpload/", content=b"x1,x2,x3\n1,2,3\n")
    job = wait_for_job(client, job_id)
    assert job["status"] == "FAILED" and "has no model" in job["statusDetails"]


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_unrunnable_adapter_fails_before_the_upload(tmp_path: Path, deployments: dict[str, str],
                                                   client: httpx.Client) -> None:
    """A bigquery output with a localFile intake: the job is FAILED in the POST's own answer, with
    the reason, so the SDK's upload is refused at once (409 naming it) instead of being read in
    full and failed afterwards; run_once of such a definition fails at once too."""
    source = tmp_path / "in.csv"
    make_frame(20_000, seed=11).to_csv(source, index=False)
    bigquery = {"type": "bigquery", "dataset": "scores", "table": "daily", "bucket": "staging"}
    with pytest.raises(dr.errors.ClientError) as refused:
        dr.BatchPredictionJob.score(deployments["binary"], intake_settings={"type": "localFile", "file": str(source)},
                                    output_settings=bigquery)
    assert refused.value.status_code == 409 and "output type 'bigquery'" in str(refused.value)
    created = client.post("batchPredictions/", json={"deploymentId": deployments["binary"],
                                                     "intakeSettings": {"type": "localFile"}, "outputSettings": bigquery})
    assert created.status_code == 202
    job = created.json()
    assert job["status"] == "FAILED" and "output type 'bigquery' needs a cloud service" in job["statusDetails"]
    upload = client.put(job["links"]["csvUpload"], content=source.read_bytes(), headers={"Content-Type": "text/csv"})
    assert upload.status_code == 409 and "output type 'bigquery'" in upload.json()["message"]
    assert client.get(f"batchPredictions/{job['id']}/").json()["status"] == "FAILED"

    spec = {"deployment_id": deployments["binary"], "num_concurrent": 1, "intake_settings": {"type": "localFile"},
            "output_settings": {"type": "bigquery", "dataset": "scores", "table": "daily", "bucket": "staging"}}
    definition = dr.BatchPredictionJobDefinition.create(enabled=False, batch_prediction_job=spec,
                                                        name=f"bigquery-{time.time_ns()}")
    ran = definition.run_once()
    assert ran.status == "FAILED"
    assert "output type 'bigquery'" in dr.BatchPredictionJob.get(ran.id).get_status()["status_details"]
    raw = client.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
    failed_job = client.get(f"batchPredictions/{ran.id}/").json()
    assert raw["lastStartedJobStatus"] == "FAILED" and raw["lastFailedRunTime"] == failed_job["created"]
    definition.delete()


def test_job_files_do_not_pile_up(tmp_path: Path, deployments: dict[str, str], client: httpx.Client,
                                  server: LocalServer) -> None:
    """Uploaded data is dropped once a job ends (a localFile job cannot be re-run from it); a
    COMPLETED job keeps only its scored file for download; a failed, or aborted-before-upload-end,
    job keeps nothing. Before, every upload stayed in the data directory for ever."""
    data_dir = Path(server.db_url[len("sqlite:///"):]).parent / "jobs"
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    make_frame(3000, seed=12).to_csv(source, index=False)
    done = dr.BatchPredictionJob.score_to_file(deployments["binary"], str(source), str(target))
    deadline = time.monotonic() + 10
    while (data_dir / done.id / "input").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the runner cleans up right after it records the outcome
    assert not (data_dir / done.id / "input").exists()
    assert (data_dir / done.id / "output.csv").is_file()
    assert client.get(f"batchPredictions/{done.id}/download/").content == target.read_bytes()

    body = {"deploymentId": deployments["binary"], "intakeSettings": {"type": "localFile"}}
    failing = client.post("batchPredictions/", json=body).json()["id"]
    client.put(f"batchPredictions/{failing}/csvUpload/", content=b"x1,x2,x3\n1,oops,3\n")
    assert wait_for_job(client, failing)["status"] == "FAILED"
    deadline = time.monotonic() + 10
    while (data_dir / failing).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (data_dir / failing).exists()

    multipart = client.post("batchPredictions/", json=body).json()["id"]
    assert client.put(f"batchPredictions/{multipart}/csvUpload/part/0/", content=b"x1,x2,x3\n1,2,3\n").status_code == 202
    assert (data_dir / multipart / "input").is_dir()
    assert client.delete(f"batchPredictions/{multipart}/").status_code == 204  # never finalized
    assert not (data_dir / multipart).exists()


def test_waiting_on_finished_jobs_with_the_sdk(tmp_path: Path, deployments: dict[str, str],
                                               client: httpx.Client) -> None:
    """``Job.wait_for_completion`` (datarobot/utils/waiters.py) polls ``GET batchPredictions/{id}/``
    every 5 s and stops on a 303, on ``completed`` (returns) or on a status starting ``error`` or
    ``abort`` (raises AsyncProcessUnsuccessfulError); ``BatchPredictionJob.get`` and the
    ``refresh`` that ends every wait send the very same request and accept only a 200 (a 303 is
    ``PendingJobFinished`` / ``AsyncFailureError`` there). So the route answers 200 for every job,
    as DataRobot does (the SDK's own ``_wait_for_download`` reads FAILED and ABORTED from that
    200): COMPLETED and ABORTED end a wait at once; FAILED, a status the waiter does not know,
    keeps it polling until ``max_wait`` with SDK 3.20, while get, get_status and list show it."""
    source = tmp_path / "in.csv"
    make_frame(50, seed=9).to_csv(source, index=False)
    completed = dr.BatchPredictionJob.score(deployments["binary"], intake_settings={
        "type": "localFile", "file": str(source)}, output_settings={"type": "localFile", "path": str(tmp_path / "o.csv")})
    waiting = client.post("batchPredictions/", json={"deploymentId": deployments["binary"],
                                                     "intakeSettings": {"type": "localFile"}}).json()
    assert client.delete(f"batchPredictions/{waiting['id']}/").status_code == 204
    failed = client.post("batchPredictions/", json={"deploymentId": deployments["binary"], "intakeSettings": {
        "type": "bigquery", "dataset": "d", "table": "t", "bucket": "b"}}).json()  # no local adapter

    started = time.monotonic()
    dr.BatchPredictionJob.get(completed.id).wait_for_completion()
    with pytest.raises(dr.errors.AsyncProcessUnsuccessfulError, match="ABORTED"):
        dr.BatchPredictionJob.get(waiting["id"]).wait_for_completion()
    assert time.monotonic() - started < 4.5  # the waiter polls every 5 s: both ended on the first poll

    job = dr.BatchPredictionJob.get(failed["id"])
    deadline = time.monotonic() + 30  # the runner fails it on its next pass; a busy machine may lag
    while (status := job.get_status())["status"] not in {"FAILED", "COMPLETED", "ABORTED"}:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "FAILED" and "needs a cloud service" in status["status_details"]
    assert failed["id"] in [j["id"] for j in dr.BatchPredictionJob.list_by_status(["FAILED"])]
    started = time.monotonic()  # the wait of download/score_to_file/score_pandas knows FAILED (README)
    with pytest.raises(RuntimeError, match="needs a cloud service"):
        job.download(io.BytesIO(), timeout=30)
    assert time.monotonic() - started < 4.5
    started = time.monotonic()
    with pytest.raises(dr.errors.AsyncTimeoutError):  # the SDK 3.20 limit stated above, pinned down
        job.wait_for_completion(max_wait=1)
    assert 4 < time.monotonic() - started < 15
