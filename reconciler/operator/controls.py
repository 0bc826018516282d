"""The controls in the operator: suspend and sync windows, for one custom resource. Pure: the
moment is passed in (as the windows' state).

The project's ignore rules and the windows' state come from the operator's session
(:meth:`reconciler.session_steps.Steps.with_ignore_rules`, :meth:`~reconciler.session.Session.window`),
as for ``reconciler apply``; what is specific here is how an outcome looks in ``status``:

- ``spec.suspend: true``: no API call at all; a ``Suspended`` condition (True), ``Ready`` and
  ``Synced`` left as the last reconcile wrote them; the finalizer leaves the definition in place;
- a write inside a closed sync window: nothing is written; ``Synced=False`` with reason
  ``SyncWindowClosed`` and the window's reason, and the handler is retried when writes are next
  allowed (``retry_after``), or after the resync interval when no such time is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from reconciler.engine.plan import WRITES, Action
from reconciler.engine.windows import WindowState
from reconciler.operator.status import Reconciliation, Result

__all__ = ["SUSPENDED_MESSAGE", "deferral", "suspended"]

SUSPENDED_MESSAGE: Final = ("spec.suspend is true: the operator does not reconcile this resource, and leaves its "
                            "live definition in place if the resource is deleted")


def suspended(status: Mapping[str, Any]) -> Reconciliation:
    """The outcome of a suspended resource: nothing happened, nothing is known anew."""
    return Reconciliation(result=Result.suspended, message=SUSPENDED_MESSAGE, definition_id=status.get("definitionId"))


def deferral(action: Action, state: WindowState | None, *, definition_id: str | None, name: str,
             fallback: float) -> Reconciliation | None:
    """The outcome when the sync windows (``state``, at its moment) block ``action``'s write; None
    when it may go."""
    if action.kind not in WRITES or state is None or state.open:
        return None
    delay = max(1.0, (state.until - state.now).total_seconds() + 1.0) if state.until is not None else fallback
    paths = tuple(c.path for c in action.changes)
    return Reconciliation(result=Result.deferred, definition_id=definition_id, definition_name=name, drift=paths,
                   message=f"{action.kind.value} deferred: {state.reason}", retry_after=delay)
