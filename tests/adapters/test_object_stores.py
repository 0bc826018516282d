"""The same behaviour from every object store, each against a real server on loopback: S3
(moto), Azure Blob (Azurite) and GCS (gcp-storage-emulator). CSV and Parquet round trips in
chunks, progress, a multi-part upload and an abort that leaves nothing, and the errors a user sees."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconciler.service.runner.adapters.base import AdapterError, open_intake, open_output
from reconciler.service.runner.adapters.objectstore import ObjectOutput
from reconciler.service.store import Store

from .conftest import add_credential, boto, context
from .emulators import ACCOUNT_KEY, Azurite, GcsEmulator


@dataclass
class Target:
    """One bucket or container: adapter settings for a key, and direct access for checks."""

    kind: str
    credential: str
    url: Callable[[str], str]
    put: Callable[[str, bytes], None]
    get: Callable[[str], bytes]
    names: Callable[[], list[str]]
    extra: dict[str, str]

    def settings(self, key: str, **more: str) -> dict[str, str]:
        return {"type": self.kind, "url": self.url(key), "credentialId": self.credential, **self.extra, **more}


@pytest.fixture(params=["s3", "azure", "gcp"])
def target(request: pytest.FixtureRequest, store: Store) -> Iterator[Target]:
    if request.param == "s3":
        endpoint: str = request.getfixturevalue("s3_endpoint")
        bucket: str = request.getfixturevalue("bucket")
        client = boto(endpoint)
        yield Target("s3", add_credential(store, "s3", awsAccessKeyId="AKIDTEST", awsSecretAccessKey="sekrit"),
                     lambda key: f"s3://{bucket}/{key}",
                     lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data),
                     lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
                     lambda: sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])),
                     {"endpointUrl": endpoint})
    elif request.param == "azure":
        azurite: Azurite = request.getfixturevalue("azurite_server")
        container: str = request.getfixturevalue("container")
        yield Target("azure", add_credential(store, "azure", azureConnectionString=azurite.connection_string),
                     lambda key: azurite.url(container, key), lambda key, data: azurite.put(container, key, data),
                     lambda key: azurite.get(container, key), lambda: azurite.names(container), {})
    else:
        gcs: GcsEmulator = request.getfixturevalue("gcs_endpoint")
        bucket = request.getfixturevalue("gcs_bucket")
        yield Target("gcp", add_credential(store, "gcp", gcpKey=gcs.service_account_key()),
                     lambda key: f"gs://{bucket}/{key}", lambda key, data: gcs.put(bucket, key, data),
                     lambda key: gcs.get(bucket, key), lambda: gcs.names(bucket), {})


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(rows), "name": [f"row {i}, \"quoted\"" for i in range(rows)],
                         "x": [i / 4 for i in range(rows)]})


def test_csv_round_trip_in_chunks_with_progress(target: Target, store: Store) -> None:
    source = _frame(2500)
    target.put("in/data.tsv", source.to_csv(index=False, sep="\t").encode())
    ctx = context(store, chunk_rows=1000, delimiter="tab")
    intake: Any = open_intake(target.settings("in/data.tsv"), ctx)
    seen = [intake.fraction_read()]
    chunks = []
    for chunk in intake.chunks():
        chunks.append(chunk)
        seen.append(intake.fraction_read())
    intake.close()
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    read = pd.concat(chunks, ignore_index=True)
    assert list(read.columns) == ["id", "name", "x"]
    assert read["name"].tolist() == source["name"].tolist()
    assert read["id"].tolist() == [str(i) for i in range(2500)]  # CSV columns arrive as text

    output = open_output(target.settings("out/scored.tsv"), ctx)
    for chunk in chunks:
        output.write(chunk)
    output.close()
    body = target.get("out/scored.tsv")
    assert body.split(b"\n", 1)[0] == b"id\tname\tx"
    back = pd.read_csv(io.BytesIO(body), sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, read)


def test_parquet_round_trip_and_abort(target: Target, store: Store) -> None:
    source = _frame(3000)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(source, preserve_index=False), buffer, row_group_size=1000)
    target.put("in.parquet", buffer.getvalue())
    ctx = context(store, chunk_rows=700)
    intake: Any = open_intake(target.settings("in.parquet", format="parquet"), ctx)
    chunks = list(intake.chunks())
    assert intake.fraction_read() == 1.0
    intake.close()
    assert max(len(c) for c in chunks) <= 700 and sum(len(c) for c in chunks) == 3000
    read = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(read, source)  # types survive: int, str, float

    output = open_output(target.settings("out.parquet", format="parquet"), ctx)
    for chunk in chunks:
        output.write(chunk)
    output.close()
    pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(target.get("out.parquet"))).to_pandas(), source)

    aborted = open_output(target.settings("gone.parquet", format="parquet"), ctx)
    aborted.write(chunks[0])
    aborted.abort()
    assert target.names() == ["in.parquet", "out.parquet"]


def test_multi_part_upload_and_abort_leaves_nothing(target: Target, store: Store) -> None:
    """Three writes of ~2.2 MB with 5 MiB parts: the first part is uploaded before close. Closed,
    the object is whole; aborted, no object appears, and an older object of that name stays."""
    ctx = context(store)
    big = _frame(60_000)
    output = open_output(target.settings("multi.csv"), ctx)
    assert isinstance(output, ObjectOutput)
    output.part_size = 5 * 1024 * 1024
    for _ in range(3):
        output.write(big)
    assert target.names() == []  # a part is up, nothing is visible yet
    output.close()
    assert len(pd.read_csv(io.BytesIO(target.get("multi.csv")))) == 180_000

    target.put("kept.csv", b"a\n1\n")
    for name in ("aborted.csv", "kept.csv"):
        aborted = open_output(target.settings(name), ctx)
        assert isinstance(aborted, ObjectOutput)
        aborted.part_size = 5 * 1024 * 1024
        for _ in range(3):
            aborted.write(big)
        started: Any = aborted._writer  # a part is really up: S3's multipart parts, an fsspec file's offset
        assert started is not None
        assert (started.parts if target.kind == "s3" else started._file.offset)
        aborted.abort()
    assert target.names() == ["kept.csv", "multi.csv"]
    assert target.get("kept.csv") == b"a\n1\n"


def test_missing_object_is_named(target: Target, store: Store) -> None:
    ctx = context(store)
    for settings in (target.settings("missing.csv"), target.settings("missing.parquet", format="parquet")):
        intake = open_intake(settings, ctx)
        with pytest.raises(AdapterError) as failed:
            list(intake.chunks())
        intake.close()
        assert settings["url"] in str(failed.value)
        assert "does not exist" in str(failed.value)


def test_empty_csv_object_has_no_rows(target: Target, store: Store) -> None:
    target.put("empty.csv", b"")
    intake = open_intake(target.settings("empty.csv"), context(store))
    assert list(intake.chunks()) == []
    intake.close()


def test_azure_wrong_key_and_wrong_account(azurite_server: Azurite, container: str, store: Store) -> None:
    azurite_server.put(container, "in.csv", b"a,b\n1,2\n")
    wrong = azurite_server.connection_string.replace(ACCOUNT_KEY, "A" * 86 + "==")
    credential = add_credential(store, "azure", azureConnectionString=wrong)
    ctx = context(store)
    url = azurite_server.url(container, "in.csv")
    intake = open_intake({"type": "azure", "url": url, "credentialId": credential}, ctx)
    with pytest.raises(AdapterError) as failed:
        list(intake.chunks())
    intake.close()
    assert str(failed.value) == f"cannot read {url}: AuthorizationFailure (check the credential's connection " \
                                "string (AccountKey))"
    output = open_output({"type": "azure", "url": azurite_server.url(container, "out.csv"),
                          "credentialId": credential}, ctx)
    output.write(pd.DataFrame({"a": ["1"]}))
    with pytest.raises(AdapterError, match="AuthorizationFailure"):
        output.close()
    assert azurite_server.names(container) == ["in.csv"]

    right = add_credential(store, "azure", azureConnectionString=azurite_server.connection_string)
    with pytest.raises(AdapterError, match="is for storage account 'devstoreaccount1' but the url names account "
                                           "'other'"):
        open_intake({"type": "azure", "url": f"https://other.blob.core.windows.net/{container}/in.csv",
                     "credentialId": right}, ctx)
    s3 = add_credential(store, "s3", awsAccessKeyId="A", awsSecretAccessKey="B")
    with pytest.raises(AdapterError, match="holds no Azure connection string"):
        open_intake({"type": "azure", "url": url, "credentialId": s3}, ctx)
    with pytest.raises(AdapterError, match=r"expected https://<account>\.blob\.core\.windows\.net/<container>/"):
        open_intake({"type": "azure", "url": f"https://example.com/{container}/in.csv", "credentialId": right}, ctx)


def test_gcp_key_that_is_not_a_service_account_key(gcs_endpoint: GcsEmulator, gcs_bucket: str,
                                                  store: Store) -> None:
    """The emulator has no token service, so requests to it are anonymous (as Google's clients do
    with STORAGE_EMULATOR_HOST); a stored key that cannot sign fails the job all the same, without
    quoting the key."""
    ctx = context(store)
    key = gcs_endpoint.service_account_key()
    broken = {**key, "private_key": key["private_key"].replace("MII", "XXX", 1)}
    credential = add_credential(store, "gcp", gcpKey=broken)
    with pytest.raises(AdapterError, match="gcpKey is not a usable service account key") as failed:
        open_intake({"type": "gcp", "url": f"gs://{gcs_bucket}/in.csv", "credentialId": credential}, ctx)
    assert broken["private_key"] not in str(failed.value) and "PRIVATE KEY" not in str(failed.value)
    user = add_credential(store, "gcp", gcpKey={"type": "authorized_user", "refresh_token": "r"})
    with pytest.raises(AdapterError, match="gcpKey is not a service account key"):
        open_output({"type": "gcp", "url": f"gs://{gcs_bucket}/out.csv", "credentialId": user}, ctx)
    s3 = add_credential(store, "s3", awsAccessKeyId="A", awsSecretAccessKey="B")
    with pytest.raises(AdapterError, match="holds no GCP key"):
        open_intake({"type": "gcp", "url": f"gs://{gcs_bucket}/in.csv", "credentialId": s3}, ctx)
    with pytest.raises(AdapterError, match="expected gs://bucket/path/to/object"):
        open_intake({"type": "gcp", "url": "https://example.com/b/in.csv"}, ctx)


def test_gcp_reads_the_sdk_docstring_url_form(gcs_endpoint: GcsEmulator, gcs_bucket: str, store: Store) -> None:
    """``score_gcp``'s docstring writes ``https://storage.googleapis.com/<bucket>/<object>``."""
    gcs_endpoint.put(gcs_bucket, "dir/in.csv", b"a,b\n1,2\n")
    intake = open_intake({"type": "gcp", "url": f"https://storage.googleapis.com/{gcs_bucket}/dir/in.csv"},
                         context(store))
    assert [c.to_dict("list") for c in intake.chunks()] == [{"a": ["1"], "b": ["2"]}]
    intake.close()
