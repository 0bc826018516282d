"""``s3`` intake and output over boto3: CSV or Parquet, streamed.

Any S3-compatible server works through ``endpointUrl`` (tests use moto's standalone server on
loopback). Keys come from a stored ``s3`` credential (``credentialId``); without one the request
is unsigned (a public bucket), so boto3 never goes looking for instance metadata off the machine.

Streaming: CSV intake parses the object's streaming body in ``chunk_rows`` pieces; Parquet
needs random access to its footer, so it is first downloaded to a temporary file (ranged parallel
GETs by boto3) and then read batch by batch. CSV output is a multipart upload (parts of
``PART_SIZE``), invisible until ``close`` completes it; ``abort`` aborts it, leaving nothing.
Parquet output is written to a temporary file uploaded on ``close``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from reconciler.service import errors
from reconciler.service.runner.adapters.base import (
    AdapterContext,
    AdapterError,
    register_intake,
    register_output,
)

__all__ = ["PART_SIZE", "S3Intake", "S3Output", "credential_secret", "csv_options", "parse_s3_url", "s3_client"]

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last


def parse_s3_url(url: Any) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); anything else is an AdapterError saying what is expected."""
    parsed = urlparse(str(url or ""))
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise AdapterError(f"invalid S3 url {url!r}: expected s3://bucket/path/to/object")
    return parsed.netloc, key


def csv_options(csv: Mapping[str, str]) -> tuple[str, str, str]:
    """(delimiter, quotechar, encoding) with the API's ``tab`` spelled as a tab character."""
    delimiter = str(csv.get("delimiter", ","))
    if delimiter.lower() == "tab":
        delimiter = "\t"
    return delimiter, str(csv.get("quotechar", '"')), str(csv.get("encoding", "utf-8"))


def credential_secret(ctx: AdapterContext, credential_id: str) -> dict[str, Any]:
    """The stored secret of a credential; a missing credential is an AdapterError (the job fails
    with the store's message) rather than an HTTP error escaping into the runner."""
    try:
        secret: dict[str, Any] = ctx.store.get_credential_secret(credential_id)
    except errors.ServiceError as exc:
        raise AdapterError(f"credential {credential_id}: {exc.message}") from None
    return secret


def s3_client(settings: Mapping[str, Any], ctx: AdapterContext) -> BaseClient:
    """A client for the settings' endpoint with the stored credential's keys (or unsigned)."""
    credential_id = settings.get("credentialId")
    secret: dict[str, Any] = {}
    if credential_id:
        secret = credential_secret(ctx, str(credential_id))
        if not secret.get("awsAccessKeyId"):
            raise AdapterError(f"credential {credential_id} holds no AWS keys; create it with "
                               "credentialType 's3', awsAccessKeyId and awsSecretAccessKey")
    endpoint = settings.get("endpointUrl") or None
    config = Config(signature_version=UNSIGNED) if not secret else Config()
    config = config.merge(Config(retries={"max_attempts": 3, "mode": "standard"},
                                 s3={"addressing_style": "path"} if endpoint else {}))
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=str(settings.get("region") or "us-east-1"),
        aws_access_key_id=secret.get("awsAccessKeyId"), aws_secret_access_key=secret.get("awsSecretAccessKey"),
        aws_session_token=secret.get("awsSessionToken"), config=config)


