"""The s3 adapter against moto's standalone server on loopback: CSV (tab), Parquet, multipart,
abort, and the errors a user sees."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconciler.service.runner.adapters.base import AdapterError, open_intake, open_output
from reconciler.service.runner.adapters.s3 import S3Output
from reconciler.service.store import Store

from .conftest import add_credential, boto, context


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(rows), "name": [f"row {i}, \"quoted\"" for i in range(rows)],
                         "x": [i / 4 for i in range(rows)]})


def _settings(endpoint: str, url: str, credential: str, **more: str) -> dict[str, str]:
    return {"type": "s3", "url": url, "endpointUrl": endpoint, "credentialId": credential, **more}


def test_csv_tab_round_trip_streams_in_chunks(s3_endpoint: str, bucket: str, store: Store) -> None:
    credential = add_credential(store, "s3", awsAccessKeyId="AKIDTEST", awsSecretAccessKey="sekrit")
    source = _frame(2500)
    boto(s3_endpoint).put_object(Bucket=bucket, Key="in/data.tsv",
                                 Body=source.to_csv(index=False, sep="\t").encode())
    ctx = context(store, chunk_rows=1000, delimiter="tab")
    intake = open_intake(_settings(s3_endpoint, f"s3://{bucket}/in/data.tsv", credential), ctx)
    chunks = list(intake.chunks())
    intake.close()
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    read = pd.concat(chunks, ignore_index=True)
    assert list(read.columns) == ["id", "name", "x"]
    assert read["name"].tolist() == source["name"].tolist()
    assert read["id"].tolist() == [str(i) for i in range(2500)]  # CSV columns arrive as text

    output = open_output(_settings(s3_endpoint, f"s3://{bucket}/out/scored.tsv", credential), ctx)
    for chunk in chunks:
        output.write(chunk)
    output.close()
    body = boto(s3_endpoint).get_object(Bucket=bucket, Key="out/scored.tsv")["Body"].read()
    assert body.split(b"\n", 1)[0] == b"id\tname\tx"
    back = pd.read_csv(io.BytesIO(body), sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, read)


def test_csv_multipart_upload_and_abort_leaves_nothing(s3_endpoint: str, bucket: str, store: Store) -> None:
    credential = add_credential(store, "s3", awsAccessKeyId="AKIDTEST", awsSecretAccessKey="sekrit")
    ctx = context(store)
    big = _frame(60_000)  # ~2.2 MB per write: three writes cross the 5 MiB part minimum
    client = boto(s3_endpoint)

    output = open_output(_settings(s3_endpoint, f"s3://{bucket}/multi.csv", credential), ctx)
    assert isinstance(output, S3Output)
    output.part_size = 5 * 1024 * 1024
    for _ in range(3):
        output.write(big)
    output.close()
    head = client.head_object(Bucket=bucket, Key="multi.csv")
    assert "-" in head["ETag"]  # a multipart ETag: "<md5>-<parts>"
    assert len(pd.read_csv(client.get_object(Bucket=bucket, Key="multi.csv")["Body"])) == 180_000

    aborted = open_output(_settings(s3_endpoint, f"s3://{bucket}/aborted.csv", credential), ctx)
    assert isinstance(aborted, S3Output)
    aborted.part_size = 5 * 1024 * 1024
    for _ in range(3):
        aborted.write(big)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # a part is already up
    aborted.abort()
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["multi.csv"]


def test_parquet_round_trip_by_row_groups(s3_endpoint: str, bucket: str, store: Store) -> None:
    credential = add_credential(store, "s3", awsAccessKeyId="AKIDTEST", awsSecretAccessKey="sekrit")
    source = _frame(3000)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(source, preserve_index=False), buffer, row_group_size=1000)
    client = boto(s3_endpoint)
    client.put_object(Bucket=bucket, Key="in.parquet", Body=buffer.getvalue())
    ctx = context(store, chunk_rows=700)
    intake = open_intake(_settings(s3_endpoint, f"s3://{bucket}/in.parquet", credential, format="parquet"), ctx)
    chunks = list(intake.chunks())
    intake.close()
    assert max(len(c) for c in chunks) <= 700 and sum(len(c) for c in chunks) == 3000
    read = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(read, source)  # types survive: int, str, float

    output = open_output(_settings(s3_endpoint, f"s3://{bucket}/out.parquet", credential, format="parquet"), ctx)
    for chunk in chunks:
        output.write(chunk)
    output.close()
    table = pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key="out.parquet")["Body"].read()))
    pd.testing.assert_frame_equal(table.to_pandas(), source)

    aborted = open_output(_settings(s3_endpoint, f"s3://{bucket}/gone.parquet", credential, format="parquet"), ctx)
    aborted.write(chunks[0])
    aborted.abort()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["in.parquet", "out.parquet"]


def test_errors_say_what_is_wrong(s3_endpoint: str, bucket: str, store: Store) -> None:
    credential = add_credential(store, "s3", awsAccessKeyId="AKIDTEST", awsSecretAccessKey="sekrit")
    ctx = context(store)
    intake = open_intake(_settings(s3_endpoint, f"s3://{bucket}/missing.csv", credential), ctx)
    with pytest.raises(AdapterError, match="NoSuchKey"):
        list(intake.chunks())
    intake.close()
    with pytest.raises(AdapterError, match="s3://bucket/path"):
        open_intake(_settings(s3_endpoint, "https://example/x.csv", credential), ctx)
    basic = add_credential(store, "basic", user="u", password="p")
    with pytest.raises(AdapterError, match="no AWS keys"):
        open_intake(_settings(s3_endpoint, f"s3://{bucket}/x.csv", basic), ctx)
    with pytest.raises(AdapterError) as failed:
        open_intake({"type": "s3", "url": f"s3://{bucket}/x.csv", "endpointUrl": s3_endpoint,
                     "credentialId": "f" * 24}, ctx)
    assert "sekrit" not in str(failed.value)


def test_empty_csv_object_has_no_rows(s3_endpoint: str, bucket: str, store: Store) -> None:
    credential = add_credential(store, "s3", awsAccessKeyId="AKIDTEST", awsSecretAccessKey="sekrit")
    boto(s3_endpoint).put_object(Bucket=bucket, Key="empty.csv", Body=b"")
    intake = open_intake(_settings(s3_endpoint, f"s3://{bucket}/empty.csv", credential), context(store))
    assert list(intake.chunks()) == []
    intake.close()
