"""Object-store adapter throughput: read a CSV (and a Parquet file) through an intake and write it
back through an output, with no scoring, so only the storage layer is timed.

Not a test: prints numbers. S3 runs against moto's standalone server on loopback (always);
``--azure`` and ``--gcs`` add Azurite and gcp-storage-emulator (started as the tests start them).
Each case is run ``--repeat`` times and the best time is kept. Compared with the naive approach:
one whole-object GET into memory + pandas.read_csv, and one whole-object PUT of to_csv.

    python bench/bench_object_store.py --rows 300000 [--azure] [--gcs]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reconciler.service import ids
from reconciler.service.records import ResourceRecord
from reconciler.service.runner.adapters.base import AdapterContext, open_intake, open_output
from reconciler.service.store import Store

COLUMNS = [f"f{i:02d}" for i in range(20)]
USER = {"username": "bench", "userId": "0" * 24, "fullName": None}


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 20)).round(6), columns=COLUMNS)
    frame.insert(0, "row_id", [f"r{i:07d}" for i in range(rows)])
    return frame


def add_credential(store: Store, credential_type: str, **secret: Any) -> str:
    record = ResourceRecord(id=ids.new_id(), kind="credential", name=f"c-{ids.new_id()}",
                            body={"credentialType": credential_type}, created=ids.iso(ids.utcnow()), created_by=USER)
    store.create_credential(record, dict(secret))
    return record.id


def through_adapters(store: Store, intake: dict[str, Any], output: dict[str, Any]) -> int:
    """Every chunk of ``intake`` written to ``output``; returns the rows moved."""
    ctx = AdapterContext(job_id=ids.new_id(), store=store, chunk_rows=50_000)
    source = open_intake(intake, ctx)
    sink = open_output(output, ctx)
    rows = 0
    try:
        for chunk in source.chunks():
            sink.write(chunk)
            rows += len(chunk)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        source.close()
    return rows


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process, which includes an in-process moto
    server): CPU time is the steadier number on a shared machine."""
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def report(name: str, timing: tuple[float, float], megabytes: float, naive: tuple[float, float] | None = None) -> None:
    seconds, cpu = timing
    extra = f"  (naive whole-object: {naive[0]:.2f}s, cpu {naive[1]:.2f}s)" if naive is not None else ""
    print(f"{name:<34} {seconds:6.2f}s  cpu {cpu:6.2f}s  {megabytes / seconds:6.1f} MB/s{extra}")


@contextlib.contextmanager
def s3_target() -> Iterator[tuple[dict[str, Any], Callable[[str, bytes], None], Callable[[str], bytes]]]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per part otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
    client.create_bucket(Bucket="bench")
    try:
        yield ({"type": "s3", "endpointUrl": endpoint, "url": "s3://bench/{key}"},
               lambda key, data: client.put_object(Bucket="bench", Key=key, Body=data),
               lambda key: client.get_object(Bucket="bench", Key=key)["Body"].read())
    finally:
        server.stop()


def run_case(name: str, store: Store, settings: dict[str, Any], put: Callable[[str, bytes], None],
             get: Callable[[str], bytes], frame: pd.DataFrame, repeat: int) -> None:
    csv_bytes = frame.to_csv(index=False).encode()
    put("in.csv", csv_bytes)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, row_group_size=50_000)
    put("in.parquet", buffer.getvalue())
    mb = len(csv_bytes) / 1e6

    def settings_for(key: str, **more: str) -> dict[str, Any]:
        return {**settings, "url": settings["url"].format(key=key), **more}

    def naive() -> None:
        data = pd.read_csv(io.BytesIO(get("in.csv")), dtype=str, keep_default_na=False)
        put("naive.csv", data.to_csv(index=False).encode())

    csv_time = best_of(repeat, lambda: through_adapters(store, settings_for("in.csv"), settings_for("out.csv")))
    report(f"{name} csv read+write", csv_time, mb, best_of(repeat, naive))
    parquet_time = best_of(repeat, lambda: through_adapters(
        store, settings_for("in.parquet", format="parquet"), settings_for("out.parquet", format="parquet")))
    report(f"{name} parquet read+write", parquet_time, mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--azure", action="store_true", help="also Azurite (npm package azurite)")
    parser.add_argument("--gcs", action="store_true", help="also gcp-storage-emulator")
    args = parser.parse_args()
    frame = make_frame(args.rows)
    print(f"input: {args.rows} rows x 21 columns, {len(frame.to_csv(index=False)) / 1e6:.0f} MB of CSV")
    with tempfile.TemporaryDirectory(prefix="bench-objects-") as tmp:
        store = Store(f"sqlite:///{Path(tmp)}/bench.db")
        try:
            with s3_target() as (settings, put, get):
                credential = add_credential(store, "s3", awsAccessKeyId="bench", awsSecretAccessKey="bench")
                run_case("s3 (moto)", store, {**settings, "credentialId": credential}, put, get, frame, args.repeat)
            if args.azure:
                from tests.adapters.emulators import azurite

                with azurite(Path(tmp) / "azurite") as emulator:
                    container = emulator.create_container()
                    credential = add_credential(store, "azure", azureConnectionString=emulator.connection_string)
                    run_case("azure (azurite)", store, {"type": "azure", "credentialId": credential,
                                                        "url": emulator.url(container, "{key}")},
                             lambda key, data: emulator.put(container, key, data),
                             lambda key: emulator.get(container, key), frame, args.repeat)
            if args.gcs:
                from tests.adapters.emulators import gcs_emulator

                with gcs_emulator() as emulator, emulator.environment():
                    bucket = emulator.create_bucket()
                    credential = add_credential(store, "gcp", gcpKey=emulator.service_account_key())
                    run_case("gcs (gcp-storage-emulator)", store, {"type": "gcp", "credentialId": credential,
                                                                   "url": f"gs://{bucket}/{{key}}"},
                             lambda key, data: emulator.put(bucket, key, data),
                             lambda key: emulator.get(bucket, key), frame, args.repeat)
        finally:
            store.close()


if __name__ == "__main__":
    main()
