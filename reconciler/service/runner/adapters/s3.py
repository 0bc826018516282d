"""``s3`` intake and output: the shared object-store intake and output (``objectstore.py``) over
boto3.

Any S3-compatible server works through ``endpointUrl`` (tests use moto's standalone server on
loopback). Keys come from a stored ``s3`` credential (``credentialId``); without one the request
is unsigned (a public bucket), so boto3 never goes looking for instance metadata off the machine.

Why boto3 and not s3fs like the other stores use fsspec: s3fs needs aiobotocore, which pins
botocore to a narrow range that trails boto3's releases (aiobotocore 3.10 wants botocore
<1.43.118 while boto3 1.44 is current), so adding it would hold boto3 back or downgrade it. boto3's
transfer manager also does the ranged parallel GETs and multipart uploads this adapter needs.

CSV intake parses the object's streaming body; Parquet is downloaded first (ranged parallel
GETs), then read batch by batch. CSV output is a multipart upload (parts of ``PART_SIZE``),
invisible until ``close`` completes it; ``abort`` aborts it, leaving nothing. Parquet output is a
temporary file uploaded on ``close``.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import urlparse

import boto3
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from reconciler.service.runner.adapters.base import (
    AdapterContext,
    AdapterError,
    register,
)
from reconciler.service.runner.adapters.objectstore import (
    PART_SIZE,
    ObjectIntake,
    ObjectOutput,
    credential_secret,
    csv_options,
    is_parquet,
)

RANDOM_BLOCK = 4 * 1024 * 1024  # bytes per ranged GET of a random-access read (Parquet)

__all__ = ["PART_SIZE", "S3Intake", "S3Object", "S3Output", "credential_secret", "csv_options", "parse_s3_url",
           "s3_client"]


def parse_s3_url(url: Any) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); anything else is an AdapterError saying what is expected."""
    parsed = urlparse(str(url or ""))
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise AdapterError(f"invalid S3 url {url!r}: expected s3://bucket/path/to/object")
    return parsed.netloc, key


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


def _failure(action: str, bucket: str, key: str, exc: BaseException) -> AdapterError:
    """A message naming the object and S3's error code, never a key or signature."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "error"))
        hint = {"NoSuchKey": "the object does not exist", "404": "the object does not exist",
                "NoSuchBucket": "the bucket does not exist", "AccessDenied": "check the credential's keys",
                "InvalidAccessKeyId": "check the credential's keys",
                "SignatureDoesNotMatch": "check the credential's secret key"}.get(code, "")
        return AdapterError(f"cannot {action} s3://{bucket}/{key}: {code}" + (f" ({hint})" if hint else ""))
    return AdapterError(f"cannot {action} s3://{bucket}/{key}: {type(exc).__name__}: {exc}")


class _S3Writer:
    """A multipart upload, created with the first part; a small object (no part before
    ``commit``) is one PUT. Until ``complete_multipart_upload`` nothing is visible."""

    def __init__(self, client: BaseClient, bucket: str, key: str, *, content_type: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = str(self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type)["UploadId"])
        number = len(self.parts) + 1
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                         PartNumber=number, Body=data)
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def commit(self, tail: bytes) -> None:
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=tail, ContentType=self.content_type)
            return
        if tail:
            self.write(tail)
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": self.parts})
        self.upload_id = None

    def abort(self) -> None:
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)


class S3Object:
    """One S3 object through boto3: a streamed GET, ranged parallel download and upload of files
    (boto3's transfer manager), and multipart uploads for streamed CSV output."""

    errors: tuple[type[BaseException], ...] = (ClientError, BotoCoreError)

    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        self.bucket, self.key = parse_s3_url(settings.get("url"))
        self.name = f"s3://{self.bucket}/{self.key}"
        self.client = s3_client(settings, ctx)

    def open_read(self) -> tuple[IO[bytes], int]:
        answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        return answer["Body"], int(answer.get("ContentLength") or 0)

    def download(self, path: str) -> None:
        self.client.download_file(self.bucket, self.key, path)

    def upload(self, path: str) -> None:
        self.client.upload_file(path, self.bucket, self.key)

    def writer(self, *, content_type: str, part_size: int) -> _S3Writer:
        return _S3Writer(self.client, self.bucket, self.key, content_type=content_type)

    # -- what the partitions of a Dask job need (cluster/): sizes, ranges, random access, parts --

    def size(self) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=self.key)["ContentLength"])

    def open_from(self, offset: int) -> IO[bytes]:
        """A stream of the object from byte ``offset`` to its end (one ranged GET)."""
        answer = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={offset}-")
        return answer["Body"]  # type: ignore[no-any-return]

    def open_random(self) -> IO[bytes]:
        """A seekable, buffered file whose reads are ranged GETs (Parquet footers and row groups)."""
        return io.BufferedReader(_RangedFile(self, self.size()), buffer_size=RANDOM_BLOCK)

    def read_range(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        answer = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")
        return bytes(answer["Body"].read())

    def delete(self) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key)

    def sibling(self, suffix: str) -> S3Object:
        """The object whose key is this one's plus ``suffix`` (a staged part of a Dask job)."""
        other = copy.copy(self)
        other.key = self.key + suffix
        other.name = self.name + suffix
        return other

    def failure(self, action: str, exc: BaseException) -> AdapterError:
        return _failure(action, self.bucket, self.key, exc)


class _RangedFile(io.RawIOBase):
    """A read-only, seekable view of an S3 object: every read is one ranged GET."""

    def __init__(self, obj: S3Object, size: int) -> None:
        super().__init__()
        self.obj = obj
        self.length = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        end = min(self.length, self.position + len(buffer))
        data = self.obj.read_range(self.position, end)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)



class S3Intake(ObjectIntake):
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        super().__init__(S3Object(settings, ctx), ctx, parquet=is_parquet(settings))


class S3Output(ObjectOutput):
    """CSV: multipart upload (parts of ``part_size``), completed on close. Parquet: temp file,
    uploaded on close."""

    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext, *, part_size: int = PART_SIZE) -> None:
        super().__init__(S3Object(settings, ctx), ctx, parquet=is_parquet(settings), part_size=part_size)


def _output(settings: Mapping[str, Any], ctx: AdapterContext) -> S3Output:
    return S3Output(settings, ctx, part_size=int(ctx.extra.get("s3_part_size", PART_SIZE)))


register("s3", intake=S3Intake, output=_output)
