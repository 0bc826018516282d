"""Notification bodies from what the engine produced: an apply's result, a refused plan, a plan
that found drift. Pure: values in, a dict (``schemas/notification.schema.json``) out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.engine.apply import ApplyResult, Outcome
from reconciler.engine.plan import ActionKind, Plan, PlanOrigin
from reconciler.notify.send import envelope

__all__ = ["applied", "drift", "refused", "target_of"]


def target_of(origin: PlanOrigin | None) -> dict[str, Any] | None:
    """Where it happened, without the local database's path (nothing a receiver needs)."""
    return None if origin is None else {"name": origin.name, "endpoint": origin.endpoint}


def applied(result: ApplyResult, *, origin: PlanOrigin | None, source: str = "cli") -> dict[str, Any]:
    """apply.finished (everything applied) or apply.failed (something failed, was skipped, or the
    apply was interrupted)."""
    counts = {"created": 0, "updated": 0, "deleted": 0, "failed": len(result.of(Outcome.failed)),
              "skipped": len(result.of(Outcome.skipped))}
    for r in result.of(Outcome.applied):
        key = {ActionKind.create: "created", ActionKind.delete: "deleted"}.get(r.action.kind, "updated")
        counts[key] += 1
    definitions = [{"name": r.action.name, "id": r.id or r.action.id, "action": r.action.kind.value,
                    "outcome": r.outcome.value, "error": r.error} for r in result.results]
    ok = result.ok and not result.interrupted
    return envelope("apply.finished" if ok else "apply.failed", source=source, summary=result.summary,
                    target=target_of(origin), definitions=definitions, counts=counts,
                    errors=[r.line() for r in result.of(Outcome.failed)])


def refused(plan: Plan, *, source: str = "cli") -> dict[str, Any]:
    return envelope("plan.refused", source=source, summary=f"Plan refused. {plan.summary.text}",
                    target=target_of(plan.origin), definitions=_writes(plan), counts=_counts(plan),
                    errors=list(plan.errors))


def drift(plan: Plan, *, source: str = "cli", summary: str | None = None) -> dict[str, Any]:
    """drift.found: the live state differs from the manifests (what a plan would change)."""
    return envelope("drift.found", source=source, summary=summary or f"Drift found. {plan.summary.text}",
                    target=target_of(plan.origin), definitions=_writes(plan), counts=_counts(plan))


def _writes(plan: Plan) -> list[Mapping[str, Any]]:
    return [{"name": a.name, "id": a.id, "action": a.kind.value} for a in plan.writes]


def _counts(plan: Plan) -> dict[str, int]:
    s = plan.summary
    return {"create": s.create, "update": s.update + s.adopt + s.rename, "delete": s.delete}
