"""Typed models of validated manifests. Pure.

The JSON Schemas are the one contract, so these models restate none of their rules: defaults
are read from the schemas' ``default`` keywords (:func:`fill_defaults`), the job spec stays a
dict in the API's own field names, and the models only give it a typed shape. A test checks
that every document the schemas accept builds a model that dumps back to the same data.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Literal

import jsonschema
import jsonschema_rs
from pydantic import BaseModel, ConfigDict, Field

from reconciler import schemas
from reconciler.specs import cron
from reconciler.specs.load import LoadedDocument

API_VERSION = "reconciler.io/v1alpha1"
KIND = "BatchPredictionJobDefinition"


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
        if isinstance(ref, str) and ref.endswith(schemas.SUFFIX):
            stack.append(schemas.get(ref.rsplit("/", 1)[-1][: -len(schemas.SUFFIX)]))
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
            compiled = jsonschema.Draft202012Validator(schema, registry=schemas.registry())
        else:  # the common case, {"properties": {"type": {"const": "s3"}}}: no registry needed
            compiled = jsonschema_rs.validator_for(schema)
        hit = (schema, compiled)
        _IF_VALIDATORS[id(schema)] = hit
    return bool(hit[1].is_valid(instance))


def fill_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy of ``instance`` with every ``default`` the schema declares made explicit."""
    if not isinstance(instance, dict):
        if isinstance(instance, list):
            return [fill_defaults(item, _items_schema(schema, instance)) for item in instance]
        return instance
    props: dict[str, list[dict[str, Any]]] = {}
    for sub in _applicable(schema, instance):
        for key, prop in sub.get("properties", {}).items():
            if isinstance(prop, dict):
                props.setdefault(key, []).append(prop)
    out = dict(instance)
    for key, candidates in props.items():
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
    return dict(fill_defaults(dict(job), schemas.get("job-spec")))


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str | None = None
    file: str | None = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Schedule(BaseModel):
    """The API's five lists, names turned into numbers, sorted; ``["*"]`` means every value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    minute: list[int | Literal["*"]]
    hour: list[int | Literal["*"]]
    dayOfMonth: list[int | Literal["*"]]
    month: list[int | Literal["*"]]
    dayOfWeek: list[int | Literal["*"]]

    @classmethod
    def from_manifest(cls, raw: dict[str, Any]) -> Schedule:
        lists = cron.cron_to_schedule(raw["cron"]) if "cron" in raw else cron.normalize_schedule(raw)
        return cls.model_validate(lists)

    def as_api(self) -> dict[str, list[int | str]]:
        return self.model_dump()  # type: ignore[return-value]


class DefinitionSpec(BaseModel):
    """``spec``: required fields carry no pydantic default; :func:`fill_defaults` supplies them from the schema."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    enabled: bool
    schedule: Schedule | None = None
    batchPredictionJob: dict[str, Any]
    previousNames: list[str]
    deletionPolicy: Literal["Delete", "Orphan"]
    preventDestroy: bool
    driftPolicy: Literal["Correct", "Report"]


class Source(BaseModel):
    model_config = ConfigDict(frozen=True)
    file: str
    line: int = 1
    col: int = 1
    index: int = 0


class Manifest(BaseModel):
    """One validated manifest. ``definition_name`` is the name the definition has in the API."""

    model_config = ConfigDict(extra="forbid")
    apiVersion: Literal["reconciler.io/v1alpha1"]
    kind: Literal["BatchPredictionJobDefinition"]
    metadata: Metadata
    spec: DefinitionSpec
    source: Source | None = Field(default=None, exclude=True)

    @property
    def definition_name(self) -> str:
        return self.spec.name or self.metadata.name

    @classmethod
    def from_data(cls, data: dict[str, Any], *, source: Source | None = None) -> Manifest:
        """Build from a schema-valid document: defaults filled, schedule normalized to numbers."""
        filled = fill_defaults(data, schemas.get("manifest"))
        spec = dict(filled["spec"])
        if spec.get("schedule") is not None:
            spec["schedule"] = Schedule.from_manifest(spec["schedule"])
        return cls.model_validate({**filled, "spec": spec, "source": source})

    @classmethod
    def from_document(cls, doc: LoadedDocument) -> Manifest:
        return cls.from_data(doc.data, source=Source(file=doc.file, line=doc.line, col=doc.col, index=doc.index))

    def to_data(self) -> dict[str, Any]:
        """Plain data in manifest form (schedule as lists), e.g. for export or the operator."""
        return self.model_dump(mode="json", exclude_none=True)
