"""``batchPredictionJobDefinitions/``: list, create, get, PATCH, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from reconciler.service import errors, ids, listing, render, validation
from reconciler.service.deps import JsonBody, PagingDep, SettingsDep, StoreDep, UserDep, page_link
from reconciler.service.openapi import ERROR_RESPONSES, body_schema, json_response
from reconciler.service.params import DeploymentFilter, SearchName
from reconciler.service.records import DefinitionRecord
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route

router = APIRouter(tags=["job definitions"])
BASE = "/batchPredictionJobDefinitions/"
IdPath = Annotated[str, Path(description="Job definition id (24 hex digits).")]
_NAME_ATTEMPTS = 8
_SHAPE = "ApiDefinitionResponse"  # the contract's api-definition-response


async def list_definitions(
    request: Request, store: StoreDep, paging: PagingDep, searchName: SearchName = None,
    deploymentId: DeploymentFilter = None,
) -> Response:
    """Newest last; ``next``/``previous`` are absolute URLs that keep the filters."""
    rows, total = store.list_definition_rows(offset=paging.offset, limit=paging.limit, search_name=searchName,
                                             deployment_id=deploymentId)
    return Response(listing.definitions_page(rows, total=total, offset=paging.offset, limit=paging.limit,
                                             now=ids.utcnow(), link=page_link(request, paging.limit)),
                    media_type="application/json")


async def create_definition(body: JsonBody, store: StoreDep, settings: SettingsDep, user: UserDep) -> JSONResponse:
    """202 like the real API; a name already used is 409; a generated name retries on collision."""
    given = body.get("name")
    attempts = 1 if isinstance(given, str) else _NAME_ATTEMPTS
    for attempt in range(attempts):
        name = given if isinstance(given, str) else ids.generated_name(suffix=attempt > 0)
        now = ids.iso(ids.utcnow())
        record = validation.new_definition(body, id_=ids.new_id(), name=name, now=now, user=user.as_api(),
                                           default_num_concurrent=settings.default_num_concurrent)
        try:
            stored = store.create_definition(record)
        except errors.HTTPNameTaken:
            if attempt == attempts - 1:
                raise
            continue
        return JSONResponse(render.definition(stored, now=ids.utcnow()), status_code=202)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def get_definition(definition_id: IdPath, store: StoreDep) -> JSONResponse:
    return JSONResponse(render.definition(store.get_definition(definition_id), now=ids.utcnow()))


async def update_definition(definition_id: IdPath, body: JsonBody, store: StoreDep, settings: SettingsDep,
                      user: UserDep) -> JSONResponse:
    """Absent keys are unchanged; given job-spec keys replace the stored ones (top-level merge)."""
    def change(current: DefinitionRecord) -> DefinitionRecord:
        return validation.patched_definition(current, body, now=ids.iso(ids.utcnow()), user=user.as_api(),
                                             default_num_concurrent=settings.default_num_concurrent)

    updated = store.update_definition(definition_id, change)
    return JSONResponse(render.definition(updated, now=ids.utcnow()))


async def delete_definition(definition_id: IdPath, store: StoreDep) -> Response:
    """Stops future scheduled runs; jobs already queued from it keep their records."""
    store.delete_definition(definition_id)
    return Response(status_code=204)


route(router, BASE, list_definitions, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE, listed=True)}, summary="List job definitions")
route(router, BASE, create_definition, methods=["POST"], status_code=202,
      responses={**ERROR_RESPONSES, **json_response(_SHAPE, status=202)}, summary="Create a job definition",
      openapi_extra=body_schema("ApiDefinitionCreate"))
route(router, BASE + "{definition_id}/", get_definition, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE)}, summary="Get a job definition")
route(router, BASE + "{definition_id}/", update_definition, methods=["PATCH"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE)}, summary="Update a job definition",
      openapi_extra=body_schema("ApiDefinitionUpdate"))
route(router, BASE + "{definition_id}/", delete_definition, methods=["DELETE"], status_code=204,
      responses=ERROR_RESPONSES, summary="Delete a job definition", response_class=Response)
