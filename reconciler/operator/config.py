"""Operator configuration: what the flags say, as one frozen value. Pure.

Why a value and not module globals: the handlers are built from it (the resync interval is a
decorator argument in kopf), and tests start operators with different settings side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.notify.send import Channel
from reconciler.specs.config import ProjectConfig
from reconciler.specs.scope import Scope

__all__ = ["ApiSecret", "OperatorConfig", "Webhook"]


@dataclass(frozen=True, slots=True)
class ApiSecret:
    """The Secret holding ``endpoint`` and ``token``: never the custom resource, never a flag value."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ApiSecret:
        """``NAMESPACE/NAME``."""
        namespace, sep, name = text.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise ValueError(f"--secret expects NAMESPACE/NAME, got {text!r}")
        return cls(namespace=namespace, name=name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """The validating admission webhook (:mod:`reconciler.operator.admission`).

    ``cert_dir`` holds ``tls.crt``/``tls.key`` (a mounted ``kubernetes.io/tls`` Secret, e.g. the
    chart's); without it a self-signed certificate is made at start. ``managed`` names the
    ValidatingWebhookConfiguration the operator then creates and keeps pointed at itself
    (``https://HOST:PORT/validate`` with that certificate as the CA bundle); without it the
    configuration is installed separately (the chart's, which points at a Service)."""

    port: int = 9443
    listen: str = "0.0.0.0"  # address to listen on
    host: str | None = None  # host name or address the API server reaches (managed mode); listen by default
    cert_dir: Path | None = None
    managed: str | None = None


@dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    secret: ApiSecret
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    resync_interval: float = 300.0
    # Backoff after API errors: backoff_initial * 2**retry seconds, at most backoff_max.
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    # How long a Secret read is reused before it is read again (a rotated token is picked up).
    credentials_ttl: float = 30.0
    allow_http: bool = False
    request_timeout: float = 30.0
    # Diff every resource against one shared list of the live definitions per resync interval
    # (operator/cache.py); off: each reconcile looks its definition up (one call per resource).
    live_cache: bool = True
    # Definition names this operator may create, adopt, change or delete (None: every name).
    scope: Scope | None = None
    webhook: Webhook | None = None
    # drift.found channels (reconciler.notify.send.channels_from_env); URLs and secrets: never in a repr
    notify: tuple[Channel, ...] = field(default=(), repr=False)
    # --policy FILE (policy files, kind: Policy) and --policy-target NAME (the target name rules see)
    policy_files: tuple[str, ...] = ()
    policy_target: str | None = None
    # --project-config (parsed; its ignore rules and sync windows apply) and --target (whose own
    # rules and windows are added): the operator's session is opened from them (operator.opening)
    project: ProjectConfig = field(default_factory=ProjectConfig)
    target: str | None = None

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based) of a failed reconcile."""
        return float(min(self.backoff_max, self.backoff_initial * 2 ** max(retry, 0)))
