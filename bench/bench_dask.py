"""The Dask executor against the local one: an N-row, 20-column CSV scored through localFile.

Not a test: prints numbers. Each run starts ``reconciler serve`` as a child process: with the
local executor, then with ``--executor dask`` on a real ``dask scheduler`` and 1, then 2,
single-threaded ``dask worker`` processes (no nanny, so each worker's peak RSS is its own, read
from /proc/<pid>/status VmHWM). Timed: scoring (upload done -> COMPLETED) and the time to the
first scored row on disk (the first part file on Dask, output.csv with the local executor);
the outputs of every run are compared byte for byte.

On a 2-core machine the service, the scheduler and the workers share the cores, so Dask cannot
show a speed-up here: the ratio printed is its overhead (planning, shipping, parts, commit).

    python bench/bench_dask.py --rows 10000000            # the issue's size (about 2 GB of CSV)
    python bench/bench_dask.py --rows 1000000 --partition-mb 32
"""

from __future__ import annotations

import argparse
import filecmp
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
from scoring_data import COLUMNS, make_csv, peak_rss_mb
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids
from reconciler.service.testing import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


class Cluster:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                            "--port", str(self.port), "--no-dashboard"], env=env(),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        self.workers = [subprocess.Popen([sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1",
                                          "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                          "--memory-limit", "0"], env=env(),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        for _ in range(workers)]
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self) -> None:
        for process in [*self.workers, *self.processes]:
            process.kill()
            process.wait()


def first_output(job_dir: Path, found: list[float], stop: threading.Event) -> None:
    """Record when a scored row first reaches the disk (a part, or the local executor's output)."""
    while not stop.is_set():
        paths = [*job_dir.glob("parts/*.csv*"), *job_dir.glob("output.csv*")]  # .tmp while written
        if any(p.stat().st_size > 0 for p in paths if p.exists()):
            found.append(time.perf_counter())
            return
        time.sleep(0.01)


def score(client: httpx.Client, deployment: str, source: Path, data_dir: Path, out: Path) -> tuple[float, float, str]:
    """One job: (scoring seconds, seconds to the first scored row on disk, statusDetails)."""
    job = client.post("batchPredictions/", json={
        "deploymentId": deployment, "intakeSettings": {"type": "localFile"},
        "outputSettings": {"type": "localFile"}}).json()
    with open(source, "rb") as data:
        client.put(f"batchPredictions/{job['id']}/csvUpload/", content=data,
                   headers={"Content-Type": "text/csv"}).raise_for_status()
    t0 = time.perf_counter()
    found: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=first_output, args=(data_dir / job["id"], found, stop), daemon=True)
    watcher.start()
    while (status := client.get(f"batchPredictions/{job['id']}/").json())["status"] not in (
            "COMPLETED", "FAILED", "ABORTED"):
        time.sleep(0.02)
    t1 = time.perf_counter()
    stop.set()
    assert status["status"] == "COMPLETED", status
    with client.stream("GET", status["links"]["download"]) as response, open(out, "wb") as sink:
        for chunk in response.iter_bytes():
            sink.write(chunk)
    return t1 - t0, (found[0] - t0) if found else float("nan"), str(status["statusDetails"])


def run(label: str, tmp: Path, source: Path, model: bytes, args: list[str], workers: list[int]) -> tuple[Path, float]:
    """Two jobs on a fresh service: the first (cold: the workers import the scoring stack and
    receive the model) and the second (warm). Returns the output and the warm job's seconds."""
    port = free_port()
    data_dir = tmp / f"jobs-{label}"
    service = subprocess.Popen([sys.executable, "-m", "reconciler", "serve", "--port", str(port),
                                "--db", f"sqlite:///{tmp}/{label}.db", "--data-dir", str(data_dir), *args],
                               env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp / f"out-{label}.csv"
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", timeout=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v2/", timeout=600) as client:
            deployment = ids.new_id()
            client.put(f"deployments/{deployment}/model", content=model,
                       params={"label": "bench", "targetName": "y"}).raise_for_status()
            for attempt in ("cold", "warm"):
                seconds, first, details = score(client, deployment, source, data_dir, out)
                print(f"{label:<8} {attempt}  scoring {seconds:6.2f}s  first row on disk {first:6.2f}s  ({details})")
        memory = f"service {peak_rss_mb(service.pid):,.0f} MB"
        if workers:
            memory += "; workers " + ", ".join(f"{peak_rss_mb(pid):,.0f}" for pid in workers) + " MB"
        print(f"{label:<8} peak RSS: {memory}")
        return out, seconds
    finally:
        service.terminate()
        service.wait(timeout=30)


def compare(left: Path, right: Path) -> str:
    """Byte for byte, else how far apart: scoring the same rows in other batches can change the
    last bit of a float (BLAS blocks a matrix product by batch size)."""
    if filecmp.cmp(left, right, shallow=False):
        return "byte for byte equal"
    a, b = pd.read_csv(left), pd.read_csv(right)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return f"DIFFERENT shape or columns: {a.shape} {list(a.columns)} vs {b.shape} {list(b.columns)}"
    numeric = a.select_dtypes("number").columns
    other = [c for c in a.columns if c not in numeric]
    if not a[other].equals(b[other]):
        return "DIFFERENT non-numeric values"
    gap = (a[numeric] - b[numeric]).abs()
    return (f"not byte for byte: {int((gap > 0).any(axis=1).sum())} of {len(a)} rows differ, by at most "
            f"{float(gap.to_numpy().max()):.1e} (last-bit float differences; every other value equal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partition-mb", type=int, default=64, help="--dask-partition-bytes, in MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as name:
        tmp = Path(name)
        source = tmp / "in.csv"
        started = time.perf_counter()
        make_csv(source, args.rows)
        size = source.stat().st_size
        print(f"input: {args.rows:,} rows x 20 columns, {size / 1e6:,.0f} MB (generated in "
              f"{time.perf_counter() - started:.1f}s); {os.cpu_count()} CPU(s); partitions of {args.partition_mb} MiB "
              f"(about {max(1, round(size / (args.partition_mb * 1024**2)))})")
        rng = np.random.default_rng(1)
        train = pd.DataFrame(rng.normal(size=(5000, 20)), columns=COLUMNS)
        buffer = io.BytesIO()
        joblib.dump(LogisticRegression().fit(train, (train["f00"] + train["f01"] > 0).astype(int)), buffer)
        model = buffer.getvalue()

        outputs = {"local": run("local", tmp, source, model, [], [])}
        for count in (1, 2):
            cluster = Cluster(count)
            try:
                outputs[f"dask-{count}"] = run(
                    f"dask-{count}", tmp, source, model,
                    ["--executor", "dask", "--dask-scheduler", cluster.address,
                     "--dask-partition-bytes", str(args.partition_mb * 1024**2)], [w.pid for w in cluster.workers])
            finally:
                cluster.stop()
        local_path, local_seconds = outputs["local"]
        for label, (path, seconds) in outputs.items():
            print(f"{label:<8} warm {args.rows / seconds:>10,.0f} rows/s  {seconds / local_seconds:5.2f}x the local "
                  f"time; output vs local: {compare(local_path, path)}")


if __name__ == "__main__":
    main()
