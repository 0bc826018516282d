"""kopf handlers: thin glue. Each one parses the resource, calls :mod:`reconciler.operator.act` (which
decides with :mod:`reconciler.operator.decide` and acts through the operator's session),
writes ``status`` (:mod:`reconciler.operator.status`) and posts an Event. No decisions here.

Why one registry built per :class:`OperatorConfig` instead of module-level decorators: the resync
interval is a decorator argument, and tests run operators with different settings in one process.

Ownership across namespaces: resource names are per namespace, definition names are global in
the API. A kopf index of every watched resource by ``status.definitionId`` (filled from the watch
before any handler runs, so also right after a restart) tells a handler which definitions other
resources manage; such a definition is never adopted, corrected or deleted (reason ``Conflict``).
When two resources recorded the same id (an older operator, or a race of two first syncs), the
older resource keeps it.

Failure handling: an invalid spec is written to status and not retried (a spec edit triggers the
next attempt, and the timer keeps running); an API or credentials failure is written to status and
raised as ``kopf.TemporaryError`` with an exponentially growing delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from reconciler.api import errors
from reconciler.api.client import Client, RetryPolicy
from reconciler.operator import act, admission, crd, decide, opening, ownership
from reconciler.operator import controls as operator_controls
from reconciler.operator.cache import LiveCache, LiveCaches
from reconciler.operator.config import OperatorConfig
from reconciler.operator.credentials import Credentials, CredentialsError, SecretReader
from reconciler.operator.metrics import OperatorMetrics
from reconciler.operator.notices import Notices
from reconciler.operator.policies import PolicyDenied
from reconciler.operator.status import (
    POLICY_WARNING,
    Reconciliation,
    Result,
    policy_warning_is_new,
    status_patch,
)
from reconciler.session import Session

__all__ = ["Runtime", "build_registry", "configure_settings"]

_Logger = logging.Logger | logging.LoggerAdapter[Any]
RESOURCE = (crd.GROUP, crd.VERSION, crd.PLURAL)
STORAGE_PREFIX = "reconciler.io"
# Outcomes worth an Event; ``unchanged`` is not (the timer would post one every interval).
_EVENT_REASONS = {Result.created: "Created", Result.updated: "Updated", Result.adopted: "Adopted",
                  Result.renamed: "Renamed", Result.drift_corrected: "DriftCorrected"}


class Runtime:
    """What handlers share: the Secret reader, one API client and session per credentials,
    per-object locks."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.secrets = SecretReader(config.secret, ttl=config.credentials_ttl)
        self._clients: dict[tuple[str, str], tuple[Client, Session]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.metrics = OperatorMetrics()
        self.notices = Notices()
        self.rules = opening.compile_rules(config)  # the policy files, read and compiled once
        # one list of the live definitions per resync interval, shared by every resource (cache.py)
        self.live = LiveCaches(max_age=config.resync_interval) if config.live_cache else None

    def live_cache(self, client: Client) -> LiveCache | None:
        return None if self.live is None else self.live.of(client)

    def lock(self, uid: str) -> asyncio.Lock:
        """One reconcile at a time per object: the timer never races a spec change."""
        return self._locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        self._locks.pop(uid, None)

    async def connect(self) -> tuple[Client, Session]:
        """The API client of the current credentials and the session reconciles go through; made
        once per set of credentials, never per event."""
        creds: Credentials = await self.secrets.get()
        found = self._clients.get(creds.key)
        if found is None:
            client = Client(endpoint=creds.endpoint, token=creds.token, allow_http=self.config.allow_http,
                            timeout=self.config.request_timeout,
                            # Short in-request retries; longer waits are kopf's backoff between attempts.
                            retry=RetryPolicy(attempts=3, initial=0.2, maximum=2.0))
            found = client, opening.open_session(self.config, self.rules, endpoint=creds.endpoint)
            self._clients[creds.key] = found
        return found

    # No aclose(): kopf may still be running a timer when cleanup handlers run, and closing the
    # clients under it turns a clean shutdown into errors. The process exits right after.


def configure_settings(settings: kopf.OperatorSettings) -> None:
    """Progress in annotations (status is ours and structural), and Events only from us and errors."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=STORAGE_PREFIX)
    # kopf would post its own "failed temporarily" Event next to ours: ours carry the reason.
    settings.posting.level = logging.CRITICAL
    settings.persistence.finalizer = f"{STORAGE_PREFIX}/finalizer"
    # A deleted resource keeps its finalizer until its resync timer has exited. A timer caught mid-
    # reconcile exits a moment later, but kopf looks again only every `cancellation_polling`
    # seconds (60 by default), so `kubectl delete` hung for a minute after "Deletion is processed".
    settings.background.cancellation_polling = 1.0


# index value: (namespace/name, uid, creationTimestamp) of a resource recording a definition id
_Claim = tuple[str, str, str]


def _claimed_by(claims: Any, body: kopf.Body) -> decide.ClaimedBy:
    """Who else manages a definition id: another resource recording it, unless this one recorded it
    too and is the older of the two (creation time, then uid, decides)."""
    me = (str(body.meta.get("creationTimestamp") or ""), body.meta.uid or "")
    recorded = (body.get("status") or {}).get("definitionId")

    def claimed_by(definition_id: str) -> str | None:
        store = claims.get(definition_id)
        for owner, uid, created in store or ():
            if uid == me[1]:
                continue
            if definition_id == recorded and (created, uid) > me:
                continue  # both record it and this one is older: it stays ours
            return str(owner)
        return None

    return claimed_by


def _write_status(patch: kopf.Patch, outcome: Reconciliation, status: Mapping[str, Any], generation: int | None) -> None:
    for key, value in status_patch(outcome, status, generation=generation).items():
        patch.status[key] = value


def _failure(result: Result, message: str, status: Mapping[str, Any]) -> Reconciliation:
    return Reconciliation(result=result, message=message, definition_id=status.get("definitionId"))


def _same_as_before(outcome: Reconciliation, status: Mapping[str, Any]) -> bool:
    """Whether this failure or report is already what status says (no second Event then)."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Synced":
            return bool(cond.get("reason") == outcome.result.value and cond.get("message") == outcome.message)
    return False


async def _reconcile(runtime: Runtime, *, body: kopf.Body, patch: kopf.Patch, retry: int,
                     logger: _Logger, mode: decide.Mode, claimed_by: decide.ClaimedBy) -> None:
    status: Mapping[str, Any] = dict(body.get("status") or {})
    generation = body.meta.get("generation")
    try:
        manifest = decide.parse(body)
    except decide.Invalid as exc:
        outcome = _failure(Result.invalid, str(exc), status)
        if not _same_as_before(outcome, status):
            logger.warning("invalid spec: %s", str(exc).replace("\n", "; "))
            kopf.event(body, type="Warning", reason="Invalid", message=str(exc)[:1024])
        _write_status(patch, outcome, status, generation)
        return
    foreign = ownership.conflict(manifest, runtime.config.scope)
    if foreign is not None:  # another scope's definition: no API call, not retried
        if not _same_as_before(foreign, status):
            logger.warning("%s", foreign.message)
            kopf.event(body, type="Warning", reason=foreign.result.value, message=foreign.message[:1024])
        _write_status(patch, foreign, status, generation)
        return
    if manifest.spec.suspend:  # no API call at all (operator.controls)
        outcome = operator_controls.suspended(status)
        if not any(c.get("type") == "Suspended" and c.get("status") == "True" for c in status.get("conditions") or []):
            logger.info("%s", outcome.message)
            kopf.event(body, type="Normal", reason="Suspended", message=outcome.message)
        _write_status(patch, outcome, status, generation)
        return
    try:
        client, session = await runtime.connect()
        outcome = await act.reconcile(session, client, manifest, recorded_id=status.get("definitionId"), mode=mode,
                                      claimed_by=claimed_by, fallback_delay=runtime.config.resync_interval,
                                      cache=runtime.live_cache(client))
    except PolicyDenied as exc:
        # not retried: it is judged again when the spec changes, and at the next resync
        outcome = _failure(Result.policy_denied, str(exc), status)
        if not _same_as_before(outcome, status):
            logger.warning("refused by policy: %s", exc)
            kopf.event(body, type="Warning", reason=Result.policy_denied.value, message=str(exc)[:1024])
        _write_status(patch, outcome, status, generation)
    except decide.ClaimedElsewhere as exc:
        # Retried with backoff: it resolves once the other resource lets the definition go.
        _fail(runtime, body, patch, status, generation, retry, logger, Result.conflict, str(exc))
    except act.Unresolved as exc:  # retried: the named resource may be created meanwhile
        _fail(runtime, body, patch, status, generation, retry, logger, Result.unresolved, str(exc))
    except CredentialsError as exc:
        _fail(runtime, body, patch, status, generation, retry, logger, Result.credentials_error, str(exc))
    except (errors.APIError, act.ApplyFailed) as exc:
        if isinstance(exc, errors.APIAuthError):
            runtime.secrets.invalidate()
        _fail(runtime, body, patch, status, generation, retry, logger, Result.api_error, str(exc))
    except Exception as exc:  # a bug: still an Event and a status, and retried with backoff
        logger.exception("reconcile failed unexpectedly")
        _fail(runtime, body, patch, status, generation, retry, logger, Result.internal_error,
              f"{type(exc).__name__}: {exc}")
    else:
        if policy_warning_is_new(outcome, status):  # shown as the PolicyWarning condition too (status.py)
            message = "; ".join(outcome.warnings)
            logger.warning("policy warning: %s", message)
            kopf.event(body, type="Warning", reason=POLICY_WARNING, message=message[:1024])
        if outcome.result is Result.deferred:  # a sync window is closed: retried when writes are allowed
            if not _same_as_before(outcome, status):
                logger.info("%s", outcome.message)
                kopf.event(body, type="Normal", reason="Deferred", message=outcome.message[:1024])
            _write_status(patch, outcome, status, generation)
            raise kopf.TemporaryError(outcome.message, delay=outcome.retry_after)
        if outcome.result in _EVENT_REASONS:
            logger.info("%s", outcome.message)
            kopf.event(body, type="Normal", reason=_EVENT_REASONS[outcome.result], message=outcome.message)
        elif outcome.result in (Result.drift_reported, Result.missing_reported) and not _same_as_before(outcome, status):
            logger.warning("%s", outcome.message)
            kopf.event(body, type="Warning", reason="Drifted", message=outcome.message)
        if outcome.result is Result.drift_corrected or not _same_as_before(outcome, status):
            runtime.notices.drift(session, f"{body.meta.get('namespace')}/{body.meta.get('name')}", outcome)
        _write_status(patch, outcome, status, generation)


def _fail(runtime: Runtime, body: kopf.Body, patch: kopf.Patch, status: Mapping[str, Any], generation: int | None,
          retry: int, logger: _Logger, result: Result, message: str) -> None:
    delay = runtime.config.backoff(retry)
    outcome = _failure(result, message, status)
    logger.warning("%s (retry %d in %gs)", message, retry + 1, delay)
    kopf.event(body, type="Warning", reason=result.value, message=message[:1024])
    _write_status(patch, outcome, status, generation)
    raise kopf.TemporaryError(message, delay=delay)


def build_registry(config: OperatorConfig, runtime: Runtime | None = None) -> kopf.OperatorRegistry:
    """A fresh kopf registry with the operator's handlers bound to ``config``."""
    registry = kopf.OperatorRegistry()
    rt = runtime or Runtime(config)

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account or $KUBECONFIG, read by the kubernetes client library."""
        return kopf.login_via_client(**kwargs)

    @kopf.index(*RESOURCE, id="claims", registry=registry)
    def claims(*, body: kopf.Body, namespace: str | None, name: str | None, uid: str | None,
               **_: Any) -> dict[str, _Claim] | None:
        """Every watched resource by the definition id it records (see the module docstring)."""
        definition_id = (body.get("status") or {}).get("definitionId")
        if not definition_id:
            return None
        return {str(definition_id): (f"{namespace}/{name}", uid or "",
                                     str(body.meta.get("creationTimestamp") or ""))}

    @kopf.on.startup(id="settings", registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_settings(settings)
        if config.webhook is not None:
            admission.configure(settings, config.webhook)

    if config.webhook is not None:
        admission.register(registry, config.scope)

    @kopf.on.resume(*RESOURCE, id="sync", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    @kopf.on.create(*RESOURCE, id="sync", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    @kopf.on.update(*RESOURCE, id="sync", field="spec", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    async def sync(*, body: kopf.Body, patch: kopf.Patch, retry: int, logger: _Logger, **kwargs: Any) -> None:
        """The spec changed (or the operator started): make the live definition match it."""
        async with rt.lock(body.meta.uid or ""):
            with rt.metrics.reconcile(decide.Mode.apply.value, patch.status):
                await _reconcile(rt, body=body, patch=patch, retry=retry, logger=logger, mode=decide.Mode.apply,
                                 claimed_by=_claimed_by(kwargs["claims"], body))

    @kopf.timer(*RESOURCE, id="resync", registry=registry, interval=config.resync_interval,
                initial_delay=config.resync_interval, errors=kopf.ErrorsMode.TEMPORARY)
    async def resync(*, body: kopf.Body, patch: kopf.Patch, logger: _Logger, **kwargs: Any) -> None:
        """Periodic drift check of a recorded definition. Skipped while a spec change is pending, before
        the first successful sync (the change handler is on it, with its own backoff) and while the
        object is going away."""
        status = body.get("status") or {}
        if (body.meta.get("deletionTimestamp") or not status.get("definitionId")
                or status.get("observedGeneration") != body.meta.get("generation")):
            return
        async with rt.lock(body.meta.uid or ""):
            with rt.metrics.reconcile(decide.Mode.resync.value, patch.status):
                await _reconcile(rt, body=body, patch=patch, retry=int(kwargs.get("retry") or 0), logger=logger,
                                 mode=decide.Mode.resync, claimed_by=_claimed_by(kwargs["claims"], body))

    @kopf.on.delete(*RESOURCE, id="finalize", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    async def delete(*, body: kopf.Body, patch: kopf.Patch, retry: int, logger: _Logger, **kwargs: Any) -> None:
        """The finalizer: delete the live definition unless the spec says Orphan (or preventDestroy)."""
        status: Mapping[str, Any] = dict(body.get("status") or {})
        spec = body.get("spec") or {}
        async with rt.lock(body.meta.uid or ""):
            try:
                client, session = await rt.connect()
                deleted, message = await act.finalize(
                    session, client, recorded_id=status.get("definitionId"), name=body.meta.name or "",
                    deletion_policy=str(spec.get("deletionPolicy", "Delete")),
                    prevent_destroy=bool(spec.get("preventDestroy", False)),
                    claimed_by=_claimed_by(kwargs["claims"], body), suspended=bool(spec.get("suspend", False)),
                    cache=rt.live_cache(client))
            except CredentialsError as exc:
                _fail(rt, body, patch, status, body.meta.get("generation"), retry, logger,
                      Result.credentials_error, str(exc))
            except (errors.APIError, act.ApplyFailed) as exc:
                if isinstance(exc, errors.APIAuthError):
                    rt.secrets.invalidate()
                _fail(rt, body, patch, status, body.meta.get("generation"), retry, logger, Result.api_error, str(exc))
            logger.info("%s", message)
            kopf.event(body, type="Normal", reason="Deleted" if deleted else "Orphaned", message=message)
        rt.forget(body.meta.uid or "")

    return registry
