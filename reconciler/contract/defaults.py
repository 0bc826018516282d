"""The API's defaults, read from the schemas' ``default`` keywords and made explicit.

Why: the API fills defaults the request left out (``chunkSize: auto``, ``csvSettings``, ...). Both
sides of a diff are brought to the same explicit form, so a default never shows as a change; the
local service fills them the same way before it stores a definition. Conditional parts (an
intake's fields by its ``type``) are taken by evaluating the schemas' ``if`` clauses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema_rs

from reconciler.contract.schemas import SUFFIX, get, short_name
from reconciler.contract.validators import registry

__all__ = ["fill_defaults", "job_spec_defaults", "job_spec_without_defaults", "strip_defaults"]


def _applicable(schema: Any, instance: Any) -> list[dict[str, Any]]:
    """Subschemas that apply at one location: refs, allOf members, and the taken if/then branch."""
    out: list[dict[str, Any]] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        out.append(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(SUFFIX):
            stack.append(get(short_name(ref)))
        stack.extend(node.get("allOf", []))
        if "if" in node:
            taken = _matches(node["if"], instance)
            branch = node.get("then") if taken else node.get("else")
            if branch is not None:
                stack.append(branch)
    return out


_IF_VALIDATORS: dict[int, tuple[Any, Any]] = {}


def _matches(schema: Any, instance: Any) -> bool:
    """Whether an ``if`` holds. Validators are compiled once per schema node (the schemas are
    cached, so nodes live as long as the process): building one per call cost ~10 ms a manifest."""
    hit = _IF_VALIDATORS.get(id(schema))
    if hit is None or hit[0] is not schema:
        compiled: Any
        if "$ref" in json.dumps(schema):
            compiled = jsonschema.Draft202012Validator(schema, registry=registry())
        else:  # the common case, {"properties": {"type": {"const": "s3"}}}: no registry needed
            compiled = jsonschema_rs.validator_for(schema)
        hit = (schema, compiled)
        _IF_VALIDATORS[id(schema)] = hit
    return bool(hit[1].is_valid(instance))


def _property_schemas(schema: dict[str, Any], instance: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each property's subschemas that apply to ``instance`` (refs, allOf members, taken branches)."""
    props: dict[str, list[dict[str, Any]]] = {}
    for sub in _applicable(schema, instance):
        for key, prop in sub.get("properties", {}).items():
            if isinstance(prop, dict):
                props.setdefault(key, []).append(prop)
    return props


def fill_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy of ``instance`` with every ``default`` the schema declares made explicit."""
    if not isinstance(instance, dict):
        if isinstance(instance, list):
            return [fill_defaults(item, _items_schema(schema, instance)) for item in instance]
        return instance
    out = dict(instance)
    for key, candidates in _property_schemas(schema, instance).items():
        if key not in out:
            for prop in candidates:
                if "default" in prop:
                    out[key] = copy.deepcopy(prop["default"])
                    break
        elif isinstance(out[key], (dict, list)):
            out[key] = fill_defaults(out[key], candidates[0] if len(candidates) == 1 else {"allOf": candidates})
    return out


def _items_schema(schema: dict[str, Any], instance: Any) -> dict[str, Any]:
    items = [sub["items"] for sub in _applicable(schema, instance) if isinstance(sub.get("items"), dict)]
    return {"allOf": items}


def job_spec_defaults(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job spec with the API's defaults explicit, so that a default never shows as a change."""
    return dict(fill_defaults(dict(job), get("job-spec")))


def strip_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """``instance`` without the values :func:`fill_defaults` would put back: the inverse step, for
    people (a create shows what the manifest sets; ``export`` writes no default). A key whose value
    equals its default goes; an object that differs is walked. Lists are kept whole."""
    if not isinstance(instance, dict):
        return instance
    out = dict(instance)
    for key, candidates in _property_schemas(schema, instance).items():
        if key not in out:
            continue
        default = next((prop["default"] for prop in candidates if "default" in prop), _NO_DEFAULT)
        if default is not _NO_DEFAULT and out[key] == default and type(out[key]) is type(default):
            del out[key]
        elif isinstance(out[key], dict):
            out[key] = strip_defaults(out[key], candidates[0] if len(candidates) == 1 else {"allOf": candidates})
    return out


_NO_DEFAULT: Any = object()


def job_spec_without_defaults(job: Mapping[str, Any], *, filled: bool = False) -> dict[str, Any]:
    """The job spec without the values the API would fill anyway; filling them again gives back
    exactly ``job_spec_defaults(job)`` (checked: where it would not, nothing is left out).
    ``filled``: ``job`` already has its defaults (a comparable form), so it is not filled again."""
    stripped = dict(strip_defaults(dict(job), get("job-spec")))
    if job_spec_defaults(stripped) != (dict(job) if filled else job_spec_defaults(job)):  # an if-branch moved
        return dict(job)
    return stripped
