"""``batchPredictions/``: run a definition once, list and get jobs, abort a job.

Execution arrives in a later issue: a job started here is recorded and stays honestly queued
(``INITIALIZING``); nothing here ever reports it running or completed.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from reconciler.service import errors, ids, render
from reconciler.service.deps import JsonBody, PagingDep, StoreDep, UserDep, api_root, page_link
from reconciler.service.models import ERROR_RESPONSES, JobList, JobOut
from reconciler.service.records import JOB_STATUSES, DefinitionRecord, JobRecord
from reconciler.service.routes import route

router = APIRouter(tags=["batch prediction jobs"])
_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
JobIdPath = Annotated[str, Path(description="Batch prediction job id (24 hex digits).")]

RUN_ONCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["jobDefinitionId"], "additionalProperties": False,
            "properties": {"jobDefinitionId": {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}},
        }}},
    }
}


async def run_once(request: Request, body: JsonBody, store: StoreDep, user: UserDep) -> JSONResponse:
    """202 with the queued job; the SDK reads ``id`` from this body and then GETs the job."""
    definition_id = body.get("jobDefinitionId")
    extra = sorted(set(body) - {"jobDefinitionId"})
    if not isinstance(definition_id, str) or not _HEX24.match(definition_id) or extra:
        found = {key: "unknown field; only jobDefinitionId is accepted" for key in extra}
        if not isinstance(definition_id, str) or not _HEX24.match(definition_id):
            found["jobDefinitionId"] = "expected the 24-hex id of a job definition, e.g. from GET batchPredictionJobDefinitions/"
        raise errors.Unprocessable("cannot start a job: invalid request", errors=found)

    def make(definition: DefinitionRecord) -> JobRecord:
        now = ids.iso(ids.utcnow())
        return JobRecord(id=ids.new_id(), status="INITIALIZING", status_details=f"Job submitted at {now}",
                         job=dict(definition.job), created=now, updated=now, created_by=user.as_api(),
                         definition_id=definition.id, definition_name=definition.name, source="manual")

    job = store.start_job_from_definition(definition_id, make)
    return JSONResponse(render.job(job, base_url=api_root(request), now=ids.utcnow()), status_code=202)


async def list_jobs(
    request: Request, store: StoreDep, paging: PagingDep,
    status: Annotated[list[str] | None, Query(description="Repeatable: only jobs in these states.")] = None,
    batchPredictionJobDefinitionId: Annotated[str | None, Query()] = None,
    deploymentId: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    statuses = status or []
    unknown = [s for s in statuses if s not in JOB_STATUSES]
    if unknown:
        raise errors.Unprocessable(f"unknown job status {unknown[0]!r}",
                                   errors={"status": f"expected one of {', '.join(JOB_STATUSES)}"})
    page = store.list_jobs(offset=paging.offset, limit=paging.limit, statuses=statuses,
                           definition_id=batchPredictionJobDefinitionId, deployment_id=deploymentId)
    now, root = ids.utcnow(), api_root(request)
    items = [render.job(job, base_url=root, now=now) for job in page.items]
    return JSONResponse(render.envelope(page, items, offset=paging.offset, limit=paging.limit,
                                        link=page_link(request, paging.limit)))


async def get_job(request: Request, job_id: JobIdPath, store: StoreDep) -> JSONResponse:
    """Always 200 with the job: the 303 "finished" redirect never applies while jobs stay queued."""
    return JSONResponse(render.job(store.get_job(job_id), base_url=api_root(request), now=ids.utcnow()))


async def abort_job(job_id: JobIdPath, store: StoreDep) -> Response:
    """Abort a queued or running job (the SDK does this when it stops waiting)."""
    store.set_job_status(job_id, status="ABORTED", details="Job aborted by the user", now=ids.iso(ids.utcnow()),
                         only_from=("INITIALIZING", "RUNNING"))
    return Response(status_code=204)


route(router, "/batchPredictions/fromJobDefinition/", run_once, methods=["POST"], response_model=JobOut,
      status_code=202, responses=ERROR_RESPONSES, summary="Run a job definition once", openapi_extra=RUN_ONCE_BODY)
route(router, "/batchPredictions/", list_jobs, methods=["GET"], response_model=JobList, responses=ERROR_RESPONSES,
      summary="List batch prediction jobs")
route(router, "/batchPredictions/{job_id}/", get_job, methods=["GET"], response_model=JobOut,
      responses=ERROR_RESPONSES, summary="Get a batch prediction job")
route(router, "/batchPredictions/{job_id}/", abort_job, methods=["DELETE"], status_code=204,
      responses=ERROR_RESPONSES, summary="Abort a batch prediction job", response_class=Response)
