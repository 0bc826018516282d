"""``batchPredictions/fromExisting/``: run a previous job's spec again
(``BatchPredictionJob.score_from_existing``).

The new job is an ad-hoc copy (``source: api``) queued through the same store path as
``POST batchPredictions/``. A job that read a localFile upload cannot be repeated: its data came
with the request, so the copy would wait for an upload nobody sends; that is refused with a hint.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from reconciler.service import errors, ids, render
from reconciler.service.deps import JsonBody, StoreDep, UserDep, api_root
from reconciler.service.openapi import ERROR_RESPONSES, json_response
from reconciler.service.records import JobRecord
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route
from reconciler.service.routes.jobs import refuse_unusable_login
from reconciler.service.runner.adapters.base import initial_status

router = APIRouter(tags=["batch prediction jobs"])
_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")


async def from_existing(request: Request, body: JsonBody, store: StoreDep, user: UserDep) -> JSONResponse:
    previous_id = body.get("predictionJobId")
    if not isinstance(previous_id, str) or not _HEX24.match(previous_id) or set(body) - {"predictionJobId"}:
        raise errors.HTTPUnprocessable("cannot repeat a job: invalid request", errors={
            "predictionJobId": "expected only predictionJobId: the 24-hex id of a previous batch prediction job"})
    previous = store.get_job(previous_id)
    intake = previous.job.get("intakeSettings") or {}
    if intake.get("type", "localFile") == "localFile":
        raise errors.HTTPUnprocessable(f"job {previous_id} read an uploaded file, which is not kept for another run",
                                   errors={"predictionJobId": "score the file again with BatchPredictionJob.score"})
    refuse_unusable_login(previous.job, store)
    now = ids.iso(ids.utcnow())
    status, details = initial_status(previous.job, f"Job submitted at {now} (copy of {previous_id})")
    job = store.create_job(JobRecord(id=ids.new_id(), status=status, status_details=details, job=dict(previous.job),
                                     created=now, updated=now, created_by=user.as_api(), source="api"))
    runner = getattr(request.app.state, "runner", None)
    if runner is not None:
        runner.wake()
    rendered = render.job(job, base_url=api_root(request), now=ids.utcnow())
    return JSONResponse(rendered, status_code=202, headers={"Location": rendered["links"]["self"]})


route(router, "/batchPredictions/fromExisting/", from_existing, methods=["POST"],
      status_code=202, responses={**ERROR_RESPONSES, **json_response("ApiJobResponse", status=202)}, summary="Run a previous job's spec again",
      openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
          "type": "object", "required": ["predictionJobId"], "additionalProperties": False,
          "properties": {"predictionJobId": {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}}}}}}})
