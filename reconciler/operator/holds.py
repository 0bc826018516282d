"""Why the operator leaves a valid resource alone: its definition belongs to another ownership scope
(``Conflict``), or ``spec.suspend: true`` (``Suspended``). Pure.

Checked after validation and before any API call, so a held resource costs no request and never
writes: the scope check needs only the names, and a suspended resource is not even read (Flux's
``suspend``: the controller stops looking at it until it is resumed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.operator.ownership import outside_scope
from reconciler.operator.status import Outcome, Result
from reconciler.specs.model import Manifest
from reconciler.specs.scope import Scope

__all__ = ["SUSPENDED", "hold", "suspended"]

SUSPENDED = ("reconciliation is suspended (spec.suspend: true): the live definition is neither read nor "
             "written, and deleting the resource leaves it in place; set spec.suspend to false to resume")


def suspended(spec: Mapping[str, Any] | None) -> bool:
    """``spec.suspend: true`` (read from the resource's spec as the API server stored it)."""
    return spec is not None and spec.get("suspend") is True


def hold(manifest: Manifest, spec: Mapping[str, Any] | None, *, scope: Scope | None,
         recorded_id: str | None) -> Outcome | None:
    """The outcome to report instead of reconciling, or None to reconcile. A conflict wins over a
    suspension: it says who owns the definition, which matters before anyone resumes it."""
    conflict = outside_scope(manifest.definition_name, manifest.spec.previousNames, scope)
    if conflict is not None:
        return Outcome(result=Result.conflict, message=conflict)
    if suspended(spec):
        return Outcome(result=Result.suspended, message=SUSPENDED, definition_id=recorded_id)
    return None
