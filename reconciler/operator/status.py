"""What the operator writes into ``status``: conditions and the live definition's facts. Pure.

Why pure: the status shape is the operator's public interface (printer columns, ``kubectl wait
--for=condition=Ready``), so it is computed from a :class:`Reconciliation` and the previous status by
plain functions that tests compare with literals. A condition keeps its ``lastTransitionTime``
while its status does not change (the Kubernetes convention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["JUDGED", "NEVER", "POLICY_WARNING", "Reconciliation", "Result", "conditions", "now_iso",
           "policy_warning_is_new", "status_patch"]

# The API's "never" sentinel for run times (api-contract §5).
NEVER = "1900-01-01T00:00:00.000000Z"


class Result(StrEnum):
    created = "Created"
    updated = "Updated"
    adopted = "Adopted"
    renamed = "Renamed"
    unchanged = "Unchanged"
    drift_corrected = "DriftCorrected"
    drift_reported = "Drifted"
    missing_reported = "Missing"
    invalid = "Invalid"
    conflict = "Conflict"  # the definition is managed by another resource or outside the operator's scope
    unresolved = "UnresolvedReference"  # a deploymentRef/credentialRef/dataStoreRef names nothing (or several)
    policy_denied = "PolicyDenied"  # a deny policy refused the manifest or its planned action
    api_error = "ApiError"
    credentials_error = "CredentialsUnavailable"
    internal_error = "InternalError"
    suspended = "Suspended"  # spec.suspend: not reconciled (operator.controls)
    deferred = "SyncWindowClosed"  # a write waits for a sync window (operator.controls)


SUCCESS = frozenset({Result.created, Result.updated, Result.adopted, Result.renamed, Result.unchanged,
                     Result.drift_corrected})
# the outcomes of a reconcile that judged the policies to its end: only they say whether a rule
# warns now (after a failure, the PolicyWarning condition stays as the last judgement left it)
JUDGED = SUCCESS | {Result.drift_reported, Result.missing_reported, Result.deferred}
POLICY_WARNING = "PolicyWarning"


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """One reconcile of one object: what happened, to which definition, and what the API said."""

    result: Result
    message: str
    definition_id: str | None = None
    definition_name: str | None = None
    live: Mapping[str, Any] | None = None  # the definition as the API returned it last
    drift: tuple[str, ...] = ()  # paths that differ (reported, or just corrected)
    retry_after: float | None = None  # deferred: seconds until writes are allowed again
    # the lines of the policy rules that warn on this manifest or its write (judged: JUDGED)
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result in SUCCESS


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, ok: bool, reason: str, message: str, previous: Mapping[str, Any] | None,
               *, generation: int | None, now: str) -> dict[str, Any]:
    status = "True" if ok else "False"
    changed = previous is None or previous.get("status") != status
    out: dict[str, Any] = {
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now if changed or previous is None else previous.get("lastTransitionTime", now),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def conditions(outcome: Reconciliation, previous: Sequence[Mapping[str, Any]], *, generation: int | None,
               now: str) -> list[dict[str, Any]]:
    """``Ready``: the live definition exists and matches the spec. ``Synced``: the last reconcile
    did what the spec asks (False with the reason and the API's text when it did not).
    ``Suspended``: True while ``spec.suspend`` is (then Ready and Synced are left as they were),
    False once resumed. ``PolicyWarning``: True while a policy rule of severity warn warns on the
    manifest or its write (the message lists them), False once none does."""
    before = {c.get("type"): c for c in previous if isinstance(c, Mapping)}
    r = outcome.result
    if r is Result.suspended:  # Ready and Synced stay as the last reconcile left them
        return [*(dict(before[k]) for k in ("Ready", "Synced") if k in before),
                _condition("Suspended", True, r.value, outcome.message, before.get("Suspended"),
                           generation=generation, now=now),
                *([dict(before[POLICY_WARNING])] if POLICY_WARNING in before else [])]
    if r is Result.deferred and outcome.definition_id:
        ready = (True, "Exists", f"definition {outcome.definition_id} exists; changes wait for the sync window")
        synced = (False, r.value, outcome.message)
    elif r in SUCCESS:
        ready = (True, "Reconciled", f"definition {outcome.definition_id} matches the spec")
        synced = (True, r.value, outcome.message)
    elif r is Result.drift_reported:
        ready = (True, "Exists", f"definition {outcome.definition_id} exists but differs from the spec")
        synced = (False, r.value, outcome.message)
    else:
        ready = (False, r.value, outcome.message)
        synced = (False, r.value, outcome.message)
    out = [
        _condition("Ready", *ready, before.get("Ready"), generation=generation, now=now),
        _condition("Synced", *synced, before.get("Synced"), generation=generation, now=now),
        # present only while another resource or scope owns the definition (reconciler.operator.ownership)
        *([_condition("Conflict", True, r.value, outcome.message, before.get("Conflict"), generation=generation,
                      now=now)] if r is Result.conflict else []),
    ]
    if "Suspended" in before:  # resumed
        out.append(_condition("Suspended", False, "Resumed", "spec.suspend is false: reconciled again",
                              before.get("Suspended"), generation=generation, now=now))
    warned = _policy_warning(outcome, before.get(POLICY_WARNING), generation=generation, now=now)
    if warned is not None:
        out.append(warned)
    return out


def _policy_warning(outcome: Reconciliation, previous: Mapping[str, Any] | None, *, generation: int | None,
                    now: str) -> dict[str, Any] | None:
    """The PolicyWarning condition: absent until a rule first warns, then kept (False once none does)."""
    if outcome.result not in JUDGED:
        return dict(previous) if previous is not None else None
    if outcome.warnings:
        return _condition(POLICY_WARNING, True, POLICY_WARNING, "; ".join(outcome.warnings), previous,
                          generation=generation, now=now)
    if previous is None:
        return None
    return _condition(POLICY_WARNING, False, "NoWarnings", "no policy rule warns", previous,
                      generation=generation, now=now)


def policy_warning_is_new(outcome: Reconciliation, status: Mapping[str, Any]) -> bool:
    """Whether ``outcome`` warns of something status does not say yet (then one Warning Event)."""
    if not outcome.warnings:
        return False
    message = "; ".join(outcome.warnings)
    return not any(c.get("type") == POLICY_WARNING and c.get("status") == "True" and c.get("message") == message
                   for c in status.get("conditions") or [] if isinstance(c, Mapping))


def _run_time(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != NEVER else None


def status_patch(outcome: Reconciliation, previous: Mapping[str, Any] | None, *, generation: int | None,
                 now: str | None = None) -> dict[str, Any]:
    """The merge patch for ``status``. Facts the outcome does not know (after an API error) are
    left as they were; ``drift`` is cleared (None) once nothing differs."""
    now = now or now_iso()
    prev = previous or {}
    out: dict[str, Any] = {
        "conditions": conditions(outcome, prev.get("conditions") or [], generation=generation, now=now),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    if outcome.result is Result.conflict:
        # Not ours: forget it, so that neither the timer nor the finalizer ever touch it.
        for key in ("definitionId", "definitionName", "lastSyncTime", "nextScheduledRunTime", "lastRunTime", "drift"):
            out[key] = None
        return out
    if outcome.definition_id is not None:
        out["definitionId"] = outcome.definition_id
    if outcome.definition_name is not None:
        out["definitionName"] = outcome.definition_name
    if outcome.ok:
        out["lastSyncTime"] = now
    if outcome.result in (Result.drift_reported, Result.missing_reported, Result.deferred):
        out["drift"] = list(outcome.drift)
    elif outcome.ok:
        out["drift"] = None
    live = outcome.live
    if live is not None:
        out["nextScheduledRunTime"] = _run_time(live.get("nextScheduledRunTime")) if live.get("enabled") else None
        out["lastRunTime"] = _run_time(live.get("lastStartedJobTime")) or _run_time(live.get("lastScheduledRunTime"))
    return out
