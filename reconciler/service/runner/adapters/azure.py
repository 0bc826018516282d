"""``azure`` intake and output: Azure Blob Storage through fsspec's ``adlfs``, with the shared
object-store intake and output (``objectstore.py``).

The URL is written as DataRobot's documentation writes it,
``https://<account>.blob.core.windows.net/<container>/<blob>``: the first label of the host is the
storage account, the first path segment the container. The key comes from a stored ``azure``
credential (``azureConnectionString``, as ``dr.Credential.create_azure`` sends it). The
connection string's ``BlobEndpoint`` says where the account is served, so a local endpoint
(Azurite: ``BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1``) needs no other setting; its
``AccountName`` must be the URL's account. Without a credential the container is read
anonymously (a public container on ``https://<account>.blob.core.windows.net``).

Output is written as staged blocks committed on ``close``; ``abort`` never commits them, so no
blob appears (Azure discards uncommitted blocks after a week). ``adlfs`` is imported when a job
opens a blob, not when the service starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.adapters.objectstore import (
    FsspecObject,
    credential_secret,
    register_object_store,
)

__all__ = ["azure_object", "connection_string_fields", "parse_azure_url"]

EXPECTED_URL = "https://<account>.blob.core.windows.net/<container>/path/to/blob"


def parse_azure_url(url: Any) -> tuple[str, str, str]:
    """``https://acct.blob.core.windows.net/container/blob`` -> (account, container, blob)."""
    parsed = urlparse(str(url or ""))
    container, _, blob = parsed.path.lstrip("/").partition("/")
    host = parsed.hostname or ""
    account, _, rest = host.partition(".")
    if parsed.scheme != "https" or not account or not rest.startswith("blob.") or not container or not blob:
        raise AdapterError(f"invalid Azure Blob url {url!r}: expected {EXPECTED_URL}")
    return account, unquote(container), unquote(blob)


def connection_string_fields(text: str) -> dict[str, str]:
    """``Key=Value;...`` as a dict, keys lower-cased (Azure reads them case-insensitively)."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key:
            fields[key.strip().lower()] = value.strip()
    return fields


def _connection_string(ctx: AdapterContext, credential_id: str, account: str) -> str:
    secret = credential_secret(ctx, credential_id)
    text = secret.get("azureConnectionString")
    if not isinstance(text, str) or not text.strip():
        raise AdapterError(f"credential {credential_id} holds no Azure connection string; create it with "
                           "credentialType 'azure' and azureConnectionString")
    fields = connection_string_fields(text)
    named = fields.get("accountname") or ("devstoreaccount1" if fields.get("usedevelopmentstorage") else "")
    if not named and not fields.get("blobendpoint"):
        raise AdapterError(f"credential {credential_id}: the Azure connection string names no AccountName and no "
                           "BlobEndpoint; copy it from the storage account's Access keys page")
    if named and named != account:
        raise AdapterError(f"credential {credential_id} is for storage account {named!r} but the url names account "
                           f"{account!r}; use a credential of that account or fix the url")
    return text


def _describe(exc: BaseException) -> str:
    """Status and Azure's error code with a hint; never the message body, which can quote a
    request URL (and a SAS signature in it)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    if isinstance(exc, FileNotFoundError):
        return "BlobNotFound (the container or blob does not exist)"
    if isinstance(exc, HttpResponseError):
        found = getattr(exc, "error_code", None) or exc.status_code or "error"
        code = str(getattr(found, "value", found))  # azure-storage-blob gives a StorageErrorCode enum
        hint = {"AuthenticationFailed": "check the credential's connection string (AccountKey)",
                "AuthorizationFailure": "check the credential's connection string (AccountKey)",
                "AuthorizationPermissionMismatch": "the key may not write to this container",
                "ContainerNotFound": "the container does not exist",
                "BlobNotFound": "the blob does not exist",
                "ResourceNotFound": "the container or blob does not exist"}.get(code, "")
        return code + (f" ({hint})" if hint else "")
    if isinstance(exc, ServiceRequestError):
        return "the blob endpoint cannot be reached (check BlobEndpoint in the connection string)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def azure_object(settings: Mapping[str, Any], ctx: AdapterContext) -> FsspecObject:
    """The blob the settings name, on an ``adlfs`` filesystem for the credential's account."""
    account, container, blob = parse_azure_url(settings.get("url"))
    credential_id = settings.get("credentialId")
    connection = _connection_string(ctx, str(credential_id), account) if credential_id else None

    from adlfs import AzureBlobFileSystem
    from azure.core.exceptions import AzureError

    try:
        if connection is not None:
            fs = AzureBlobFileSystem(connection_string=connection, skip_instance_cache=True)
        else:
            fs = AzureBlobFileSystem(account_name=account, anon=True, skip_instance_cache=True)
    except (ValueError, AzureError) as exc:  # the SDK's message does not quote the string
        raise AdapterError(f"credential {credential_id}: the Azure connection string is not usable: "
                           f"{type(exc).__name__}") from None

    def cancel(file: Any) -> None:
        """Staged blocks that are never committed do not become a blob: nothing to call."""

    return FsspecObject(fs, f"{container}/{blob}", name=str(settings.get("url")),
                        errors=(OSError, AzureError), describe=_describe, cancel=cancel)


register_object_store("azure", azure_object)
