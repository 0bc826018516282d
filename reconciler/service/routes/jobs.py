"""``batchPredictions/``: start jobs (from a definition, or ad hoc), list and get them, abort one,
and the localFile data routes: ``csvUpload`` (plain PUT, or PUT parts + finalizeMultipart, as
the SDK 3.20 sends them) and ``download`` (the scored CSV, streamed from disk).

Jobs are executed by the runner (``reconciler.service.runner``) that ``reconciler serve`` starts
in its lifespan; these routes only queue, wake it, and signal aborts. In-process apps (no
lifespan) queue jobs that stay ``INITIALIZING`` until a served instance on the same database
picks them up.

``GET batchPredictions/{id}/`` answers 200 for every job, finished or not, as DataRobot does.
SDK 3.20 sends this one request (redirects off) for three things: ``BatchPredictionJob.get`` and
the ``refresh`` that ends every wait accept only a 200 (a 303 raises ``PendingJobFinished`` /
``AsyncFailureError`` there), while ``Job.wait_for_completion``'s waiter would also stop on a
303. A 303 for finished jobs would end waits on FAILED jobs at once and break every get and
refresh after them, so it is not used. With a 200 the waiter stops at once on COMPLETED (returns)
and ABORTED (raises AsyncProcessUnsuccessfulError); on FAILED it polls until ``max_wait``, the
SDK's own limit (tests/runner/test_sdk_jobs.py::test_waiting_on_finished_jobs_with_the_sdk).
"""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse

from reconciler.extras import MissingExtra, require
from reconciler.service import errors, ids, render, validation
from reconciler.service.deps import JsonBody, PagingDep, SettingsDep, StoreDep, UserDep, api_root, page_link
from reconciler.service.openapi import ERROR_RESPONSES, body_schema, json_response
from reconciler.service.params import DefinitionFilter, DeploymentFilter, JobOrder, StatusFilter
from reconciler.service.records import DefinitionRecord, JobRecord, User
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route
from reconciler.service.runner import files
from reconciler.service.runner.adapters.base import initial_status
from reconciler.service.settings import ServiceSettings, job_data_dir
from reconciler.service.store import Store

router = APIRouter(tags=["batch prediction jobs"])
_SHAPE = "ApiJobResponse"  # the contract's api-job-response
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
        raise errors.HTTPUnprocessable("cannot start a job: invalid request", errors=found)

    job = queue_from_definition(request, store, definition_id, user)
    return JSONResponse(render.job(job, base_url=api_root(request), now=ids.utcnow()), status_code=202)


def queue_from_definition(request: Request, store: Store, definition_id: str, user: User) -> JobRecord:
    """Queue a run of the definition now: the API's run-once and the dashboard's "Run now"."""
    with contextlib.suppress(errors.HTTPNotFound):  # start_job_from_definition answers it, naming jobDefinitionId
        refuse_unusable_login(store.get_definition(definition_id).job, store)

    def make(definition: DefinitionRecord) -> JobRecord:
        now = ids.iso(ids.utcnow())
        status, details = initial_status(definition.job, f"Job submitted at {now}")
        return JobRecord(id=ids.new_id(), status=status, status_details=details, job=dict(definition.job),
                         created=now, updated=now, created_by=user.as_api(), definition_id=definition.id, definition_name=definition.name, source="manual")

    job = store.start_job_from_definition(definition_id, make)
    _wake_runner(request)
    return job


async def list_jobs(
    request: Request, store: StoreDep, paging: PagingDep, status: StatusFilter = None,
    batchPredictionJobDefinitionId: DefinitionFilter = None, deploymentId: DeploymentFilter = None,
    order_by: JobOrder = None,
) -> JSONResponse:
    statuses = [str(value) for value in status or []]
    page = store.list_jobs(offset=paging.offset, limit=paging.limit, statuses=statuses,
                           definition_id=batchPredictionJobDefinitionId, deployment_id=deploymentId,
                           order_by=order_by or "created")
    now, root = ids.utcnow(), api_root(request)
    items = [render.job(job, base_url=root, now=now) for job in page.items]
    return JSONResponse(render.envelope(page, items, offset=paging.offset, limit=paging.limit,
                                        link=page_link(request, paging.limit)))


async def get_job(request: Request, job_id: JobIdPath, store: StoreDep) -> JSONResponse:
    """Always 200 with the job: the only answer every SDK reader of this URL accepts (module docstring)."""
    return JSONResponse(render.job(store.get_job(job_id), base_url=api_root(request), now=ids.utcnow()))


