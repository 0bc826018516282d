"""``deployments/{id}/model``: register (PUT the artifact bytes) and describe the model a deployment
scores with. Not part of DataRobot's API: there a deployment's model comes from the platform; here
an administrator supplies it.

SECURITY: a joblib artifact is a pickle, i.e. code that runs in the service when loaded. The PUT
is authenticated whenever the service has a token; without a token it is accepted only from a
loopback connection on a loopback bind (``reconciler serve`` refuses other binds without a token),
and refused (403) otherwise. Register only artifacts from a trusted source.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from reconciler.extras import MODEL_MODULES, require
from reconciler.service import errors, ids
from reconciler.service.deps import SettingsDep, StoreDep, UserDep
from reconciler.service.openapi import ERROR_RESPONSES, json_response
from reconciler.service.records import MODEL_KINDS, ModelDescription, ModelRecord
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route
from reconciler.service.routes.resources import KINDS
from reconciler.service.settings import LOOPBACK_HOSTS

router = APIRouter(tags=["deployment models"])


DeploymentIdPath = Annotated[str, Path(description="Deployment id (24 hex digits).", pattern="^[0-9a-fA-F]{24}$")]
ModelKind = enum.StrEnum("ModelKind", {kind: kind for kind in MODEL_KINDS})  # type: ignore[misc]
# Query limits (published in /docs): a column name, a comma-separated list of them, a deployment label.
_NAME_MAX, _LIST_MAX = 1000, 10_000  # the request line stays below the HTTP parser's 64 KiB
_LABEL_MAX = int(KINDS["deployment"][2]["properties"]["label"]["maxLength"])


def model_body(record: ModelRecord) -> dict[str, Any]:
    """``schemas/api-model-response.schema.json``."""
    return {"deploymentId": record.deployment_id, "kind": record.kind, "targetType": record.task,
            "targetName": record.target_name, "classNames": record.class_names,
            "featureNames": record.feature_names, "sha256": record.sha256, "size": record.size,
            "created": record.created, "createdBy": record.created_by}


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    return names or None


def _check_trusted(request: Request, token: str | None) -> None:
    if token is not None:
        return  # the middleware already checked the token
    server = request.scope.get("server")
    client = request.scope.get("client")
    local = (server is None or server[0] in LOOPBACK_HOSTS) and (client is None or client[0] in LOOPBACK_HOSTS)
    if not local:
        raise errors.HTTPForbidden("registering a model needs a token when the service is reachable off this machine: "
                               "a joblib artifact is code", errors={"Authorization": "start the service with "
                                                                    "--token-file or $RECONCILER_SERVICE_TOKEN"})


async def put_model(
    request: Request, deployment_id: DeploymentIdPath, store: StoreDep, settings: SettingsDep, user: UserDep,
    kind: Annotated[ModelKind | None, Query(  # type: ignore[valid-type]
        description="joblib or onnx; guessed from the bytes when omitted.")] = None,
    targetName: Annotated[str | None, Query(max_length=_NAME_MAX, description=(
        "Target column name (default: from the model, else 'target')."))] = None,
    featureNames: Annotated[str | None, Query(max_length=_LIST_MAX, description=(
        "Comma-separated input columns, when the artifact names none."))] = None,
    classNames: Annotated[str | None, Query(max_length=_LIST_MAX, description=(
        "Comma-separated class names (ONNX classifiers without labels)."))] = None,
    label: Annotated[str | None, Query(min_length=1, max_length=_LABEL_MAX, description=(
        "Create the deployment with this label if it does not exist."))] = None,
) -> JSONResponse:
    """Register or replace the deployment's model from the artifact bytes in the body."""
    _check_trusted(request, settings.token)
    require("models", "registering a model", modules=MODEL_MODULES)  # answered 501 by the app's handler
    from reconciler.service.runner import artifacts
    limit = settings.max_model_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.HTTPPayloadTooLarge(f"the artifact is larger than {limit} bytes",
                                         errors={"body": "raise ServiceSettings.max_model_bytes or use a smaller model"})
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise errors.HTTPUnprocessable("the body is empty", errors={"body": "send the artifact file's bytes"})
    try:
        description = await run_in_threadpool(artifacts.describe, data, kind=str(kind) if kind else None,
                                              target_name=targetName,
                                              feature_names=_split(featureNames), class_names=_split(classNames))
    except artifacts.ArtifactError as exc:
        raise errors.HTTPUnprocessable(f"cannot use this model: {exc}", errors={"body": str(exc)}) from None
    record = register(store, deployment_id, description, data, label=label, user=user.as_api())
    return JSONResponse(model_body(record), status_code=200)


def register(store: Any, deployment_id: str, description: ModelDescription, data: bytes, *,
             label: str | None, user: dict[str, Any]) -> ModelRecord:
    """Store a described artifact as the deployment's model (shared by the route and the CLI)."""
    record = ModelRecord(**dataclasses.asdict(description), deployment_id=deployment_id,
                         created=ids.iso(ids.utcnow()), created_by=user)
    result: ModelRecord = store.put_model(record, data, label=label)
    return result


async def get_model(deployment_id: DeploymentIdPath, store: StoreDep) -> JSONResponse:
    return JSONResponse(model_body(store.get_model(deployment_id)))


_SHAPE = "ApiModelResponse"
route(router, "/deployments/{deployment_id}/model", put_model, methods=["PUT"],
      responses={**ERROR_RESPONSES, 403: ERROR_RESPONSES[400], **json_response(_SHAPE)},
      summary="Register the deployment's model (artifact bytes in the body; admin, trusted artifacts only)",
      openapi_extra={"requestBody": {"required": True,
                                     "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                         "format": "binary"}}}}})
route(router, "/deployments/{deployment_id}/model", get_model, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE)},
      summary="Describe the deployment's model")
