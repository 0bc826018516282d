"""The CustomResourceDefinition, generated from ``schemas/``. Pure.

The JSON Schemas stay the one contract; the CRD is a projection of them onto what a Kubernetes
1.20 *structural* schema can say: refs inlined; ``const`` as a one-value ``enum``; ``allOf`` and
the branches of ``if/then/else`` merged into one object (the union of their properties, so the
``type``-discriminated intake/output settings become one object whose ``type`` is an enum);
``anyOf``/``oneOf`` of a string and an integer as ``x-kubernetes-int-or-string``; and everything
Kubernetes does not know (``not``, ``contains``, ``dependentRequired``, ``uniqueItems``,
``propertyNames``, ``errorMessage``, ``x-unknownKeys``, ...) dropped.

Two choices are deliberate. No ``default`` is emitted: a union of adapters would otherwise stamp
one adapter's default onto another, and the operator fills defaults from the schemas anyway.
Objects in ``spec`` keep unknown fields (``x-kubernetes-preserve-unknown-fields``) instead of
letting the API server prune them silently, so that the operator's full validation can name a
misspelt key with a did-you-mean hint in ``status``. The API server thus catches types and
shapes at ``kubectl apply`` time; the operator catches the rest and reports it as Invalid.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from reconciler.contract import keys, schemas

# group, version and kind are the manifest's own (its apiVersion and kind consts): one file is both
GROUP, _, VERSION = keys.api_version().partition("/")
KIND = keys.kind()
PLURAL = "batchpredictionjobdefinitions"
SINGULAR = "batchpredictionjobdefinition"
SHORT_NAMES = ("bpjd",)
CRD_NAME = f"{PLURAL}.{GROUP}"

# Keywords copied as they are (after their values are projected where they hold schemas).
_VALUE_KEYWORDS = ("description", "pattern", "minLength", "maxLength", "minimum", "maximum",
                   "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
                   "minProperties", "maxProperties")
_FORMATS = frozenset({"date-time", "uri", "date"})

Schema = dict[str, Any]


def _resolve(node: Schema) -> Schema:
    """``node`` with a sibling-file ``$ref`` replaced by ``allOf: [target, rest]``."""
    ref = node.get("$ref")
    if not (isinstance(ref, str) and ref.endswith(schemas.SUFFIX)):
        return node
    target = schemas.get(ref.rsplit("/", 1)[-1][: -len(schemas.SUFFIX)])
    rest = {k: v for k, v in node.items() if k != "$ref"}
    return {"allOf": [rest, target]}  # the referring node first: its description wins


def _flatten(node: Schema, *, conditional: bool = False) -> list[tuple[Schema, bool]]:
    """Every subschema that applies at this location, with whether it applies only sometimes.

    ``allOf`` members apply always; ``then``/``else`` branches only under their condition, so
    their ``required`` lists must not become unconditional.
    """
    node = _resolve(node)
    out = [(node, conditional)]
    for member in node.get("allOf", []):
        out.extend(_flatten(member, conditional=conditional))
    for key in ("then", "else"):
        if isinstance(node.get(key), dict):
            out.extend(_flatten(node[key], conditional=True))
    return out


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _types(node: Schema) -> set[str]:
    """The JSON types a (flattened) schema admits, read from type/const/enum and alternatives."""
    found: set[str] = set()
    for sub, _ in _flatten(node):
        kind = sub.get("type")
        if isinstance(kind, str):
            found.add(kind)
        elif isinstance(kind, list):
            found.update(kind)
        if "const" in sub:
            found.add(_json_type_of(sub["const"]))
        for value in sub.get("enum", []):
            found.add(_json_type_of(value))
        for key in ("anyOf", "oneOf"):
            for alt in sub.get(key, []):
                found.update(_types(alt))
    return found


def project(node: Schema) -> Schema:
    """One structural CRD schema node from one JSON Schema node (refs and branches merged)."""
    parts = _flatten(node)
    types = _types(node)
    # A node's own ``type`` wins over what its alternatives admit: {type: string, anyOf: [...]}.
    declared: set[str] = set()
    for sub, _ in parts:
        kind = sub.get("type")
        if isinstance(kind, str):
            declared.add(kind)
        elif isinstance(kind, list):
            declared.update(kind)
    if declared:
        types = declared
    out: Schema = {}
    nullable = "null" in types
    types.discard("null")
    if types == {"integer", "number"}:
        types = {"number"}
    if types == {"integer", "string"}:
        out["x-kubernetes-int-or-string"] = True
    elif len(types) == 1:
        out["type"] = next(iter(types))
    elif types:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if nullable:
        out["nullable"] = True
    kind = out.get("type")

    descriptions = [sub["description"] for sub, _ in parts if "description" in sub]
    if descriptions:
        out["description"] = descriptions[0]
    for keyword in _VALUE_KEYWORDS[1:]:
        value = _agreed(parts, keyword)
        if value is not None and kind is not None:
            out[keyword] = value
    fmt = _agreed(parts, "format")
    if kind == "string" and fmt in _FORMATS:
        out["format"] = fmt

    enum = _enum(parts, kind)
    if enum is not None:
        out["enum"] = enum

    if kind == "object":
        _project_object(parts, out)
    elif kind == "array":
        items = [sub["items"] for sub, _ in parts if isinstance(sub.get("items"), dict)]
        out["items"] = project({"allOf": items}) if items else {"x-kubernetes-preserve-unknown-fields": True}
    return out


def _shaping(parts: list[tuple[Schema, bool]], keyword: str) -> list[Schema]:
    """The parts that say something about the value here (not mere descriptions or wrappers)."""
    return [sub for sub, _ in parts if keyword in sub or any(k in sub for k in ("type", "const", "enum"))]


def _agreed(parts: list[tuple[Schema, bool]], keyword: str) -> Any:
    """A constraint kept only when every shaping part states it alike: a union must not narrow
    one adapter's field by another adapter's rule."""
    shaping = _shaping(parts, keyword)
    if not shaping or any(keyword not in sub for sub in shaping):
        return None
    first = shaping[0][keyword]
    return first if all(sub[keyword] == first for sub in shaping) else None


def _enum(parts: list[tuple[Schema, bool]], kind: str | None) -> list[Any] | None:
    """The allowed values when every alternative at this location lists them, else none.

    Alternatives of a discriminator (``type: {const: s3}`` in each adapter) add up to one enum;
    a location where any part admits more than a fixed list gets no enum at all.
    """
    if kind not in ("string", "integer", "number", "boolean"):
        return None
    lists: list[list[Any]] = []
    for sub in _shaping(parts, "enum"):
        if "const" in sub:
            lists.append([sub["const"]])
        elif "enum" in sub:
            lists.append(list(sub["enum"]))
        else:
            return None  # a part admits any value of the type
    if not lists:
        return None
    merged: list[Any] = []
    for values in lists:
        for value in values:
            if value not in merged:
                merged.append(value)
    return merged


def _project_object(parts: list[tuple[Schema, bool]], out: Schema) -> None:
    props: dict[str, list[Schema]] = {}
    required: list[str] = []
    extra: list[Schema] = []
    for sub, conditional in parts:
        for key, value in sub.get("properties", {}).items():
            if isinstance(value, dict):
                props.setdefault(key, []).append(value)
        if not conditional:
            for key in sub.get("required", []):
                if key not in required:
                    required.append(key)
        if isinstance(sub.get("additionalProperties"), dict):
            extra.append(sub["additionalProperties"])
    if props:
        out["properties"] = {key: project({"allOf": found}) for key, found in props.items()}
        # Unknown keys reach the operator, whose validation names them; see the module docstring.
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif extra:
        out["additionalProperties"] = project({"allOf": extra})
    else:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if required:
        out["required"] = required


def _status_schema() -> Schema:
    """What the operator writes; declared, so that ``kubectl explain`` shows it."""
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string",
                     "description": "Ready, Synced, Suspended, Conflict or PolicyWarning."},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string", "description": "One CamelCase word, e.g. Synced, Invalid, ApiError."},
            "message": {"type": "string", "description": "Human-readable detail; the API's error text on failure."},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64"},
        },
    }
    return {
        "type": "object",
        "description": "Written by the operator only.",
        "properties": {
            "definitionId": {"type": "string", "description": "Id of the live definition this resource manages."},
            "definitionName": {"type": "string", "description": "Name of the live definition in the API."},
            "observedGeneration": {"type": "integer", "format": "int64",
                                   "description": "metadata.generation last reconciled."},
            "lastSyncTime": {"type": "string", "format": "date-time",
                             "description": "When the live definition last matched the spec."},
            "nextScheduledRunTime": {"type": "string", "description": "Next planned run, from the API."},
            "lastRunTime": {"type": "string", "description": "Start of the latest job from this definition, from the API."},
            "drift": {"type": "array", "items": {"type": "string"},
                      "description": "Fields that differ from the spec (driftPolicy: Report, or before a correction)."},
            "conditions": {"type": "array", "items": condition,
                           "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        },
    }


def open_api_schema() -> Schema:
    """The whole object's schema: envelope, projected spec, operator-owned status."""
    manifest = schemas.get("manifest")
    name_rule = manifest["properties"]["metadata"]["properties"]["name"]
    return {
        "type": "object",
        "description": manifest.get("description", ""),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "properties": {"name": {
                "type": "string", "maxLength": name_rule["maxLength"], "pattern": name_rule["pattern"]}}},
            "spec": project(copy.deepcopy(manifest["properties"]["spec"])),
            "status": _status_schema(),
        },
    }