async def abort_job(request: Request, job_id: JobIdPath, store: StoreDep,
                    settings: SettingsDep) -> Response:
    """Abort a queued or running job (the SDK does this when it stops waiting). A running job
    stops between chunks: its runner sees the status change (or, in this process, the signal)."""
    abort(request, store, settings, job_id)
    return Response(status_code=204)


def abort(request: Request, store: Store, settings: ServiceSettings, job_id: str) -> JobRecord:
    """Abort a queued or running job (409 once it has finished): the API's DELETE and the dashboard's "Abort"."""
    before = store.get_job(job_id)
    aborted = store.set_job_status(job_id, status="ABORTED", details="Job aborted by the user",
                                   now=ids.iso(ids.utcnow()), only_from=("INITIALIZING", "RUNNING"))
    runner = getattr(request.app.state, "runner", None)
    if runner is not None:
        runner.cancel(job_id)
    if before.status == "INITIALIZING":  # no runner has it: drop what was uploaded (a running job's runner does)
        files.remove_job_files(job_data_dir(settings), job_id)
    return aborted


route(router, "/batchPredictions/fromJobDefinition/", run_once, methods=["POST"],
      status_code=202, responses={**ERROR_RESPONSES, **json_response(_SHAPE, status=202)}, summary="Run a job definition once", openapi_extra=RUN_ONCE_BODY)
route(router, "/batchPredictions/", list_jobs, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE, listed=True)},
      summary="List batch prediction jobs")
route(router, "/batchPredictions/{job_id:hex24}/", get_job, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE)}, summary="Get a batch prediction job")
route(router, "/batchPredictions/{job_id:hex24}/", abort_job, methods=["DELETE"], status_code=204,
      responses=ERROR_RESPONSES, summary="Abort a batch prediction job", response_class=Response)


# -- execution: ad-hoc jobs and localFile data (issue #8) -------------------------------------------


def refuse_unusable_login(spec: dict[str, Any], store: Store) -> None:
    """422 when a jdbc credential's login cannot reach its data store (a SQLite file takes none):
    said when the job is asked for, not as a failure once it runs. Only a jdbc job loads the jdbc
    adapter (the runner's stack); without the [runner] extra the job fails at creation anyway, with
    the install command (:func:`reconciler.service.runner.adapters.base.cannot_run`)."""
    if not any(isinstance(spec.get(side), dict) and spec[side].get("type") == "jdbc"
               for side in ("intakeSettings", "outputSettings")):
        return
    try:
        require("runner", "checking a jdbc login")
    except MissingExtra:
        return
    from reconciler.service.runner.adapters.jdbc import login_problems

    found = login_problems(spec, store)
    if found:
        raise errors.HTTPUnprocessable(f"cannot start this job: {next(iter(found.values()))}", errors=found)


def _wake_runner(request: Request) -> None:
    runner = getattr(request.app.state, "runner", None)
    if runner is not None:
        runner.wake()


async def create_job(request: Request, body: JsonBody, store: StoreDep, settings: SettingsDep,
                     user: UserDep) -> JSONResponse:
    """An ad-hoc job from the flattened job spec (``BatchPredictionJob.score``). 202 with the job
    and ``Location: .../batchPredictions/{id}/``: the SDK takes the id from that header."""
    body = validation.canonical(body)
    found = validation.problems(body, "job-spec")
    if found:
        raise errors.HTTPUnprocessable(f"invalid batch prediction job: {len(found)} problem(s); see errors", errors=found)
    spec = validation.filled_job(body, default_num_concurrent=settings.default_num_concurrent)
    spec.setdefault("outputSettings", {"type": "localFile"})
    refuse_unusable_login(spec, store)
    now = ids.iso(ids.utcnow())
    status, details = initial_status(spec, f"Job submitted at {now}")  # an azure output fails here, before the upload
    job = store.create_job(JobRecord(id=ids.new_id(), status=status, status_details=details, job=spec, created=now,
                                     updated=now, created_by=user.as_api(), source="api"))
    _wake_runner(request)
    rendered = render.job(job, base_url=api_root(request), now=ids.utcnow())
    return JSONResponse(rendered, status_code=202, headers={"Location": rendered["links"]["self"]})


def _upload_limit_error(exc: files.UploadTooLarge) -> errors.HTTPPayloadTooLarge:
    return errors.HTTPPayloadTooLarge(str(exc), errors={"body": "raise ServiceSettings.max_upload_bytes or split the data"})


