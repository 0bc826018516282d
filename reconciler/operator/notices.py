"""drift.found from the operator: a resource whose live definition drifted (corrected, or only
reported under ``driftPolicy: Report``) is told, through the operator's session
(:meth:`reconciler.session.Session.notify`), to the channels of ``OperatorConfig.notify``
(``RECONCILER_NOTIFY_*``, filled by the chart from a Secret). Sent in the background after the
status is known, so that a slow or dead channel never holds up a reconcile; never raises."""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.notify.send import envelope
from reconciler.operator.status import Reconciliation, Result
from reconciler.session import Session

__all__ = ["Notices", "drift_body"]

DRIFT = frozenset({Result.drift_corrected, Result.drift_reported, Result.missing_reported})


def drift_body(resource: str, outcome: Reconciliation) -> dict[str, Any]:
    """The drift.found body (schemas/notification.schema.json) for one custom resource."""
    corrected = outcome.result is Result.drift_corrected
    return envelope("drift.found", source="operator", summary=f"{resource}: {outcome.message}",
                    definitions=[{"name": outcome.definition_name or resource, "id": outcome.definition_id,
                                  "action": "update" if corrected else None,
                                  "outcome": "corrected" if corrected else "reported",
                                  "error": None}],
                    counts={"fields": len(outcome.drift)})


class Notices:
    """The drift notices under way (the operator waits for them when it stops)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def drift(self, session: Session, resource: str, outcome: Reconciliation) -> None:
        if outcome.result not in DRIFT or not session.wants("drift.found"):
            return
        task = asyncio.get_running_loop().create_task(session.notify(drift_body(resource, outcome)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
