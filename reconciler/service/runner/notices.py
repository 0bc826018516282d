"""job.failed notifications from the local service's runner: a job that ends FAILED is told to
the channels (``ServiceSettings.notify``) on the event loop, after its status is recorded, without
holding up the job's thread; :meth:`JobNotices.drain` waits (bounded) for those in flight when the
runner stops.

Where the channels come from: ``reconciler serve`` reads ``RECONCILER_NOTIFY_WEBHOOK_URL`` (with
``RECONCILER_NOTIFY_WEBHOOK_SECRET`` for the HMAC signature) and ``RECONCILER_NOTIFY_APPRISE_URL``
(:func:`reconciler.notify.send.channels_from_env`); the embedded service gets the project's channels from the session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from typing import Any

from reconciler.notify.send import Channel, envelope, send
from reconciler.service.records import JobRecord

__all__ = ["JobNotices", "job_failed"]

log = logging.getLogger("reconciler.notify")


def job_failed(record: JobRecord) -> dict[str, Any]:
    """The job.failed body (schemas/notification.schema.json) of a job that ended FAILED."""
    name = record.definition_name or record.definition_id
    summary = f"Job {record.id}" + (f" of {name}" if name else "") + f" failed: {record.status_details}"
    return envelope("job.failed", source="service", summary=summary,
                    definitions=[{"name": record.definition_name, "id": record.definition_id, "outcome": "FAILED",
                                  "error": record.status_details}] if record.definition_name else [],
                    counts={"scoredRows": record.scored_rows, "failedRows": record.failed_rows},
                    job={"id": record.id, "definitionId": record.definition_id,
                         "definitionName": record.definition_name, "status": record.status,
                         "message": record.status_details or None})


class JobNotices:
    """Sends job.failed from the runner's threads on its event loop; never raises."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channels = tuple(c for c in channels if c.wants("job.failed"))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[concurrent.futures.Future[Any]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def finished(self, record: JobRecord | None) -> None:
        """Called from a job's thread once its end is recorded."""
        if record is None or record.status != "FAILED" or not self.channels or self.loop is None:
            return
        try:
            future = asyncio.run_coroutine_threadsafe(send(self.channels, job_failed(record)), self.loop)
        except RuntimeError:  # the loop is closed: the service is going down
            log.warning("job.failed for job %s not sent: the service is stopping", record.id)
            return
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        if self._pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self._pending)], timeout=timeout)