async def upload_csv(request: Request, job_id: JobIdPath, store: StoreDep, settings: SettingsDep) -> Response:
    """The whole CSV in one PUT (``Content-Type: text/csv``); the job becomes runnable."""
    store.check_upload_allowed(job_id)
    data_dir = job_data_dir(settings)
    try:
        size = await files.receive(request.stream(), files.part_path(data_dir, job_id, 0),
                                   limit=settings.max_upload_bytes)
    except files.UploadTooLarge as exc:
        raise _upload_limit_error(exc) from None
    store.complete_upload(job_id, intake_bytes=size, now=ids.iso(ids.utcnow()))
    _wake_runner(request)
    return Response(status_code=202)


async def upload_part(request: Request, job_id: JobIdPath, store: StoreDep, settings: SettingsDep,
                      part: Annotated[int, Path(ge=0, le=999_999, description="Part number, from 0.")]) -> Response:
    """One part of a multipart upload; each part is a CSV with its own header row (as the SDK sends)."""
    store.check_upload_allowed(job_id)
    try:
        await files.receive(request.stream(), files.part_path(job_data_dir(settings), job_id, part),
                            limit=settings.max_upload_bytes)
    except files.UploadTooLarge as exc:
        raise _upload_limit_error(exc) from None
    return Response(status_code=202)


async def finalize_upload(request: Request, job_id: JobIdPath, store: StoreDep, settings: SettingsDep) -> Response:
    """No more parts: check they are contiguous from 0, then the job becomes runnable."""
    store.check_upload_allowed(job_id)
    data_dir = job_data_dir(settings)
    parts = files.input_files(data_dir, job_id)
    if not parts:
        raise errors.HTTPConflict(f"job {job_id} has no uploaded parts", errors={
            "csvUpload": "PUT the data to csvUpload/part/0/ (and further parts) before finalizing"})
    gaps = files.missing_parts(data_dir, job_id)
    if gaps:
        raise errors.HTTPConflict(f"job {job_id} is missing upload part(s) {', '.join(map(str, gaps[:10]))}",
                              errors={"csvUpload": "upload the missing parts, then finalize again"})
    size = sum(p.stat().st_size for p in parts)
    store.complete_upload(job_id, intake_bytes=size, now=ids.iso(ids.utcnow()))
    _wake_runner(request)
    return Response(status_code=202)


async def download(job_id: JobIdPath, store: StoreDep, settings: SettingsDep) -> Response:
    """The scored CSV, streamed from disk; 404 until the job has COMPLETED with localFile output."""
    job = store.get_job(job_id)
    output = job.job.get("outputSettings") or {"type": "localFile"}
    if output.get("type") != "localFile":
        raise errors.HTTPNotFound(f"job {job_id} writes to {output.get('type')}, not localFile; nothing to download",
                              errors={"id": "download exists only for jobs with localFile output"})
    path = files.output_path(job_data_dir(settings), job_id)
    if job.status != "COMPLETED" or not path.is_file():
        raise errors.HTTPNotFound(f"job {job_id} has no results to download (it is {job.status})", errors={
            "id": "wait until links.download appears in GET batchPredictions/{id}/"})
    return FileResponse(path, media_type="text/csv", filename=f"{job_id}.csv")


route(router, "/batchPredictions/", create_job, methods=["POST"], status_code=202,
      responses={**ERROR_RESPONSES, **json_response(_SHAPE, status=202)}, summary="Start an ad-hoc batch prediction job",
      openapi_extra=body_schema("JobSpec"))
CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {
    "type": "string", "description": "The job's input rows, as CSV with a header row (csvSettings apply)."}}}}}
route(router, "/batchPredictions/{job_id:hex24}/csvUpload/", upload_csv, methods=["PUT"], status_code=202,
      responses=ERROR_RESPONSES, summary="Upload the job's CSV (localFile intake)", response_class=Response,
      openapi_extra=CSV_BODY)
route(router, "/batchPredictions/{job_id:hex24}/csvUpload/part/{part}/", upload_part, methods=["PUT"], status_code=202,
      responses=ERROR_RESPONSES, summary="Upload one part of the job's CSV", response_class=Response,
      openapi_extra=CSV_BODY)
route(router, "/batchPredictions/{job_id:hex24}/csvUpload/finalizeMultipart/", finalize_upload, methods=["POST"],
      status_code=202, responses=ERROR_RESPONSES, summary="Finish a multipart upload", response_class=Response)
route(router, "/batchPredictions/{job_id:hex24}/download/", download, methods=["GET"], responses=ERROR_RESPONSES,
      summary="Download the scored CSV (localFile output)", response_class=FileResponse)
