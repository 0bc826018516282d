"""The API endpoint and token, read from a Kubernetes Secret at run time.

Why a Secret and not the custom resource: whoever can edit a BatchPredictionJobDefinition must not
see or choose the token. The token is held in the client's ``_Secret`` wrapper (no repr), never
logged, and errors name only the Secret, never its data. A read is reused for ``ttl`` seconds
and dropped after an authentication error, so a rotated token is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

from reconciler.api import client as api_client
from reconciler.errors import SecretError
from reconciler.operator.config import ApiSecret

__all__ = ["Credentials", "CredentialsError", "SecretReader"]


class CredentialsError(SecretError):
    """The Secret could not be read or lacks a key; the message never contains Secret data."""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    endpoint: str
    token: Any = field(repr=False)  # api.client._Secret: never shows itself

    @property
    def key(self) -> tuple[str, str]:
        """Identity for client reuse: endpoint and a digest of the token (never the token)."""
        import hashlib

        return (self.endpoint, hashlib.sha256(self.token.reveal().encode()).hexdigest())


def _core_api() -> Any:
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    return kubernetes.client.CoreV1Api()


class SecretReader:
    """Reads one Secret (cached for ``ttl`` seconds) through the kubernetes client, off the event loop."""

    def __init__(self, ref: ApiSecret, *, ttl: float = 30.0) -> None:
        self.ref = ref
        self.ttl = ttl
        self._api: Any = None
        self._cached: Credentials | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._cached = None

    async def get(self) -> Credentials:
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._read_at < self.ttl:
                return self._cached
            self._cached = await asyncio.to_thread(self._read)
            self._read_at = time.monotonic()
            return self._cached

    def _read(self) -> Credentials:
        import kubernetes

        if self._api is None:
            self._api = _core_api()
        try:
            secret = self._api.read_namespaced_secret(self.ref.name, self.ref.namespace)
        except kubernetes.client.ApiException as exc:
            raise CredentialsError(f"cannot read Secret {self.ref}: {exc.status} {exc.reason}") from None
        data = secret.data or {}
        values: dict[str, str] = {}
        for key in ("endpoint", "token"):
            raw = data.get(key)
            if not raw:
                raise CredentialsError(f"Secret {self.ref} has no key {key!r} (it needs 'endpoint' and 'token')")
            try:
                values[key] = base64.b64decode(raw).decode("utf-8").strip()
            except (ValueError, UnicodeDecodeError):
                raise CredentialsError(f"Secret {self.ref}: key {key!r} is not UTF-8 text") from None
        return Credentials(endpoint=values["endpoint"], token=api_client._Secret(values["token"]))
