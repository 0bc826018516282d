"""Names and values the rest of the program needs from the schemas, derived instead of restated.

Why: a second hand-written copy of an enum or of the write-only keys drifts from ``schemas/`` the
day a field is added. Everything here is read from the schemas once (cached) and is plain data:
``apiVersion`` and ``kind`` from the manifest's ``const``s, the enums of reconciler's own spec
fields, the keys the API never returns (``writeOnly``) and the ones only it sets (``readOnly`` in
``api-definition-response``).
"""

from __future__ import annotations

import functools
from typing import Any

from reconciler.contract.schemas import get, iter_subschemas

__all__ = ["api_version", "enum", "kind", "read_only_job_keys", "read_only_keys", "write_only_instance_keys"]


def _const(schema: str, field: str) -> str:
    return str(get(schema)["properties"][field]["const"])


@functools.cache
def api_version() -> str:
    """The manifest's ``apiVersion`` (``reconciler.io/v1alpha1``)."""
    return _const("manifest", "apiVersion")


@functools.cache
def kind() -> str:
    """The manifest's ``kind`` (``BatchPredictionJobDefinition``)."""
    return _const("manifest", "kind")


@functools.cache
def enum(schema: str, field: str) -> tuple[str, ...]:
    """The allowed values of a top-level field, e.g. ``enum("definition-spec", "deletionPolicy")``."""
    for sub in iter_subschemas(get(schema)):
        prop = sub.get("properties", {}).get(field)
        if isinstance(prop, dict) and isinstance(prop.get("enum"), list):
            return tuple(str(v) for v in prop["enum"])
    raise KeyError(f"{schema}.{field} has no enum")


def _flagged(properties: dict[str, Any], flag: str) -> frozenset[str]:
    return frozenset(k for k, v in properties.items() if isinstance(v, dict) and v.get(flag) is True)


@functools.cache
def read_only_keys() -> frozenset[str]:
    """Top-level definition fields only the server sets (``id``, ``created``, ...): never sent, never compared."""
    return _flagged(get("api-definition-response")["properties"], "readOnly")


@functools.cache
def read_only_job_keys() -> frozenset[str]:
    """Job-spec fields only the server sets (``redactedFields``)."""
    return _flagged(get("api-definition-response")["properties"]["batchPredictionJob"].get("properties", {}),
                    "readOnly")


@functools.cache
def write_only_instance_keys() -> frozenset[str]:
    """``predictionInstance`` keys the API takes but never returns (``apiKey``, ``datarobotKey``)."""
    found: set[str] = set()
    for sub in iter_subschemas(get("job-spec-fields")):
        instance = sub.get("properties", {}).get("predictionInstance")
        if isinstance(instance, dict):
            found |= _flagged(instance.get("properties", {}), "writeOnly")
    return frozenset(found)
