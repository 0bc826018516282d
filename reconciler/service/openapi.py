"""The OpenAPI document: FastAPI's, plus the project's JSON Schemas for request bodies.

Request bodies are documented with the very schema that validates them (``api-definition``,
bundled), so ``/docs`` and schemathesis see the real contract. The bundle's ``#/$defs/...`` refs
are moved under ``#/components/schemas/`` where OpenAPI 3.1 resolves them.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from reconciler import schemas

_COMPONENT_PREFIX = "ApiDefinition_"


def body_schema(component: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is the named component."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}}}}


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + _COMPONENT_PREFIX + value[len("#/$defs/"):]
            elif key in ("errorMessage", "$schema", "$id"):
                continue  # our own annotation / bundle metadata, meaningless inside OpenAPI
            else:
                out[key] = _rewrite(value)
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def definition_components() -> dict[str, Any]:
    bundled = copy.deepcopy(schemas.bundle("api-definition"))
    defs = bundled.pop("$defs", {})
    out = {"ApiDefinition": _rewrite(bundled)}
    out.update({_COMPONENT_PREFIX + name: _rewrite(schema) for name, schema in defs.items()})
    return out


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = doc.setdefault("components", {})
            components.setdefault("schemas", {}).update(definition_components())
            components["securitySchemes"] = {"apiToken": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "'Token <token>' or 'Bearer <token>'; needed when the service was started "
                               "with a token (--token-file or $RECONCILER_SERVICE_TOKEN)."}}
            doc["security"] = [{"apiToken": []}, {}]  # {} = optional: a loopback service may have no token
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
