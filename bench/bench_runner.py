"""Job runner throughput: score an N-row, 20-column CSV through localFile with a LogisticRegression.

Not a test: prints numbers. The service runs as ``reconciler serve`` in a child process (so the
client does not share its GIL, and its peak RSS is its own, read from /proc/<pid>/status VmHWM).
Timed: upload (PUT csvUpload), scoring (upload done -> COMPLETED), download. Compared with the
physical floor in this process: pandas.read_csv of the whole file + one predict_proba call.

    python bench/bench_runner.py --rows 1000000
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
from scoring_data import COLUMNS, make_csv, peak_rss_mb
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids
from reconciler.service.testing import LocalServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--num-concurrent", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        source = Path(tmp) / "in.csv"
        started = time.perf_counter()
        make_csv(source, args.rows)
        print(f"input: {args.rows} rows x 20 columns, {source.stat().st_size / 1e6:.0f} MB "
              f"(generated in {time.perf_counter() - started:.1f}s)")
        rng = np.random.default_rng(1)
        train = pd.DataFrame(rng.normal(size=(5000, 20)), columns=COLUMNS)
        model = LogisticRegression().fit(train, (train["f00"] + train["f01"] > 0).astype(int))
        buffer = io.BytesIO()
        joblib.dump(model, buffer)

        with LocalServer(separate_process=True, run_jobs=True, db_url=f"sqlite:///{tmp}/bench.db") as server, \
                httpx.Client(base_url=server.api_url, timeout=600) as client:
            assert server._process is not None
            pid = server._process.pid
            deployment = ids.new_id()
            client.put(f"deployments/{deployment}/model", content=buffer.getvalue(),
                       params={"label": "bench", "targetName": "y"}).raise_for_status()
            job = client.post("batchPredictions/", json={
                "deploymentId": deployment, "intakeSettings": {"type": "localFile"},
                "outputSettings": {"type": "localFile"}, "numConcurrent": args.num_concurrent}).json()
            t0 = time.perf_counter()
            with open(source, "rb") as data:
                client.put(f"batchPredictions/{job['id']}/csvUpload/", content=data,
                           headers={"Content-Type": "text/csv"}).raise_for_status()
            t1 = time.perf_counter()
            while (status := client.get(f"batchPredictions/{job['id']}/").json())["status"] not in (
                    "COMPLETED", "FAILED", "ABORTED"):
                time.sleep(0.02)
            t2 = time.perf_counter()
            assert status["status"] == "COMPLETED", status
            out = Path(tmp) / "out.csv"
            with client.stream("GET", status["links"]["download"]) as response, open(out, "wb") as sink:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
            t3 = time.perf_counter()
            rss = peak_rss_mb(pid)
        with open(out) as lines:
            scored_rows = sum(1 for _ in lines) - 1
        assert scored_rows == args.rows, scored_rows
        scoring_s = t2 - t1
        print(f"upload   {t1 - t0:6.2f}s  ({source.stat().st_size / 1e6 / (t1 - t0):.0f} MB/s)")
        print(f"scoring  {scoring_s:6.2f}s  {args.rows / scoring_s:,.0f} rows/s  (numConcurrent {args.num_concurrent})")
        print(f"download {t3 - t2:6.2f}s  ({out.stat().st_size / 1e6:.0f} MB)")
        print(f"end to end {t3 - t0:6.2f}s  {args.rows / (t3 - t0):,.0f} rows/s")
        print(f"server peak RSS {rss:,.0f} MB")

        t4 = time.perf_counter()
        frame = pd.read_csv(source)
        t5 = time.perf_counter()
        model.predict_proba(frame[COLUMNS])
        t6 = time.perf_counter()
        print(f"floor: pandas.read_csv {t5 - t4:.2f}s + predict_proba {t6 - t5:.2f}s = {t6 - t4:.2f}s "
              f"({args.rows / (t6 - t4):,.0f} rows/s, no output written; this process's peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")


if __name__ == "__main__":
    main()
