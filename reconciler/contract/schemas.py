"""The JSON Schemas in ``schemas/`` as files: found (source tree or installed wheel), read once,
bundled for editors and the compiled validator, and walked for "did you mean" hints. Pure JSON:
no validator library is imported here (:mod:`reconciler.contract.validators` builds those), so
the engine can read defaults and keys from the contract without loading jsonschema.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["BASE_URI", "SUFFIX", "all_schemas", "bundle", "get", "iter_subschemas", "known_keys", "names",
           "schema_dir", "short_name", "uri"]

BASE_URI = "https://reconciler.io/schemas/v1alpha1/"
SUFFIX = ".schema.json"


def schema_dir() -> Path:
    """``reconciler/_schemas`` in an installed wheel, ``schemas/`` beside the package in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_schemas", package.parent / "schemas"):
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


def short_name(ref_uri: str) -> str:
    """``https://.../intake-s3.schema.json`` (or ``intake-s3.schema.json``) -> ``intake-s3``."""
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
                    target = short_name(value)
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
            stack.append(get(short_name(ref)))
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