def _failure(action: str, bucket: str, key: str, exc: Exception) -> AdapterError:
    """A message naming the object and S3's error code, never a key or signature."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "error"))
        hint = {"NoSuchKey": "the object does not exist", "404": "the object does not exist",
                "NoSuchBucket": "the bucket does not exist", "AccessDenied": "check the credential's keys",
                "InvalidAccessKeyId": "check the credential's keys",
                "SignatureDoesNotMatch": "check the credential's secret key"}.get(code, "")
        return AdapterError(f"cannot {action} s3://{bucket}/{key}: {code}" + (f" ({hint})" if hint else ""))
    return AdapterError(f"cannot {action} s3://{bucket}/{key}: {type(exc).__name__}: {exc}")


def _is_parquet(settings: Mapping[str, Any]) -> bool:
    return str(settings.get("format") or "csv").lower() == "parquet"


class S3Intake:
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        self.bucket, self.key = parse_s3_url(settings.get("url"))
        self.ctx = ctx
        self.parquet = _is_parquet(settings)
        self.client = s3_client(settings, ctx)
        self._body: Any = None
        self._tmp: str | None = None

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.parquet:
            yield from self._parquet_chunks()
        else:
            yield from self._csv_chunks()

    def _csv_chunks(self) -> Iterator[pd.DataFrame]:
        delimiter, quotechar, encoding = csv_options(self.ctx.csv)
        try:
            self._body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"]
            reader = pd.read_csv(self._body, chunksize=self.ctx.chunk_rows, sep=delimiter, quotechar=quotechar,
                                 encoding=encoding, dtype=str, keep_default_na=False, na_filter=False)
            with reader:
                yield from reader
        except (ClientError, BotoCoreError) as exc:
            raise _failure("read", self.bucket, self.key, exc) from exc
        except pd.errors.EmptyDataError:
            return  # an empty object has no rows (and no header)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise AdapterError(f"s3://{self.bucket}/{self.key} is not valid CSV with delimiter {delimiter!r} "
                               f"and encoding {encoding}: {exc}") from exc

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        handle, self._tmp = tempfile.mkstemp(prefix=f"s3-intake-{self.ctx.job_id}-", suffix=".parquet")
        os.close(handle)
        try:
            self.client.download_file(self.bucket, self.key, self._tmp)
        except (ClientError, BotoCoreError) as exc:
            raise _failure("read", self.bucket, self.key, exc) from exc
        try:
            parquet = pq.ParquetFile(self._tmp)
        except pa.ArrowInvalid as exc:
            raise AdapterError(f"s3://{self.bucket}/{self.key} is not a Parquet file: {exc}") from exc
        with parquet:
            for batch in parquet.iter_batches(batch_size=self.ctx.chunk_rows):
                yield batch.to_pandas()

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None


class S3Output:
    """CSV: multipart upload, completed on close. Parquet: temp file, uploaded on close."""

    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext, *, part_size: int = PART_SIZE) -> None:
        self.bucket, self.key = parse_s3_url(settings.get("url"))
        self.ctx = ctx
        self.parquet = _is_parquet(settings)
        self.client = s3_client(settings, ctx)
        self.part_size = part_size
        self._buffer = io.BytesIO()
        self._header = True
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._tmp: str | None = None
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            self._write_parquet(frame)
            return
        delimiter, quotechar, encoding = csv_options(self.ctx.csv)
        text = frame.to_csv(index=False, header=self._header, sep=delimiter, quotechar=quotechar,
                            lineterminator="\n")
        self._header = False
        self._buffer.write(text.encode(encoding))
        if self._buffer.tell() >= self.part_size:
            self._flush_part()

    def _flush_part(self) -> None:
        data = self._buffer.getvalue()
        self._buffer = io.BytesIO()
        try:
            if self._upload_id is None:
                self._upload_id = str(self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, ContentType="text/csv")["UploadId"])
            number = len(self._parts) + 1
            answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                             PartNumber=number, Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise _failure("write", self.bucket, self.key, exc) from exc
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        try:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise AdapterError(f"a chunk does not fit the Parquet schema of the first chunk: {exc}") from exc
        if self._writer is None:
            handle, self._tmp = tempfile.mkstemp(prefix=f"s3-output-{self.ctx.job_id}-", suffix=".parquet")
            os.close(handle)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table, row_group_size=max(1, self.ctx.chunk_rows))

    def close(self) -> None:
        try:
            if self.parquet:
                self._close_parquet()
            elif self._upload_id is None:  # small: one PUT
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._buffer.getvalue(),
                                       ContentType="text/csv")
            else:
                if self._buffer.tell():
                    self._flush_part()
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                                      MultipartUpload={"Parts": self._parts})
                self._upload_id = None
        except (ClientError, BotoCoreError) as exc:
            raise _failure("write", self.bucket, self.key, exc) from exc
        finally:
            self._cleanup()

    def _close_parquet(self) -> None:
        if self._writer is None:  # no rows at all: an empty file with no columns
            handle, self._tmp = tempfile.mkstemp(prefix=f"s3-output-{self.ctx.job_id}-", suffix=".parquet")
            os.close(handle)
            pq.write_table(pa.table({}), self._tmp)
        else:
            self._writer.close()
            self._writer = None
        assert self._tmp is not None
        self.client.upload_file(self._tmp, self.bucket, self.key)

    def abort(self) -> None:
        """Nothing written becomes visible: the multipart upload is aborted, the temp file removed."""
        try:
            if self._upload_id is not None:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
                self._upload_id = None
        except (ClientError, BotoCoreError) as exc:
            raise _failure("abort the upload of", self.bucket, self.key, exc) from exc
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None
        self._buffer = io.BytesIO()


@register_intake("s3")
def _open_intake(settings: Mapping[str, Any], ctx: AdapterContext) -> S3Intake:
    return S3Intake(settings, ctx)


@register_output("s3")
def _open_output(settings: Mapping[str, Any], ctx: AdapterContext) -> S3Output:
    part_size = int(ctx.extra.get("s3_part_size", PART_SIZE))
    return S3Output(settings, ctx, part_size=part_size)
