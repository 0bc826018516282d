"""Benchmark of the jdbc adapters on PostgreSQL (prints numbers; not a test).

A table of ``--rows`` rows x 20 columns (1 id, 18 doubles, 1 text) is made on a throwaway
PostgreSQL. Three phases, each in a fresh child process so each has its own peak RSS:

* ``floor``: ``pandas.read_sql`` of the whole table at once (the simplest possible read, no
  streaming: its memory grows with the table);
* ``stream``: the jdbc intake (server-side cursor, chunks) -> the jdbc output (insert, COPY) with
  no scoring: the adapters' own throughput;
* ``score``: the same with the runner's scoring (``runner.scoring.score_chunk``, a fitted
  scikit-learn logistic regression on the 18 features, passthrough all) between them, so each row
  written carries the prediction columns; one thread, one step after the other;
* ``job``: the same job as ``reconciler serve`` runs it (``runner.execute.run_job``: the model
  registered as a joblib artifact in a service store, the job spec's jdbc intake and output,
  numConcurrent 2, reading, scoring in the shared scoring pool and writing overlapped).

    python bench/bench_jdbc.py                  # 1,000,000 rows
    python bench/bench_jdbc.py --rows 100000 --chunk-rows 50000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

FEATURES = [f"f{i:02d}" for i in range(18)]


def _make_table(url: str, rows: int) -> None:
    import sqlalchemy as sa

    columns = ", ".join(f"(random() * 10 - 5)::double precision AS {name}" for name in FEATURES)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE src AS SELECT g AS id, {columns}, "
                             f"md5(g::text) AS label FROM generate_series(1, {int(rows)}) AS g"))
        conn.execute(sa.text("ANALYZE src"))
    engine.dispose()


def _phase(name: str, url: str, chunk_rows: int) -> dict[str, Any]:
    """Runs in a child process; returns rows, seconds and peak RSS."""
    import pandas as pd
    import sqlalchemy as sa

    from reconciler.service import ids
    from reconciler.service.records import ResourceRecord
    from reconciler.service.runner.adapters.base import AdapterContext, open_intake, open_output
    from reconciler.service.store import Store

    started = time.perf_counter()
    rows = 0
    if name == "floor":
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text("SELECT * FROM src"), conn)
        rows = len(frame)
        engine.dispose()
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/svc.db")
            user = {"username": "bench", "userId": "0" * 24, "fullName": None}
            data_store = store.create_resource(ResourceRecord(
                id=ids.new_id(), kind="dataStore", name="pg", body={"type": "jdbc", "params": {"url": url}},
                created=ids.iso(ids.utcnow()), created_by=user)).id
            if name == "job":
                rows = _run_job(store, data_store, url, tmp)
                store.close()
                seconds = time.perf_counter() - started
                peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                return {"phase": name, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
                        "peak_rss_mb": peak_mb}
            ctx = AdapterContext(job_id=ids.new_id(), store=store, chunk_rows=chunk_rows)
            score = _scorer(url) if name == "score" else None
            intake = open_intake({"type": "jdbc", "dataStoreId": data_store, "table": "src",
                                  "fetchSize": chunk_rows}, ctx)
            output = open_output({"type": "jdbc", "dataStoreId": data_store, "table": f"out_{name}",
                                  "statementType": "insert", "createTableIfNotExists": True}, ctx)
            for chunk in intake.chunks():
                output.write(score(chunk) if score else chunk)
                rows += len(chunk)
            output.close()
            intake.close()
            store.close()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"phase": name, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": peak_mb}


def _estimator(url: str) -> Any:
    """A logistic regression fitted on a 20,000-row sample of the table."""
    import numpy as np
    import pandas as pd
    import sqlalchemy as sa
    from sklearn.linear_model import LogisticRegression

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sample = pd.read_sql(sa.text(f"SELECT {', '.join(FEATURES)} FROM src LIMIT 20000"), conn)
    engine.dispose()
    target = (sample["f00"] + sample["f01"] > 0).astype(int).to_numpy()
    return LogisticRegression(max_iter=200).fit(sample.to_numpy(dtype=np.float64), target)


def _run_job(store: Any, data_store: str, url: str, tmp: str) -> int:
    """The job through ``execute.run_job`` as the service's runner runs it; returns rows scored."""
    import io
    import os
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import joblib

    from reconciler.service import ids
    from reconciler.service.records import JobRecord
    from reconciler.service.routes.models import register
    from reconciler.service.runner import artifacts, execute

    buffer = io.BytesIO()
    joblib.dump(_estimator(url), buffer)
    user = {"username": "bench", "userId": "0" * 24, "fullName": None}
    deployment = ids.new_id()
    register(store, deployment, artifacts.describe(buffer.getvalue(), target_name="y", feature_names=FEATURES),
             buffer.getvalue(), label="bench", user=user)
    spec = {"deploymentId": deployment, "numConcurrent": 2, "passthroughColumnsSet": "all",
            "intakeSettings": {"type": "jdbc", "dataStoreId": data_store, "table": "src"},
            "outputSettings": {"type": "jdbc", "dataStoreId": data_store, "table": "out_job",
                               "statementType": "insert", "createTableIfNotExists": True}}
    now = ids.iso(ids.utcnow())
    store.create_job(JobRecord(id=ids.new_id(), status="INITIALIZING", status_details="queued", job=spec,
                               created=now, updated=now, created_by=user, source="api"))
    job = store.claim_next_job("bench", now=now)
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        outcome = execute.run_job(job, store=store, runner_id="bench", data_dir=Path(tmp), pool=pool,
                                  cache=artifacts.ModelCache(), cancelled=threading.Event())
    if outcome.status != "COMPLETED":
        raise SystemExit(f"job {outcome.status}: {outcome.details}")
    return outcome.scored_rows


