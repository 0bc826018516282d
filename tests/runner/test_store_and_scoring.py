"""Store-level execution state (atomic claim, lease expiry after a restart), the pure scoring
rules where the contract is unsure, and admin registration through the CLI."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from reconciler.cli import app as cli_app
from reconciler.service import ids
from reconciler.service.records import JobRecord, ResourceRecord
from reconciler.service.runner import artifacts, scoring
from reconciler.service.runner.pool import RESTARTED, JobRunner
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store

from .conftest import FEATURES, Models, artifact, make_frame

USER = {"username": "t", "userId": "0" * 24, "fullName": None}


def queued_job(store: Store, *, intake: str = "s3") -> JobRecord:
    now = ids.iso(ids.utcnow())
    deployment = ids.new_id()
    store.create_resource(ResourceRecord(id=deployment, kind="deployment", name="d", body={"label": "d"},
                                         created=now, created_by=USER))
    return store.create_job(JobRecord(id=ids.new_id(), status="INITIALIZING", status_details="queued",
                                      job={"deploymentId": deployment, "intakeSettings": {"type": intake}},
                                      created=now, updated=now, created_by=USER))


def test_claim_is_atomic_and_local_file_waits_for_upload(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    waiting = queued_job(store, intake="localFile")
    now = ids.iso(ids.utcnow())
    assert store.claim_next_job("a", now=now) is None  # no data uploaded yet
    store.complete_upload(waiting.id, intake_bytes=10, now=now)
    claimed = store.claim_next_job("a", now=now)
    assert claimed is not None and claimed.id == waiting.id and claimed.status == "RUNNING"
    assert store.claim_next_job("b", now=now) is None  # nobody claims it twice
    assert store.update_job_progress(waiting.id, "b", now=now, percentage=1, scored_rows=1, failed_rows=0) is False
    assert store.update_job_progress(waiting.id, "a", now=now, percentage=1, scored_rows=1, failed_rows=0) is True
    store.set_job_status(waiting.id, status="ABORTED", details="Job aborted by the user", now=now,
                         only_from=("RUNNING",))
    # after an abort, the runner's progress write is its cancel signal, and a late finish is ignored
    assert store.update_job_progress(waiting.id, "a", now=now, percentage=2, scored_rows=2, failed_rows=0) is False
    assert store.finish_job(waiting.id, "a", status="COMPLETED", details="x", now=now, percentage=100,
                            scored_rows=2, failed_rows=0) is None
    assert store.get_job(waiting.id).status == "ABORTED"


def test_claim_race_between_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = Store(f"sqlite:///{tmp_path}/s.db")
    made = {queued_job(store).id for _ in range(20)}
    now = ids.iso(ids.utcnow())

    def claim_all(runner: str) -> list[str]:
        got = []
        while (job := store.claim_next_job(runner, now=now)) is not None:
            got.append(job.id)
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claim_all, ["r1", "r2", "r3", "r4"]))
    claimed = [job_id for result in results for job_id in result]
    assert sorted(claimed) == sorted(made)  # every job exactly once


def test_restart_fails_jobs_left_running_and_picks_up_queued(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    store = Store(db)
    orphan, queued = queued_job(store), queued_job(store)
    long_ago = ids.iso(ids.utcnow() - timedelta(minutes=5))
    assert store.claim_next_job("dead-process", now=long_ago) is not None  # claims the oldest: orphan
    store.close()
    leftover = tmp_path / "jobs" / orphan.id  # what the dead process left: its upload and partial output
    (leftover / "input").mkdir(parents=True)
    (leftover / "input" / "000000.csv").write_text("x1\n1\n")
    (leftover / "output.csv.tmp").write_text("partial")

    async def restart() -> JobRunner:
        runner = JobRunner(Store(db), ServiceSettings(db_url=db, runner_poll_seconds=0.05))
        await runner.start()
        for _ in range(100):
            if runner.store.get_job(queued.id).status in ("FAILED", "COMPLETED"):
                break
            await asyncio.sleep(0.05)
        await runner.stop()
        return runner

    runner = asyncio.run(restart())
    failed = runner.store.get_job(orphan.id)
    assert failed.status == "FAILED" and failed.status_details == RESTARTED
    assert not leftover.exists()
    picked = runner.store.get_job(queued.id)  # claimed after the restart; s3 without a model fails clearly
    assert picked.status == "FAILED" and "has no model" in picked.status_details and picked.runner == runner.runner_id


def test_restart_fails_jobs_of_a_dead_local_process_at_once(tmp_path: Path) -> None:
    """A job whose runner was a process on this machine that is gone fails on start, before its
    lease expires; one held by a live process, or by a runner elsewhere, keeps running."""
    import os
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path}/s.db"
    store = Store(db)
    probe = JobRunner(store, ServiceSettings(db_url=db))
    host, _, scope, _ = probe.runner_id.split(":")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    gone = int(child.stdout)  # exited: its pid names no process (unless reused at once)
    runners = {"dead": f"{host}:{gone}:{scope}:00000000", "alive": f"{host}:{os.getpid()}:{scope}:11111111",
               "elsewhere": f"other-host:{gone}:{scope}:22222222", "other-namespace": f"{host}:{gone}:ffffffff:3"}
    jobs = {}
    fresh = ids.iso(ids.utcnow())  # leases just renewed: only the pid check can fail them
    for name, runner in runners.items():
        job = queued_job(store)
        claimed = store.claim_next_job(runner, now=fresh)
        assert claimed is not None and claimed.id == job.id
        jobs[name] = job.id

    probe._fail_abandoned()
    statuses = {name: store.get_job(job_id) for name, job_id in jobs.items()}
    assert statuses["dead"].status == "FAILED" and statuses["dead"].status_details == RESTARTED
    assert all(statuses[name].status == "RUNNING" for name in ("alive", "elsewhere", "other-namespace"))
    probe.scoring_pool.shutdown()
    probe.driver_pool.shutdown()


def options(**spec: object) -> scoring.ScoringOptions:
    return scoring.options_from_spec(spec, target="t", task="binary", class_names=["no", "yes"])


class Fixed:
    """A model with given probabilities, to pin the threshold rule."""

    task = "binary"
    allow_nan = False

    def __init__(self, positive: list[float]) -> None:
        self.class_names = ["no", "yes"]
        self.feature_names = ["a"]
        self.positive = np.array(positive)

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([1 - self.positive, self.positive])


def test_binary_threshold_is_strict_and_columns_are_ordered() -> None:
    frame = pd.DataFrame({"a": ["1", "2", "3"], "keep": ["007", "x", "y"]})
    out = scoring.score_chunk(Fixed([0.5, 0.51, 0.2]), frame, options(passthroughColumns=["keep"])).frame
    assert list(out.columns) == ["keep", "t_yes_PREDICTION", "t_no_PREDICTION", "t_PREDICTION", "THRESHOLD",
                                 "POSITIVE_CLASS"]
    assert out["t_PREDICTION"].tolist() == ["no", "yes", "no"]  # 0.5 is not above 0.5: as sklearn's argmax
    assert out["keep"].tolist() == ["007", "x", "y"] and out["POSITIVE_CLASS"].tolist() == ["yes"] * 3
    remapped = scoring.score_chunk(Fixed([0.9, 0.1, 0.2]), frame, options(
        predictionThreshold=0.05, includeProbabilities=False, includePredictionStatus=True,
        columnNamesRemapping={"t_PREDICTION": "label", "THRESHOLD": None})).frame
    assert list(remapped.columns) == ["label", "POSITIVE_CLASS", "prediction_status"]
    assert remapped["label"].tolist() == ["yes", "yes", "yes"]


def test_unsupported_options_fail_clearly() -> None:
    with pytest.raises(scoring.ScoringError, match="maxExplanations"):
        options(maxExplanations=2)
    with pytest.raises(scoring.ScoringError, match="maxNgramExplanations: all"):
        options(maxNgramExplanations="all")
    assert options(maxNgramExplanations=0, maxExplanations=0).threshold == 0.5
    with pytest.raises(scoring.ScoringError, match="timeseriesSettings"):
        options(timeseriesSettings={"type": "forecast"})
    with pytest.raises(scoring.ScoringError, match="unknown class"):
        options(includeProbabilitiesClasses=["maybe"])
    with pytest.raises(scoring.ScoringError, match="lacks 1 feature column"):
        scoring.score_chunk(Fixed([0.1]), pd.DataFrame({"b": ["1"]}), options())


def test_register_through_the_cli(tmp_path: Path, models: Models) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(artifact(models.multiclass))
    db = f"sqlite:///{tmp_path}/cli.db"
    deployment_id = ids.new_id()
    result = CliRunner().invoke(cli_app, ["models", "register", "--db", db, "--deployment-id", deployment_id,
                                          "--label", "cli", "--artifact", str(path), "--target-name", "level"])
    assert result.exit_code == 0, result.output
    store = Store(db)
    record, data = store.get_model_artifact(deployment_id)
    assert record.task == "multiclass" and record.class_names == ["high", "low", "mid"]
    assert record.feature_names == FEATURES and record.target_name == "level"
    assert store.get_resource("deployment", deployment_id).name == "cli"
    loaded = artifacts.load(record.kind, data)
    frame = make_frame(10)[FEATURES]
    assert np.allclose(loaded.predict_proba(frame.to_numpy()), models.multiclass.predict_proba(frame))


def test_register_through_the_cli_reports_each_refusal_as_one_line(tmp_path: Path, models: Models) -> None:
    """Bad flags, an unusable file and a store refusal: exit 1, one ``error:`` line, no traceback."""
    path = tmp_path / "model.joblib"
    path.write_bytes(artifact(models.multiclass))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model")
    base = ["models", "register", "--db", f"sqlite:///{tmp_path}/cli.db"]
    for args, message in ((["--deployment-id", "nope", "--artifact", str(path)], "--deployment-id must be 24 hex"),
                          (["--deployment-id", ids.new_id(), "--artifact", str(path), "--kind", "pmml"],
                           "--kind must be one of joblib, onnx"),
                          (["--deployment-id", ids.new_id(), "--artifact", str(junk)], f"cannot use {junk}"),
                          (["--deployment-id", ids.new_id(), "--artifact", str(path)], "no deployment with id")):
        result = CliRunner().invoke(cli_app, [*base, *args])
        assert result.exit_code == 1 and f"error: {message}" in result.output, result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
