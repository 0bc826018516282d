"""Records to response bodies in the shapes of the API reference (contract §3, §5, §9). Pure.

``nextScheduledRunTime`` is computed when rendered, from the schedule and the current minute, not
stored: until a scheduler exists nothing would keep a stored value current, and a stale "next
run" in the past would be a lie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from reconciler.service import ids, schedule
from reconciler.service.records import DefinitionRecord, JobRecord, Page, ResourceRecord
from reconciler.service.validation import public_job


def definition(record: DefinitionRecord, *, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "enabled": record.enabled,
    }
    if record.schedule is not None:  # the SDK rejects "schedule": null; absent is how "none" is said
        body["schedule"] = record.schedule
    upcoming = None
    if record.enabled and record.schedule is not None:
        upcoming = schedule.next_run_iso(record.schedule, after=now)
    body.update({
        "batchPredictionJob": public_job(record.job),
        "created": record.created,
        "updated": record.updated,
        "createdBy": record.created_by,
        "updatedBy": record.updated_by,
        "lastStartedJobStatus": record.last_started_job_status,
        "lastStartedJobTime": record.last_started_job_time,
        "lastScheduledRunTime": record.last_scheduled_run_time or ids.NEVER,
        "lastSuccessfulRunTime": record.last_successful_run_time or ids.NEVER,
        "lastFailedRunTime": record.last_failed_run_time or ids.NEVER,
        "nextScheduledRunTime": upcoming,
    })
    return body


def job(record: JobRecord, *, base_url: str, now: datetime) -> dict[str, Any]:
    """``base_url`` is the API root (``.../api/v2/``); links are absolute like the real API's."""
    started = ids.parse_iso(record.created)
    finished = record.status in ("COMPLETED", "ABORTED", "FAILED")
    until = ids.parse_iso(record.updated) if finished else now
    body: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "statusDetails": record.status_details,
        "percentageCompleted": record.percentage,
        "elapsedTimeSec": max(0, int((until - started).total_seconds())),
        "jobSpec": public_job(record.job),
        "links": {"self": f"{base_url}batchPredictions/{record.id}/"},
        "created": record.created,
        "createdBy": record.created_by,
        "queued": record.status == "INITIALIZING",
        "scoredRows": record.scored_rows,
        "failedRows": record.failed_rows,
        "skippedRows": record.skipped_rows,
        "jobIntakeSize": record.intake_bytes,
        "jobOutputSize": record.output_bytes,
        "resultsDeleted": False,
        "isBlocked": False,
        "source": record.source,
        "logs": [],
    }
    if record.definition_id:
        body["batchPredictionJobDefinition"] = {"id": record.definition_id, "name": record.definition_name}
    _job_links(record, body["links"], base_url)
    return body


def _job_links(record: JobRecord, links: dict[str, str], base_url: str) -> None:
    """localFile links (issue #8): ``csvUpload`` while the job waits for its data, and on a job that
    failed before its data came (one that cannot run here: the SDK's ``score`` PUTs to this link
    unconditionally, and the 409 it gets names the reason); ``download`` once the scored file is
    complete (the SDK polls for it and then streams it)."""
    own = f"{base_url}batchPredictions/{record.id}/"
    if record.upload == "waiting" and record.status in ("INITIALIZING", "FAILED"):
        links["csvUpload"] = own + "csvUpload/"
    output = record.job.get("outputSettings")
    local_output = not isinstance(output, dict) or output.get("type", "localFile") == "localFile"
    if local_output and record.status == "COMPLETED" and record.output_bytes is not None:
        links["download"] = own + "download/"


def resource(record: ResourceRecord) -> dict[str, Any]:
    return {"id": record.id, **record.body, "created": record.created, "createdBy": record.created_by}


def envelope(page: Page, items: Sequence[dict[str, Any]], *, offset: int, limit: int,
             link: Callable[[int], str]) -> dict[str, Any]:
    """The list envelope; ``link(offset)`` builds the absolute URL of another page."""
    more = offset + len(items) < page.total
    return {
        "count": len(items),
        "next": link(offset + limit) if more and items else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "data": list(items),
        "totalCount": page.total,
    }
