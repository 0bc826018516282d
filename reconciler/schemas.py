"""The JSON Schemas in ``schemas/`` are the one contract: manifests, the API bodies the local
service accepts, and the CRD are all derived from them. This module finds them (source tree or
installed wheel), wires their ``$ref``s into one registry, and builds validators.

Two validators per schema: ``jsonschema`` (precise, every error with its path) and
``jsonschema_rs`` (compiled, only answers valid/invalid). Valid documents, the common case,
take the fast path; only invalid ones pay for precise messages.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE_URI = "https://reconciler.io/schemas/v1alpha1/"
SUFFIX = ".schema.json"


def schema_dir() -> Path:
    """``reconciler/_schemas`` in an installed wheel, ``schemas/`` beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schemas", here.parent / "schemas"):
        if (candidate / ("manifest" + SUFFIX)).is_file():
            return candidate
    raise FileNotFoundError("reconciler's JSON Schemas are missing (looked in reconciler/_schemas and schemas/)")


@functools.cache
def all_schemas() -> dict[str, dict[str, Any]]:
    """Every schema by short name (``manifest``, ``intake-s3``, ...)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(schema_dir().glob("*" + SUFFIX)):
        out[path.name[: -len(SUFFIX)]] = json.loads(path.read_text(encoding="utf-8"))
    return out


def names() -> list[str]:
    return sorted(all_schemas())


def get(name: str) -> dict[str, Any]:
    try:
        return all_schemas()[name]
    except KeyError:
        raise KeyError(f"no schema named {name!r}; known: {', '.join(names())}") from None


def uri(name: str) -> str:
    return BASE_URI + name + SUFFIX


@functools.cache
def registry() -> Registry[Any]:
    # Without "$schema": jsonschema picks the validator class of a $ref's target by its "$schema",
    # which would drop the ECMA pattern keyword of :func:`validator`; every schema here is 2020-12.
    resources = [(doc["$id"], Resource.from_contents(_without_dialect(doc), default_specification=DRAFT202012))
                 for doc in all_schemas().values()]
    return Registry().with_resources(resources)


def _without_dialect(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key != "$schema"}


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """Precise validator for one schema, with format checks on and ECMA-262's ``$``."""
    base = jsonschema.validators.validator_for(get(name))
    cls: Any = jsonschema.validators.extend(base, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
    made: jsonschema.protocols.Validator = cls(_without_dialect(get(name)), registry=registry(),
                                               format_checker=base.FORMAT_CHECKER)
    return made


@functools.cache
def python_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema (ECMA-262) pattern as Python reads it: ``$`` outside a character class becomes
    ``\\Z``. Python's ``$`` also matches before a final newline, so ``^[^\\n]*$`` would accept
    ``"name\\n"`` where the compiled validator (jsonschema-rs), editors and check-jsonschema refuse it."""
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append("\\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not python_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _short(ref_uri: str) -> str:
    tail = ref_uri.rsplit("/", 1)[-1]
    return tail[: -len(SUFFIX)] if tail.endswith(SUFFIX) else tail


def bundle(name: str) -> dict[str, Any]:
    """One self-contained schema: every ``$ref``'d schema inlined under ``$defs``.

    Editors (yaml-language-server) and the compiled validator get a single document with no
    network look-ups; ``$id``s of embedded parts are dropped so refs stay local.
    """
    needed: dict[str, dict[str, Any]] = {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.endswith(SUFFIX):
                    target = _short(value)
                    if target not in needed:
                        needed[target] = {}
                        needed[target] = rewrite({k: v for k, v in get(target).items() if k not in ("$id", "$schema")})
                    out[key] = f"#/$defs/{target}"
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    root: dict[str, Any] = rewrite(copy.deepcopy(get(name)))
    if needed:
        root["$defs"] = {**root.get("$defs", {}), **dict(sorted(needed.items()))}
    return root


@functools.cache
def fast_validator(name: str) -> Any:
    """Compiled validator (jsonschema-rs) over the bundled schema; answers valid or not, fast."""
    return jsonschema_rs.validator_for(bundle(name), validate_formats=True)


def iter_subschemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The schema and what it pulls in by ``$ref``/``allOf`` at the same instance location."""
    seen: set[int] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if id(node) in seen or not isinstance(node, dict):
            continue
        seen.add(id(node))
        yield node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(SUFFIX):
            stack.append(get(_short(ref)))
        for sub in node.get("allOf", []):
            stack.append(sub)
        for key in ("then", "else"):
            if isinstance(node.get(key), dict):
                stack.append(node[key])


def known_keys(schema: dict[str, Any]) -> set[str]:
    """Property names a schema (with its refs) knows at one location: for "did you mean" hints."""
    keys: set[str] = set()
    for sub in iter_subschemas(schema):
        keys.update(sub.get("properties", {}))
    return keys
