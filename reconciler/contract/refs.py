"""References by name (``deploymentRef``, ``credentialRef``, ``dataStoreRef``): where a job spec
may hold them and which id each stands for. Derived from ``schemas/``: every property that
``$ref``\\ s ``resource-ref.schema.json`` is a reference, and its id is the property beside it with
``Ref`` replaced by ``Id``. Manifests name; the API takes ids: the session resolves references at
plan time, and the local service refuses a request that still holds one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from reconciler.contract import schemas

__all__ = ["KINDS", "RefField", "find_refs", "ref_fields"]

REF_SCHEMA: Final = "resource-ref.schema.json"
# kind -> (the API's collection, the field of a listed item that holds its name)
KINDS: Final = {"deployment": ("deployments/", "label"), "credential": ("credentials/", "name"),
                "dataStore": ("externalDataStores/", "canonicalName")}
_KIND_OF_ID: Final = {"deploymentId": "deployment", "credentialId": "credential", "dataStoreId": "dataStore"}
SIDES: Final = ("intakeSettings", "outputSettings")


@dataclass(frozen=True)
class RefField:
    """One reference key (``credentialRef``), the id key it stands for and the kind it names."""

    ref: str
    id: str
    kind: str


@cache
def ref_fields() -> dict[str, tuple[RefField, ...]]:
    """``{"": top-level job fields, "intakeSettings": ..., "outputSettings": ...}``: the reference
    keys the schemas declare at each place (any adapter)."""
    found: dict[str, dict[str, RefField]] = {"": {}, **{side: {} for side in SIDES}}
    for name, schema in schemas.all_schemas().items():
        place = ("" if name == "job-spec-fields" else "intakeSettings" if name.startswith("intake-")
                 else "outputSettings" if name.startswith("output-") else None)
        if place is None:
            continue
        for key, prop in (schema.get("properties") or {}).items():
            if isinstance(prop, dict) and str(prop.get("$ref", "")).endswith(REF_SCHEMA):
                id_key = key.removesuffix("Ref") + "Id"
                found[place][key] = RefField(ref=key, id=id_key, kind=_KIND_OF_ID[id_key])
    return {place: tuple(sorted(fields.values(), key=lambda f: f.ref)) for place, fields in found.items()}


def find_refs(job: Mapping[str, Any]) -> Iterator[tuple[str, RefField, Any]]:
    """Every reference in a job spec as ``(place, field, value)``; place "" is the job itself."""
    fields = ref_fields()
    for place, declared in fields.items():
        node = job if not place else job.get(place)
        if not isinstance(node, Mapping):
            continue
        for field in declared:
            if field.ref in node:
                yield place, field, node[field.ref]