def _scorer(url: str) -> Any:
    """score_chunk with the logistic regression of :func:`_estimator`."""
    import pandas as pd

    from reconciler.service.runner.artifacts import SklearnModel
    from reconciler.service.runner.scoring import options_from_spec, score_chunk

    model = SklearnModel(_estimator(url), feature_names=FEATURES)
    options = options_from_spec({"passthroughColumnsSet": "all"}, target="y", task=model.task,
                                class_names=model.class_names)
    first = [0]

    def score(chunk: pd.DataFrame) -> pd.DataFrame:
        scored = score_chunk(model, chunk, options, first_row=first[0])
        first[0] += len(chunk)
        return scored.frame

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--phases", default="floor,stream,score,job")
    parser.add_argument("--_phase", help=argparse.SUPPRESS)
    parser.add_argument("--_url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._phase:
        print(json.dumps(_phase(args._phase, args._url, args.chunk_rows)))
        return

    from reconciler.service.testing import PostgresServer

    with PostgresServer() as pg:
        url = pg.create_database("bench")
        started = time.perf_counter()
        _make_table(url, args.rows)
        print(f"made src: {args.rows:,} rows x 20 columns in {time.perf_counter() - started:.1f}s")
        print(f"{'phase':<8} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12}")
        for phase in args.phases.split(","):
            done = subprocess.run([sys.executable, __file__, "--_phase", phase, "--_url", url,
                                   "--chunk-rows", str(args.chunk_rows)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{phase}: failed\n{done.stderr[-3000:]}")
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{phase:<8} {result['rows']:>10,} {result['seconds']:>8.2f} {result['rows_per_s']:>10,.0f} "
                  f"{result['peak_rss_mb']:>12.0f}")
        print("floor = pandas.read_sql of the whole table (read only, no write); stream = jdbc intake -> jdbc "
              "output (insert via COPY), unscored; score = the same through runner.scoring.score_chunk, serially; "
              "job = the same job as reconciler serve runs it (runner.execute.run_job: read, score, write "
              "overlapped)")


if __name__ == "__main__":
    main()
