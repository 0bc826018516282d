"""``deployments/``, ``credentials/``, ``externalDataStores/``: the minimal resources a definition
refers to, so that a reference can be checked. Create, list, get, delete.

Credentials of type ``s3`` (AWS keys), ``azure`` (``azureConnectionString``), ``gcp`` (``gcpKey``,
a service account key JSON) and ``basic`` (user/password for a JDBC data store) keep their secrets
for the runner's adapters, in a table of their own that no response is built from:
responses show id, name, type and description only. Other secret fields are refused (422).
An ``id`` may be given on create (24 hex digits) so that manifests written against a real
installation can be replayed locally with the same ids.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import jsonschema
from fastapi import APIRouter, Path, Query, Request, Response

from reconciler.contract.issues import suggest_key
from reconciler.service import errors, ids, render
from reconciler.service.deps import JsonBody, Paging, PagingDep, StoreDep, UserDep, page_link
from reconciler.service.openapi import ERROR_RESPONSES, json_response
from reconciler.service.records import Page, ResourceRecord
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route

_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$", "description": "Optional: choose the id (24 hex digits)."}

_SHAPE = "ApiResourceResponse"  # the contract's api-resource-response
KINDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # kind: (path, name field, request schema)
    "deployment": ("/deployments/", "label", {
        "type": "object", "additionalProperties": False, "required": ["label"],
        "properties": {"id": _ID, "label": {"type": "string", "minLength": 1, "maxLength": 255},
                       "description": {"type": "string", "maxLength": 10000}}}),
    "credential": ("/credentials/", "name", {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"id": _ID, "name": {"type": "string", "minLength": 1, "maxLength": 255},
                       "credentialType": {"type": "string", "minLength": 1, "maxLength": 64, "default": "basic"},
                       "description": {"type": ["string", "null"], "maxLength": 10000},
                       # Secrets (DataRobot's names), writeOnly: stored apart, never rendered (SECRET_FIELDS).
                       "user": {"type": "string", "maxLength": 1024, "writeOnly": True},
                       "password": {"type": "string", "maxLength": 10000, "writeOnly": True},
                       "awsAccessKeyId": {"type": "string", "maxLength": 1024, "writeOnly": True},
                       "awsSecretAccessKey": {"type": "string", "maxLength": 10000, "writeOnly": True},
                       "awsSessionToken": {"type": "string", "maxLength": 100000, "writeOnly": True},
                       "azureConnectionString": {"type": "string", "minLength": 1, "maxLength": 10000,
                                                 "writeOnly": True},
                       "gcpKey": {"type": "object", "maxProperties": 100, "writeOnly": True,
                                  "description": "The service account key JSON, as dr.Credential.create_gcp sends it."}}}),
    "dataStore": ("/externalDataStores/", "canonicalName", {
        "type": "object", "additionalProperties": False, "required": ["canonicalName"],
        "properties": {"id": _ID, "canonicalName": {"type": "string", "minLength": 1, "maxLength": 255},
                       "type": {"type": "string", "enum": ["jdbc", "dr-database-v1"], "default": "jdbc"},
                       "params": {"type": "object", "default": {}, "properties": {
                           "url": {"type": "string", "minLength": 1,
                                   "description": "SQLAlchemy URL, e.g. sqlite:///path.db or postgresql://host/db"},
                           "jdbcUrl": {"type": "string", "minLength": 1,
                                       "description": "jdbc:postgresql://host:port/db or jdbc:sqlite:/path.db"},
                           "driverId": {"type": "string"}}}}}),
}

# Credential fields that are secret, read from ``writeOnly`` in the request schema above: kept in
# the store's credential_secrets table, never in the rendered body. Which of them a type needs:
# s3 = AWS keys, azure = a connection string, gcp = a service account key, basic = user/password
# (login to a JDBC data store). All optional, as a definition may only need the reference to exist.
SECRET_FIELDS = tuple(key for key, field in KINDS["credential"][2]["properties"].items() if field.get("writeOnly"))
_SECRETS_BY_TYPE = {"basic": ("user", "password"),
                    "s3": ("awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken"),
                    "azure": ("azureConnectionString",), "gcp": ("gcpKey",)}


ResourceIdPath = Annotated[str, Path(description="Resource id (24 hex digits).")]

# The list routes' filters, as the official SDK 3.20 sends them (datarobot/models/...):
# - ``Deployment.list(search=...)`` sends ``search``: "case insensitive search against deployment's
#   label and description";
# - ``Credential.list()`` sends no parameter at all;
# - ``DataStore.list(typ=..., name=...)`` sends ``type`` ("if not specified, the default is
#   DataStoreListTypes.JDBC") and ``name`` ("filters by data store names that match or contain this
#   name. The search is case-insensitive"). ``databases`` is read as every database type (jdbc and
#   dr-database-v1), an inference from the SDK's enum; dr-connector-v1 stores do not exist here.
# Its other filters (deployments' order_by, role and health filters; data stores' dataType and
# substituteUrlParameters) are not served: nothing stored here has what they select on.
_NAME_MAX = 255
DeploymentSearch = Annotated[str | None, Query(
    max_length=_NAME_MAX, description="Case-insensitive substring of the label or the description.")]
DataStoreName = Annotated[str | None, Query(
    max_length=_NAME_MAX, description="Case-insensitive substring of the canonicalName.")]
DATA_STORE_TYPES: dict[str, tuple[str, ...] | None] = {
    "jdbc": ("jdbc",), "dr-database-v1": ("dr-database-v1",), "dr-connector-v1": ("dr-connector-v1",),
    "databases": ("jdbc", "dr-database-v1"), "all": None}
DataStoreType = Annotated[Literal["jdbc", "dr-database-v1", "dr-connector-v1", "databases", "all"] | None, Query(
    alias="type", description="Only data stores of this type; default jdbc, as on DataRobot (all: every type).")]


def _problems(kind: str, body: dict[str, Any]) -> dict[str, str]:
    schema = KINDS[kind][2]
    found: dict[str, str] = {}
    for error in jsonschema.Draft202012Validator(schema).iter_errors(body):
        if error.validator == "additionalProperties":
            for key in sorted(set(body) - set(schema["properties"])):
                hint = suggest_key(key, schema["properties"])
                found[key] = f"unknown field ({hint})" if hint else "unknown field"
                if kind == "credential":
                    found[key] += f"; the local service keeps these secrets: {', '.join(SECRET_FIELDS)}"
            continue
        field = ".".join(str(p) for p in error.absolute_path) or "body"
        # jsonschema quotes the value in its message: never echo a secret (or a part of one) back
        secret = bool(error.absolute_path) and error.absolute_path[0] in SECRET_FIELDS
        expected = "an object" if field == "gcpKey" else "a string"
        found[field] = error.message if not secret else f"invalid ({error.validator}); expected {expected}"
    if kind == "credential" and not found:
        allowed = _SECRETS_BY_TYPE.get(str(body.get("credentialType", "basic")), ())
        for key in SECRET_FIELDS:
            if key in body and key not in allowed:
                found[key] = (f"not a field of credentialType {body.get('credentialType', 'basic')!r}; "
                              f"it takes {', '.join(allowed) or 'no secrets here'}")
        if (("awsAccessKeyId" in body) != ("awsSecretAccessKey" in body)):
            found["awsSecretAccessKey" if "awsAccessKeyId" in body else "awsAccessKeyId"] = \
                "give awsAccessKeyId and awsSecretAccessKey together"
    return found


def _documented(kind: str) -> dict[str, Any]:
    """The request schema as /docs states it: for credentials, also the rules ``_problems`` checks
    in code (which secret fields a credentialType takes, AWS keys in pairs), derived from
    ``_SECRETS_BY_TYPE`` so that a new type is documented as it is checked."""
    schema = KINDS[kind][2]
    if kind != "credential":
        return schema
    rules: list[dict[str, Any]] = []
    for key in SECRET_FIELDS:
        types = sorted(name for name, fields in _SECRETS_BY_TYPE.items() if key in fields)
        # credentialType defaults to basic: when basic takes the field, an absent type does too
        taking: dict[str, Any] = {"properties": {"credentialType": {"enum": types}}}
        if "basic" not in types:
            taking["required"] = ["credentialType"]
        rules.append({"if": taking, "else": {"properties": {key: False}}})
    return {**schema, "allOf": rules, "dependentRequired": {"awsAccessKeyId": ["awsSecretAccessKey"],
                                                           "awsSecretAccessKey": ["awsAccessKeyId"]}}


def _render(kind: str, record: ResourceRecord) -> dict[str, Any]:
    """The resource body plus the field names the SDK parses; data store passwords masked."""
    body = render.resource(record)
    if kind == "credential":
        body.update({"credentialId": record.id, "creationDate": record.created,
                     "credentialType": record.body.get("credentialType", "basic"),
                     "description": record.body.get("description") or ""})
        for key in SECRET_FIELDS:  # defence in depth: they are never in record.body
            body.pop(key, None)
    elif kind == "dataStore":
        params = dict(body.get("params") or {})
        if isinstance(params.get("url"), str):
            params["url"] = _masked_url(params["url"])
        body["params"] = params
        # the SDK's DataStore requires these (datarobot/models/data_store.py): the creator's user id,
        # the last change (data stores are never changed here) and the caller's role on it
        body.update({"creator": record.created_by.get("userId", ""), "updated": record.created, "role": "OWNER"})
    return body


def _masked_url(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: show the scheme only, never a possible password
        return url.split("://", 1)[0] + "://***"


def _router(kind: str) -> APIRouter:
    path, name_field, schema = KINDS[kind]
    router = APIRouter(tags=[path.strip("/")])

    async def create(body: JsonBody, store: StoreDep, user: UserDep) -> JSONResponse:
        found = _problems(kind, body)
        if found:
            raise errors.HTTPUnprocessable(f"invalid {kind}: {len(found)} problem(s); see errors", errors=found)
        fields = {key: spec["default"] for key, spec in schema["properties"].items() if "default" in spec}
        fields.update({key: value for key, value in body.items() if key != "id" and key not in SECRET_FIELDS})
        record = ResourceRecord(id=str(body.get("id") or ids.new_id()), kind=kind, name=str(body[name_field]),
                                body=fields, created=ids.iso(ids.utcnow()), created_by=user.as_api())
        if kind == "credential":
            secret = {key: body[key] for key in SECRET_FIELDS if key in body}
            return JSONResponse(_render(kind, store.create_credential(record, secret)), status_code=201)
        return JSONResponse(_render(kind, store.create_resource(record)), status_code=201)

    def listed(request: Request, page: Page, paging: Paging) -> JSONResponse:
        items = [_render(kind, record) for record in page.items]
        return JSONResponse(render.envelope(page, items, offset=paging.offset, limit=paging.limit,
                                            link=page_link(request, paging.limit)))

    # each list takes the query parameters the SDK 3.20 sends (see DeploymentSearch above)
    async def list_deployments(request: Request, store: StoreDep, paging: PagingDep,
                               search: DeploymentSearch = None) -> JSONResponse:
        return listed(request, store.list_resources(kind, offset=paging.offset, limit=paging.limit, search=search,
                                                    search_description=True), paging)

    async def list_credentials(request: Request, store: StoreDep, paging: PagingDep) -> JSONResponse:
        return listed(request, store.list_resources(kind, offset=paging.offset, limit=paging.limit), paging)

    async def list_data_stores(request: Request, store: StoreDep, paging: PagingDep, name: DataStoreName = None,
                               type_: DataStoreType = None) -> JSONResponse:
        return listed(request, store.list_resources(kind, offset=paging.offset, limit=paging.limit, search=name,
                                                    types=DATA_STORE_TYPES[type_ or "jdbc"]), paging)

    list_ = {"deployment": list_deployments, "credential": list_credentials, "dataStore": list_data_stores}[kind]

    async def get(resource_id: ResourceIdPath, store: StoreDep) -> JSONResponse:
        return JSONResponse(_render(kind, store.get_resource(kind, resource_id)))

    async def delete(resource_id: ResourceIdPath, store: StoreDep) -> Response:
        store.delete_resource(kind, resource_id)
        return Response(status_code=204)

    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": _documented(kind)}}}}
    route(router, path, list_, methods=["GET"],
          responses={**ERROR_RESPONSES, **json_response(_SHAPE, listed=True)},
          summary=f"List {path.strip('/')}", operation_id=f"list_{kind}")
    route(router, path, create, methods=["POST"], status_code=201,
          responses={**ERROR_RESPONSES, **json_response(_SHAPE, status=201)}, summary=f"Create a {kind}", openapi_extra=body_doc, operation_id=f"create_{kind}")
    route(router, path + "{resource_id}/", get, methods=["GET"],
          responses={**ERROR_RESPONSES, **json_response(_SHAPE)}, summary=f"Get a {kind}", operation_id=f"get_{kind}")
    route(router, path + "{resource_id}/", delete, methods=["DELETE"], status_code=204, response_class=Response,
          responses=ERROR_RESPONSES, summary=f"Delete a {kind} (409 while definitions use it)",
          operation_id=f"delete_{kind}")
    return router


routers = [_router(kind) for kind in KINDS]
