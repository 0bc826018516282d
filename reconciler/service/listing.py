"""A page of definitions as response bytes, spliced from the stored JSON text.

The job spec, the schedule and the users are stored as JSON text (written by ``json.dumps``:
ASCII, compact); decoding each into Python and encoding it again was most of a page's time. Here
that text goes into the response as it is, and only the scalar fields are encoded (orjson). A
row whose text the client must not see as stored falls back to :func:`render.definition`: a job
holding a write-only key (``public_job`` removes it) or any text with ``NaN``/``Infinity`` (which
``json.dumps`` writes but JSON does not allow; the decoded path answers ``null``). The next
scheduled run is cached by (schedule text, minute), so a page sharing a few schedules parses each
once. The parsed response is the same as the decoded path's (tests/service/test_listing.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler.contract import keys
from reconciler.service import ids, render, schedule
from reconciler.service.responses import dumps
from reconciler.service.store.definitions import definition_record

__all__ = ["definitions_page"]

_NOT_JSON = ("NaN", "Infinity")


def definitions_page(rows: Sequence[Sequence[Any]], *, total: int, offset: int, limit: int, now: datetime,
                     link: Callable[[int], str]) -> bytes:
    """The list envelope of ``rows`` (``Store.list_definition_rows``) as JSON bytes."""
    moment = now.astimezone(UTC).replace(second=0, microsecond=0)
    items = [_definition(row, now, moment) for row in rows]
    more = offset + len(items) < total
    head = orjson.dumps({"count": len(items), "next": link(offset + limit) if more and items else None,
                         "previous": link(max(0, offset - limit)) if offset > 0 else None})
    return b"".join((head[:-1], b',"data":[', b",".join(items), b'],"totalCount":', str(total).encode(), b"}"))


def _spliceable(text: str | None, *, job: bool = False) -> bool:
    if text is None:
        return True
    if any(word in text for word in _NOT_JSON):
        return False
    return not (job and any(key in text for key in keys.write_only_instance_keys()))


def _definition(row: Sequence[Any], now: datetime, moment: datetime) -> bytes:
    (id_, name, enabled, schedule_text, job, _deployment, created, updated, created_by, updated_by,
     last_status, last_time, last_scheduled, last_successful, last_failed) = row
    if not (_spliceable(job, job=True) and _spliceable(schedule_text) and _spliceable(created_by)
            and _spliceable(updated_by)):
        return dumps(render.definition(definition_record(row), now=now))
    enabled = bool(enabled)
    parts = [orjson.dumps({"id": id_, "name": name, "enabled": enabled})[:-1]]
    if schedule_text is not None:  # absent, not null, when there is none (as render.definition)
        parts += (b',"schedule":', schedule_text.encode())
    upcoming = _next_run(schedule_text, moment) if enabled and schedule_text is not None else None
    parts += (b',"batchPredictionJob":', job.encode(),
              b"," + orjson.dumps({"created": created, "updated": updated})[1:-1],
              b',"createdBy":', created_by.encode(), b',"updatedBy":', updated_by.encode(),
              b"," + orjson.dumps({
                  "lastStartedJobStatus": last_status, "lastStartedJobTime": last_time,
                  "lastScheduledRunTime": last_scheduled or ids.NEVER,
                  "lastSuccessfulRunTime": last_successful or ids.NEVER,
                  "lastFailedRunTime": last_failed or ids.NEVER, "nextScheduledRunTime": upcoming})[1:])
    return b"".join(parts)


@functools.lru_cache(maxsize=4096)
def _next_run(schedule_text: str, moment: datetime) -> str | None:
    return schedule.next_run_iso(orjson.loads(schedule_text), after=moment)
