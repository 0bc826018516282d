"""``gcp`` intake and output: Google Cloud Storage through fsspec's ``gcsfs``, with the shared
object-store intake and output (``objectstore.py``).

URLs as DataRobot's documentation writes them, ``gs://<bucket>/<object>`` (the SDK's docstring
form ``https://storage.googleapis.com/<bucket>/<object>`` is read the same way). The key comes
from a stored ``gcp`` credential (``gcpKey``, the service account key JSON that
``dr.Credential.create_gcp`` sends); without a credential the bucket is read anonymously.

A local endpoint is set per service process with ``STORAGE_EMULATOR_HOST`` (e.g.
``http://127.0.0.1:9023``), the convention of Google's own client libraries and gcsfs. As those
libraries do, requests to an emulator are sent without authentication (an emulator has no token
service); the credential's key is still checked, so a key that is not a usable service account
key fails the job the same way with or without an emulator.

Output is a resumable upload finalised on ``close``; ``abort`` cancels the session, so no object
appears. ``gcsfs`` is imported when a job opens an object, not when the service starts (its core
class is used directly: gcsfs' default class first asks the gRPC storage-control API for the
bucket's layout, which an emulator does not serve).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.adapters.objectstore import (
    FsspecObject,
    credential_secret,
    register_object_store,
)

__all__ = ["EMULATOR_ENV", "gcs_object", "parse_gcs_url", "service_account_credentials"]

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
PUBLIC_HOSTS = frozenset({"storage.googleapis.com", "storage.cloud.google.com"})


def parse_gcs_url(url: Any) -> tuple[str, str]:
    """``gs://bucket/object`` (or ``https://storage.googleapis.com/bucket/object``) -> (bucket, object)."""
    parsed = urlparse(str(url or ""))
    if parsed.scheme == "gs":
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
    elif parsed.scheme in ("https", "http") and (parsed.hostname or "") in PUBLIC_HOSTS:
        bucket, _, key = parsed.path.lstrip("/").partition("/")
    else:
        bucket = key = ""
    if not bucket or not key:
        raise AdapterError(f"invalid GCS url {url!r}: expected gs://bucket/path/to/object")
    return unquote(bucket), unquote(key)


def _scrubbed(text: str, key: Mapping[str, Any]) -> str:
    """``text`` with every secret-looking value of the key replaced (library messages can quote)."""
    for field in ("private_key", "private_key_id", "client_secret", "refresh_token"):
        value = key.get(field)
        if isinstance(value, str) and len(value) >= 8:
            text = text.replace(value, "***")
    return text


def service_account_credentials(credential_id: str, key: Any) -> Any:
    """google-auth credentials from a stored ``gcpKey``; a key that is not a usable service
    account key (missing fields, a private key that does not load) is an AdapterError saying so."""
    from google.oauth2 import service_account

    if isinstance(key, str):
        try:
            key = json.loads(key)
        except ValueError:
            raise AdapterError(f"credential {credential_id}: gcpKey is not JSON; store the service account key "
                               "file's content") from None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise AdapterError(f"credential {credential_id}: gcpKey is not a service account key (expected the JSON key "
                           "file of a service account, with \"type\": \"service_account\")")
    try:
        return service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise AdapterError(f"credential {credential_id}: gcpKey is not a usable service account key: "
                           f"{_scrubbed(str(exc), key)}") from None


def _describe(exc: BaseException) -> str:
    """Status and GCS's message with a hint; gcsfs messages name paths, never tokens."""
    from gcsfs.retry import HttpError
    from google.auth.exceptions import GoogleAuthError

    if isinstance(exc, FileNotFoundError):
        return "NotFound (the bucket or object does not exist)"
    if isinstance(exc, HttpError):
        hint = " (check the credential's gcpKey)" if exc.code in (401, 403) else ""
        return f"HTTP {exc.code}: {exc.message}{hint}"
    if isinstance(exc, GoogleAuthError):
        return f"the key was refused ({type(exc).__name__}); check the credential's gcpKey"
    if isinstance(exc, OSError) and str(exc).startswith("Forbidden"):
        return "Forbidden (check the credential's gcpKey and the bucket's permissions)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _cancel(file: Any) -> None:
    """Cancel a resumable upload with one DELETE of its session URI (GCS answers 499). gcsfs'
    ``discard`` retries a refused DELETE for half a minute; an endpoint that cannot cancel
    (gcp-storage-emulator answers 501) still never finalises the session, so no object appears."""
    from fsspec.asyn import sync

    location = getattr(file, "location", None)
    if not location:
        return
    fs = file.fs

    async def delete() -> int:
        session = await fs._set_session()
        headers: dict[str, str] = {}
        fs.credentials.apply(headers)
        async with session.delete(location, headers=headers) as answer:
            return int(answer.status)

    status = sync(fs.loop, delete)
    if status >= 400 and status not in (404, 499, 501):
        from gcsfs.retry import HttpError

        raise HttpError({"code": status, "message": "the upload session could not be cancelled"})


def gcs_object(settings: Mapping[str, Any], ctx: AdapterContext) -> FsspecObject:
    """The object the settings name, on a ``gcsfs`` filesystem with the credential's key."""
    bucket, key = parse_gcs_url(settings.get("url"))
    credential_id = settings.get("credentialId")
    token: Any = "anon"
    project = ""
    if credential_id:
        secret = credential_secret(ctx, str(credential_id))
        if "gcpKey" not in secret:
            raise AdapterError(f"credential {credential_id} holds no GCP key; create it with credentialType 'gcp' "
                               "and gcpKey (the service account key JSON)")
        credentials = service_account_credentials(str(credential_id), secret["gcpKey"])
        project = str(getattr(credentials, "project_id", "") or "")
        token = credentials
    endpoint = os.environ.get(EMULATOR_ENV, "").strip()
    if endpoint in ("", "default"):
        endpoint = ""
    elif not endpoint.startswith(("http://", "https://")):
        endpoint = f"http://{endpoint}"

    import aiohttp
    from gcsfs.core import GCSFileSystem
    from gcsfs.retry import HttpError
    from google.auth.exceptions import GoogleAuthError

    fs = GCSFileSystem(project=project, token="anon" if endpoint else token, endpoint_url=endpoint or None,
                       skip_instance_cache=True)
    return FsspecObject(fs, f"{bucket}/{key}", name=f"gs://{bucket}/{key}",
                        errors=(OSError, HttpError, GoogleAuthError, aiohttp.ClientError), describe=_describe,
                        cancel=_cancel)


register_object_store("gcp", gcs_object)
