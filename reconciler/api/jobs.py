"""Reading batch prediction jobs: the recent jobs of a definition (or of all), newest first.

Through the route the SDK's ``BatchPredictionJob.list_by_status`` uses, ``GET batchPredictions/``,
with the filters DataRobot documents (``status`` repeatable, ``batchPredictionJobDefinitionId``,
``orderBy=-created``): one request for one page, so ``reconciler jobs`` costs one call whatever
the history holds. A single job is :meth:`reconciler.api.client.Client.get_job`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from reconciler.api.client import Client
from reconciler.errors import UsageError

__all__ = ["JOBS", "MAX_JOBS", "check_job_id", "recent_jobs"]

JOBS: Final = "batchPredictions/"
MAX_JOBS: Final = 1000  # the API's largest page
_JOB_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def check_job_id(job_id: str) -> str:
    """A job id as the API spells it (24 hex digits), or a usage error that says where ids come from."""
    if not _JOB_ID.match(job_id):
        raise UsageError(f"job id {job_id!r} is not 24 hex digits; `reconciler jobs` lists the ids of recent jobs")
    return job_id.lower()


async def recent_jobs(client: Client, *, definition_id: str | None = None, statuses: Sequence[str] = (),
                      limit: int = 20) -> list[dict[str, Any]]:
    """At most ``limit`` jobs, newest first, of one definition or of all, in the given states."""
    if not 1 <= limit <= MAX_JOBS:
        raise UsageError(f"--limit must be between 1 and {MAX_JOBS}, got {limit}")
    params: dict[str, Any] = {"offset": 0, "limit": limit, "orderBy": "-created"}
    if statuses:
        params["status"] = list(statuses)
    if definition_id:
        params["batchPredictionJobDefinitionId"] = definition_id
    response = await client.request("GET", client.url(JOBS), params=params)
    body = response.json()
    data = body.get("data") if isinstance(body, dict) else None
    return [dict(item) for item in (data or []) if isinstance(item, dict)][:limit]
