"""The OpenAPI document: FastAPI's, plus the project's JSON Schemas for request bodies, stated as
strictly as the server enforces them.

Request bodies are documented with the very schemas that validate them (``api-definition``,
``job-spec``, bundled), so ``/docs`` and schemathesis see the real contract:

- a definition's create body (``ApiDefinitionCreate``) is ``api-definition`` plus what the
  server requires on create: the fields ``job-spec`` requires and, from ``definition-spec``,
  "``enabled: true`` needs a schedule"; the update body (``ApiDefinitionUpdate``) requires
  nothing, because absent keys stay as stored;
- what every body passes through before any schema (``deps.json_body``) is published too: no
  string or key holds a NUL character, and integers fit in 64 bits;
- path ids are documented as 24 hex digits (another id names nothing: the server answers 404);
- the Terraform provider's spellings that ``validation.canonical`` accepts are listed, and links
  say which response id feeds which request.

The bundles' ``#/$defs/...`` refs are moved under ``#/components/schemas/`` where OpenAPI 3.1
resolves them; component names are the schemas' short names in CamelCase.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from reconciler.contract import schemas
from reconciler.service import validation
from reconciler.service.deps import INT64_MAX, INT64_MIN
from reconciler.service.params import ID_PATTERN

__all__ = ["CONTRACT_SCHEMAS", "ERROR_RESPONSES", "RESPONSE_SCHEMAS", "body_schema", "contract_components", "install",
           "json_response", "storable"]

# Contract schemas the API documents as components, by component name: request bodies, and the
# responses the contract defines (every route that answers JSON refers to one; the list envelope
# ``api-list-response`` is restated per route by :func:`json_response` with its items' shape).
CONTRACT_SCHEMAS: Final = {"ApiDefinition": "api-definition", "JobSpec": "job-spec"}
RESPONSE_SCHEMAS: Final = {
    "ApiDefinitionResponse": "api-definition-response", "ApiJobResponse": "api-job-response",
    "ApiResourceResponse": "api-resource-response", "ApiVersionResponse": "api-version-response",
    "ApiHealthResponse": "api-health-response", "ApiErrorResponse": "api-error-response",
    "ApiListResponse": "api-list-response", "ApiDatasetResponse": "api-dataset-response",
    "ApiModelResponse": "api-model-response",
}
NO_NUL: Final = "^[^\\x00]*$"
_COMPOSITION: Final = ("$ref", "allOf", "anyOf", "oneOf", "if", "not", "unevaluatedProperties")


def body_schema(component: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is the named component."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}}}}


def json_response(component: str, *, status: int = 200, listed: bool = False) -> dict[int | str, Any]:
    """``responses`` for a route answering the named component (``listed``: a page of them in the
    list envelope), so the document states the contract's shape and no second copy of it."""
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{component}"}
    if listed:
        envelope = storable(_rewrite(copy.deepcopy(schemas.get("api-list-response"))))
        envelope["properties"]["data"] = {**envelope["properties"]["data"], "items": schema}
        schema = envelope
    return {status: {"description": "Successful Response", "content": {"application/json": {"schema": schema}}}}


ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    code: {"description": "Error", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ApiErrorResponse"}}}} for code in (400, 401, 404, 409, 413, 415, 422)}


def component_name(short: str) -> str:
    """``api-definition`` -> ``ApiDefinition``, ``intake-s3`` -> ``IntakeS3``."""
    return "".join(part[:1].upper() + part[1:] for part in short.split("-"))


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + component_name(value[len("#/$defs/"):])
            elif key in ("errorMessage", "$schema", "$id"):
                continue  # our own annotation / bundle metadata, meaningless inside OpenAPI
            else:
                out[key] = _rewrite(value)
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def _no_nul_pattern(pattern: str | None) -> str:
    """A pattern that also refuses NUL: ours are anchored at ``^``; one with no ``$`` matches a
    prefix and takes anything after it, so the rest is bounded to non-NUL characters. A pattern
    ending in ``$`` built from character classes (no ``.``; negated classes that exclude NUL
    themselves) already excludes NUL."""
    if pattern is None:
        return NO_NUL
    negated_without_nul = pattern.count("[^") - pattern.count("[^\\x00")
    if pattern.endswith("$") and "." not in pattern.replace("\\.", "") and negated_without_nul == 0:
        return pattern
    if pattern.startswith("^") and not pattern.endswith("$"):
        return pattern + "[^\\x00]*$"
    raise ValueError(f"cannot state 'no NUL' for the pattern {pattern!r}; extend _no_nul_pattern")


def storable(node: Any) -> Any:
    """``node`` (a request schema) with what ``deps.json_body`` refuses before any schema made
    explicit: strings and object keys without NUL, integers within 64 bits, and free-form
    values (an open object's unnamed members) limited to such JSON."""
    if isinstance(node, list):
        return [storable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: storable(value) if key not in ("enum", "const", "default", "examples") else value
           for key, value in node.items()}
    types = out.get("type")
    kinds = set(types) if isinstance(types, list) else {types} if isinstance(types, str) else set()
    if "string" in kinds and "enum" not in out and "const" not in out and out.get("format") != "binary":
        out["pattern"] = _no_nul_pattern(out.get("pattern"))
    if "integer" in kinds:
        out.setdefault("minimum", INT64_MIN)
        out.setdefault("maximum", INT64_MAX)
    if "object" in kinds:
        out.setdefault("propertyNames", {"pattern": NO_NUL})
        extra = out.get("additionalProperties", True)
        if extra is True and not any(key in out for key in _COMPOSITION):
            out["additionalProperties"] = {"$ref": "#/components/schemas/StorableJson"}
    return out


# Any JSON value the server stores: what a free-form member (e.g. a data store's extra params)
# may hold. Recursive through its own name.
STORABLE_JSON: Final = {
    "description": "Any JSON value without NUL characters in strings or keys and with 64-bit integers.",
    "anyOf": [
        {"type": "null"}, {"type": "boolean"}, {"type": "number"},
        {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": "#/components/schemas/StorableJson"}},
        {"type": "object", "propertyNames": {"pattern": NO_NUL},
         "additionalProperties": {"$ref": "#/components/schemas/StorableJson"}},
    ],
}


def contract_components() -> dict[str, Any]:
    """The contract schemas (bundled, storable) and the create/update bodies derived from them."""
    out: dict[str, Any] = {"StorableJson": STORABLE_JSON}
    for name, short in {**RESPONSE_SCHEMAS, **CONTRACT_SCHEMAS}.items():
        bundled = copy.deepcopy(schemas.bundle(short))
        defs = bundled.pop("$defs", {})
        out[name] = storable(_rewrite(bundled))
        out.update({component_name(key): storable(_rewrite(schema)) for key, schema in defs.items()})
    _document_client_spellings(out)
    spec = schemas.get("definition-spec")
    out["ApiDefinitionCreate"] = {
        "title": "Job definition (create body)",
        "description": "api-definition, with the job-spec fields the server requires on create; "
                       "enabled: true needs a schedule (as in definition-spec).",
        "allOf": [{"$ref": "#/components/schemas/ApiDefinition"},
                  {"required": _create_required(schemas.get("job-spec"))},
                  {"if": spec["if"], "then": {"required": list(spec["then"]["required"])}}],
    }
    out["ApiDefinitionUpdate"] = {
        "title": "Job definition (update body)",
        "description": "Any part of api-definition: absent keys keep their stored values, each job-spec key "
                       "given replaces the stored one. The merged definition must still be valid (e.g. "
                       "enabled: true with a stored or given schedule); if it is not, the answer is 422.",
        "$ref": "#/components/schemas/ApiDefinition",
    }
    return out


def _create_required(job_spec: dict[str, Any]) -> list[str]:
    """The job-spec fields a create must hold. A manifest may name its deployment by reference
    (``deploymentId`` or ``deploymentRef``, job-spec's ``anyOf``); the client resolves it, and the
    API takes only the id (the service answers 422 to a reference), so the id is required here."""
    ids = {key for alt in job_spec.get("anyOf", ()) for key in alt.get("required", ()) if not key.endswith("Ref")}
    return sorted({*ids, *job_spec["required"]})


def _document_client_spellings(components: dict[str, Any]) -> None:
    """What ``validation.canonical`` accepts besides the contract schemas: the Terraform provider's
    spellings (one of a pair, never both) and the localFile paths it sends, which are not stored."""
    for name in CONTRACT_SCHEMAS:
        body = components[name]
        for alias, field in validation.FIELD_ALIASES.items():
            body.setdefault("properties", {})[alias] = {
                "$ref": f"#/components/schemas/JobSpecFields/properties/{field}", "deprecated": True,
                "description": f"The Terraform provider's spelling of {field}; stored and answered as {field}."}
            body.setdefault("allOf", []).append({"not": {"required": [alias, field]}})
    for side, key in validation.CLIENT_PATHS.items():
        target = components["IntakeLocalFile" if side == "intakeSettings" else "OutputLocalFile"]
        target["properties"][key] = {"type": "string", "pattern": NO_NUL, "description": (
            "A path on the client's machine (the Terraform provider sends it; the SDK never does): accepted "
            "and not stored, so responses do not show it.")}


def _document_parameters(doc: dict[str, Any]) -> None:
    """Ids in paths are 24 hex digits; no string parameter holds NUL (the middleware answers 400)."""
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "path" and parameter["name"].endswith("_id") and "pattern" not in schema:
                    schema["pattern"] = ID_PATTERN
                parameter["schema"] = storable(schema)
            body = operation.get("requestBody", {}).get("content", {})
            for media_type, media in body.items():  # JSON only: CSV, model bytes and form parts are not parsed so
                if media_type == "application/json" and "$ref" not in media.get("schema", {"$ref": ""}):
                    media["schema"] = storable(media["schema"])


_API = "/api/v2/"
_DEFINITION = f"{_API}batchPredictionJobDefinitions/{{definition_id}}/"
_JOB = f"{_API}batchPredictions/{{job_id}}/"


def _link(path: str, method: str, *, description: str, path_id: str | None = None,
          body: dict[str, str] | None = None) -> dict[str, Any]:
    link: dict[str, Any] = {"operationRef": f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}",
                            "description": description}
    if path_id is not None:
        link["parameters"] = {path_id: "$response.body#/id"}
    if body is not None:
        link["requestBody"] = body
    return link


# OpenAPI links: which id in a response feeds which request (for readers, and for schemathesis'
# stateful tests, which follow them to build a deployment, then a definition on it, then run it).
LINKS: Final = {
    (f"{_API}deployments/", "post", "201"): {
        "CreateDefinition": _link(f"{_API}batchPredictionJobDefinitions/", "post", body={
            "deploymentId": "$response.body#/id"}, description="A job definition scoring with this deployment"),
        "StartJob": _link(f"{_API}batchPredictions/", "post", body={"deploymentId": "$response.body#/id"},
                          description="An ad-hoc job scoring with this deployment"),
    },
    (f"{_API}batchPredictionJobDefinitions/", "post", "202"): {
        "GetDefinition": _link(_DEFINITION, "get", path_id="definition_id", description="The new definition"),
        "UpdateDefinition": _link(_DEFINITION, "patch", path_id="definition_id", description="Change it"),
        "DeleteDefinition": _link(_DEFINITION, "delete", path_id="definition_id", description="Delete it"),
        "RunDefinition": _link(f"{_API}batchPredictions/fromJobDefinition/", "post", body={
            "jobDefinitionId": "$response.body#/id"}, description="Run it once"),
    },
    (_DEFINITION, "patch", "200"): {
        "GetDefinition": _link(_DEFINITION, "get", path_id="definition_id", description="The changed definition"),
        "RunDefinition": _link(f"{_API}batchPredictions/fromJobDefinition/", "post", body={
            "jobDefinitionId": "$response.body#/id"}, description="Run it once"),
    },
    **{(source, "post", "202"): {
        "GetJob": _link(_JOB, "get", path_id="job_id", description="The new job"),
        "AbortJob": _link(_JOB, "delete", path_id="job_id", description="Abort it"),
        "UploadData": _link(f"{_JOB}csvUpload/", "put", path_id="job_id", description="Its localFile data"),
        "RunAgain": _link(f"{_API}batchPredictions/fromExisting/", "post", body={
            "predictionJobId": "$response.body#/id"}, description="Run its spec again"),
    } for source in (f"{_API}batchPredictions/", f"{_API}batchPredictions/fromJobDefinition/",
                     f"{_API}batchPredictions/fromExisting/")},
}


def _document_links(doc: dict[str, Any]) -> None:
    for (path, method, status), links in LINKS.items():
        doc["paths"][path][method]["responses"][status]["links"] = links


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = doc.setdefault("components", {})
            components.setdefault("schemas", {}).update(contract_components())
            _document_parameters(doc)
            _document_links(doc)
            components["securitySchemes"] = {"apiToken": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "'Token <token>' or 'Bearer <token>'; needed when the service was started "
                               "with a token (--token-file or $RECONCILER_SERVICE_TOKEN)."}}
            doc["security"] = [{"apiToken": []}, {}]  # {} = optional: a loopback service may have no token
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