def _condition_column(kind: str) -> dict[str, Any]:
    return {"name": kind, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{kind}")].status'}


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object (apiextensions.k8s.io/v1)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "reconciler"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": SINGULAR, "kind": KIND, "listKind": KIND + "List",
                      "shortNames": list(SHORT_NAMES)},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": open_api_schema()},
                "additionalPrinterColumns": [
                    {"name": "Definition ID", "type": "string", "jsonPath": ".status.definitionId"},
                    {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
                    _condition_column("Ready"),
                    _condition_column("Synced"),
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    {"name": "Last run", "type": "string", "jsonPath": ".status.lastRunTime"},
                ],
            }],
        },
    }


def _peering_crd(*, kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
            }],
        },
    }


def peering_crds() -> list[dict[str, Any]]:
    """kopf's peering CRDs: operators record keep-alives in them, and a lower-priority replica pauses."""
    return [_peering_crd(kind="KopfPeering", plural="kopfpeerings", scope="Namespaced"),
            _peering_crd(kind="ClusterKopfPeering", plural="clusterkopfpeerings", scope="Cluster")]


HEADER = "# Generated by `reconciler crd` from schemas/*.json. Do not edit; regenerate.\n"
CHART_HEADER = ("# Generated by `reconciler crd --chart` from schemas/*.json. Do not edit; regenerate with\n"
                "#   reconciler crd --chart > charts/reconciler/templates/crd.yaml\n")


def _dump(objects: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False, default_flow_style=False, width=120) for o in objects)


def crd_yaml(*, peering: bool = False) -> str:
    """The CRD (and, with ``peering``, kopf's peering CRDs) as plain YAML for ``kubectl apply -f``."""
    return HEADER + _dump([crd(), *(peering_crds() if peering else [])])


def chart_template() -> str:
    """``charts/reconciler/templates/crd.yaml``: the same objects behind the chart's switches.

    The CRD carries ``helm.sh/resource-policy: keep`` so that uninstalling the chart never
    deletes every custom resource with it. A test fails when this file drifts from the schemas.
    """
    ours = crd()
    ours["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
    return (CHART_HEADER
            + "{{- if .Values.crd.install }}\n" + _dump([ours]) + "{{- end }}\n"
            + "{{- if and .Values.operator.peering.enabled .Values.operator.peering.installCRDs }}\n---\n"
            + _dump(peering_crds()) + "{{- end }}\n")
