"""Fixtures for jobs scored on Dask: a real scheduler and two worker processes on loopback, a
service whose runner uses them (``--executor dask``), and a service with the local executor that
scores the same jobs for reference. Partitions are small (tens of kB, hundreds of rows) so that
small inputs split into many of them."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from reconciler.service import ids
from reconciler.service.runner import files
from reconciler.service.testing import LocalServer, wait_for_job

from .cluster import DaskProcesses

TOKEN = "scaleout-token-41c2"
FEATURES = ["x1", "x2", "x3"]
PARTITION_BYTES = 40_000
PARTITION_ROWS = 400


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, 3)).round(4), columns=FEATURES)
    data.insert(0, "row_id", [f"r{i:06d}" for i in range(n)])
    return data


def artifact(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


@dataclass
class Service:
    """One served instance and an HTTP client on its API."""

    server: LocalServer
    http: httpx.Client

    def register(self, data: bytes) -> str:
        deployment_id = ids.new_id()
        answer = self.http.put(f"deployments/{deployment_id}/model", content=data,
                               params={"label": f"d-{deployment_id}", "targetName": "label"},
                               headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 200, answer.text
        return deployment_id

    def create(self, kind: str, body: dict[str, Any]) -> str:
        answer = self.http.post(kind, json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def start(self, body: dict[str, Any], upload: bytes | None = None) -> str:
        created = self.http.post("batchPredictions/", json=body)
        assert created.status_code == 202, created.text
        job_id = str(created.json()["id"])
        if upload is not None:
            put = self.http.put(f"batchPredictions/{job_id}/csvUpload/", content=upload,
                                headers={"Content-Type": "text/csv"})
            assert put.status_code == 202, put.text
        return job_id

    def run(self, body: dict[str, Any], upload: bytes | None = None, timeout: float = 120) -> dict[str, Any]:
        return wait_for_job(self.http, self.start(body, upload), timeout=timeout)

    def download(self, job: dict[str, Any]) -> bytes:
        assert job["status"] == "COMPLETED", job
        return self.http.get(job["links"]["download"]).content

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"batchPredictions/{job_id}/").json())

    def wait_running(self, job_id: str, *, percentage: float = 0.0, timeout: float = 60) -> dict[str, Any]:
        """The job once RUNNING with more than ``percentage`` done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] == "RUNNING" and job["percentageCompleted"] > percentage:
                return job
            assert job["status"] in ("INITIALIZING", "RUNNING"), job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not get past {percentage}% in {timeout}s")


def job_dir(service: Service, job_id: str) -> Path:
    """The job's folder in the service's data directory (next to its SQLite database)."""
    return files.job_dir(Path(service.server.db_url[len("sqlite:///"):]).parent / "jobs", job_id)


def eventually_gone(path: Path, timeout: float = 15) -> bool:
    """True once ``path`` is gone (the runner cleans up after the job's status changed)."""
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def serve(**settings: Any) -> tuple[LocalServer, httpx.Client]:
    server = LocalServer(token=TOKEN, run_jobs=True, settings={"scheduler_interval": 0, **settings}).__enter__()
    return server, httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=60)


@pytest.fixture(scope="session")
def dask_processes() -> Iterator[DaskProcesses]:
    with DaskProcesses(workers=2) as processes:
        yield processes


def dask_settings(address: str) -> dict[str, Any]:
    return {"executor": "dask", "dask_scheduler": address, "dask_partition_bytes": PARTITION_BYTES,
            "dask_partition_rows": PARTITION_ROWS, "dask_worker_wait_seconds": 60}


@pytest.fixture(scope="session")
def on_dask(dask_processes: DaskProcesses) -> Iterator[Service]:
    server, http = serve(**dask_settings(dask_processes.address))
    try:
        yield Service(server, http)
    finally:
        http.close()
        server.stop()


@pytest.fixture(scope="session")
def on_local() -> Iterator[Service]:
    server, http = serve()
    try:
        yield Service(server, http)
    finally:
        http.close()
        server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[tuple[str, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    try:
        yield endpoint, client
    finally:
        server.stop()
