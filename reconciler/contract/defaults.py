"""The API's defaults, read from the schemas' ``default`` keywords and made explicit.

Why: the API fills defaults the request left out (``chunkSize: auto``, ``csvSettings``, ...). Both
sides of a diff are brought to the same explicit form, so a default never shows as a change; the
local service fills them the same way before it stores a definition. Conditional parts (an
intake's fields by its ``type``) are taken by evaluating the schemas' ``if`` clauses.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jsonschema
import jsonschema_rs

from reconciler.contract.export import copy_json
from reconciler.contract.schemas import SUFFIX, get, short_name
from reconciler.contract.validators import registry

__all__ = ["fill_defaults", "job_spec_defaults", "job_spec_without_defaults", "strip_defaults"]


_NO_DEFAULT: Any = object()


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


# schema id -> (the ``if`` node, its check): kept for the process (the schemas are cached, so
# the nodes live as long), and worked out once per node instead of once per definition
_IF_CHECKS: dict[int, tuple[Any, Callable[[Any], bool]]] = {}


def _matches(schema: Any, instance: Any) -> bool:
    """Whether an ``if`` holds. Every ``if`` of the contract is a discriminator (``{"properties":
    {"type": {"const": "s3"}}, "required": ["type"]}``, or an ``enum`` of strings, or a boolean
    ``const``: see :func:`_discriminator`), answered without a validator; any other shape goes to
    a validator compiled once per schema node."""
    hit = _IF_CHECKS.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = (schema, _if_check(schema))
        _IF_CHECKS[id(schema)] = hit
    return hit[1](instance)


def _if_check(schema: Any) -> Callable[[Any], bool]:
    discriminator = _discriminator(schema)
    if discriminator is not None:
        return functools.partial(_holds, discriminator)
    compiled: Any
    if "$ref" in json.dumps(schema):
        compiled = jsonschema.Draft202012Validator(schema, registry=registry())
    else:
        compiled = jsonschema_rs.validator_for(schema)
    return lambda instance: bool(compiled.is_valid(instance))


def _holds(discriminator: tuple[str, frozenset[str | bool] | None], instance: Any) -> bool:
    if not isinstance(instance, dict):
        return True  # properties and required do not apply to a non-object
    key, allowed = discriminator
    if allowed is None:  # only required: present, whatever the value
        return key in instance
    value = instance.get(key)
    # only strings and booleans can match (1 == True in Python, not in JSON Schema)
    return isinstance(value, _DISCRIMINATING) and value in allowed


_DISCRIMINATING = (str, bool)
# what a discriminator key holds when it is not a string or boolean: absent, or any other value
# (no const or enum matches it; a bare `required` sees it present)
_ABSENT: Any = object()
_OTHER: Any = object()


def _discriminator(schema: Any) -> tuple[str, frozenset[str | bool] | None] | None:
    """``(key, allowed values)`` when ``schema`` is exactly ``{"properties": {key: {"const": v}
    | {"enum": [v, ...]}}, "required": [key]}`` with string or boolean values; ``(key, None)``
    when it is exactly ``{"required": [key]}`` (the key present); else None."""
    if isinstance(schema, dict) and schema.keys() == {"required"}:
        required = schema["required"]
        if isinstance(required, list) and len(required) == 1 and isinstance(required[0], str):
            return (required[0], None)
        return None
    if not isinstance(schema, dict) or schema.keys() != {"properties", "required"}:
        return None
    props, required = schema["properties"], schema["required"]
    if not isinstance(props, dict) or len(props) != 1 or required != list(props):
        return None
    (key, rule), = props.items()
    if not isinstance(rule, dict) or len(rule) != 1:
        return None
    if "const" in rule:
        values = [rule["const"]]
    elif "enum" in rule and isinstance(rule["enum"], list):
        values = rule["enum"]
    else:
        return None
    return (key, frozenset(values)) if all(isinstance(v, _DISCRIMINATING) for v in values) else None


# Per-schema work done once, not once per definition (fill_defaults ran _applicable for every
# object of every definition: 234 ms a page of 1,000). What applies at a location depends only on
# the schema node and the outcome of the ``if`` clauses it can reach, so the answers are kept by
# (node, outcomes). Every entry holds its schema nodes, so an id is never reused while it is a
# key; the tables are bounded (cleared when full: they refill from the next definitions).
_MEMO_LIMIT = 4096
# the keys an ``if`` node's discriminators read: compared by value, and only required
_Keys = tuple[tuple[str, ...], tuple[str, ...]]
# schema id -> (schema, the ``if`` nodes it can reach, their discriminator keys or None)
_CONDITIONS: dict[int, tuple[Any, tuple[Any, ...], _Keys | None]] = {}
_PLANS: dict[tuple[Any, ...], tuple[Any, _Plan]] = {}
_ITEMS: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}
_ALL_OF: dict[tuple[int, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_SCALARS = (str, int, float, bool, type(None))


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    if len(table) >= _MEMO_LIMIT:
        table.clear()
    table[key] = value


def _conditions(schema: Any) -> tuple[tuple[Any, ...], _Keys | None]:
    """Every ``if`` node that :func:`_applicable` can reach from ``schema`` (down either branch),
    and, when all of them are discriminators, the keys they read: those whose string or boolean
    value they compare, and those they only require (their outcomes then depend on that alone; a
    required key's value, a cron text say, would only multiply the memo's entries)."""
    hit = _CONDITIONS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1], hit[2]
    found: list[Any] = []
    seen: set[int] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(SUFFIX):
            stack.append(get(short_name(ref)))
        stack.extend(node.get("allOf", []))
        if "if" in node:
            found.append(node["if"])
            stack.extend(branch for branch in (node.get("then"), node.get("else")) if branch is not None)
    conditions = tuple(found)
    discriminators = [_discriminator(condition) for condition in conditions]
    keys: _Keys | None = None
    if None not in discriminators:
        by_value = tuple(dict.fromkeys(d[0] for d in discriminators if d is not None and d[1] is not None))
        keys = (by_value, tuple(dict.fromkeys(d[0] for d in discriminators
                                              if d is not None and d[1] is None and d[0] not in by_value)))
    _remember(_CONDITIONS, id(schema), (schema, conditions, keys))
    return conditions, keys


def _outcomes(schema: Any, instance: Any) -> tuple[Any, ...]:
    """A key for what applies to ``instance`` at ``schema``: the node, and either what the
    discriminator keys hold (all conditions are discriminators: a compared key's string or boolean
    value, else absent or some other value; whether a required key is present) or each
    condition's outcome."""
    conditions, keys = _conditions(schema)
    if keys is not None:
        if not isinstance(instance, dict):
            return (id(schema), "all")  # every discriminator holds for a non-object
        by_value, by_presence = keys
        values = (instance.get(key, _ABSENT) for key in by_value)
        held = (value if value is _ABSENT or isinstance(value, _DISCRIMINATING) else _OTHER for value in values)
        if by_presence:
            return (id(schema), "values", *held, *(key in instance for key in by_presence))
        return (id(schema), "values", *held)
    return (id(schema), "outcomes", *(_matches(condition, instance) for condition in conditions))


def _all_of(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"allOf": candidates}``, the same object for the same nodes (so that it is memoized too)."""
    key = tuple(map(id, candidates))
    hit = _ALL_OF.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], candidates, strict=True)):
        return hit[1]
    combined = {"allOf": list(candidates)}
    _remember(_ALL_OF, key, (tuple(candidates), combined))
    return combined


class _Plan(NamedTuple):
    """What applies at one location, worked out once: each property's subschemas (``props``),
    the same as ``(key, default or _NO_DEFAULT, the key's schema)`` ``steps``, the keys with a
    default in order (``defaults``: key, value, is it a scalar) and each key's schema (``subs``)."""

    props: dict[str, list[dict[str, Any]]]
    steps: tuple[tuple[str, Any, dict[str, Any]], ...]
    defaults: tuple[tuple[str, Any, bool], ...]
    subs: dict[str, dict[str, Any]]


def _plan(schema: dict[str, Any], instance: dict[str, Any]) -> _Plan:
    """The :class:`_Plan` for ``instance`` at ``schema``. Shared between calls: callers only read it."""
    key = _outcomes(schema, instance)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    props: dict[str, list[dict[str, Any]]] = {}
    for sub in _applicable(schema, instance):
        for name, prop in sub.get("properties", {}).items():
            if isinstance(prop, dict):
                props.setdefault(name, []).append(prop)
    steps = []
    for name, candidates in props.items():
        default = next((prop["default"] for prop in candidates if "default" in prop), _NO_DEFAULT)
        steps.append((name, default, candidates[0] if len(candidates) == 1 else _all_of(candidates)))
    plan = _Plan(props=props, steps=tuple(steps),
                 defaults=tuple((name, default, isinstance(default, _SCALARS)) for name, default, _ in steps
                                if default is not _NO_DEFAULT),
                 subs={name: sub for name, _, sub in steps})
    _remember(_PLANS, key, (schema, plan))
    return plan


def _property_schemas(schema: dict[str, Any], instance: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each property's subschemas that apply to ``instance`` (refs, allOf members, taken branches)."""
    return _plan(schema, instance).props


def fill_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy of ``instance`` with every ``default`` the schema declares made explicit."""
    if not isinstance(instance, dict):
        if isinstance(instance, list):
            items = _items_schema(schema, instance)
            return [fill_defaults(item, items) for item in instance]
        return instance
    plan = _plan(schema, instance)
    out = dict(instance)
    # the values present first (walked in place: the keys keep their order), then the defaults of
    # the keys absent, in the schema's order: what one pass over the schema's properties gives
    subs = plan.subs
    for key, value in instance.items():
        if isinstance(value, (dict, list)) and key in subs:
            out[key] = fill_defaults(value, subs[key])
    for key, default, scalar in plan.defaults:
        if key not in out:
            # the schema's own defaults are JSON data: copy_json, not deepcopy (a fifth of filling
            # a manifest's defaults went to deepcopy's memo and dispatch)
            out[key] = default if scalar else copy_json(default)
    return out


def _items_schema(schema: dict[str, Any], instance: Any) -> dict[str, Any]:
    key = _outcomes(schema, instance)
    hit = _ITEMS.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    items = [sub["items"] for sub in _applicable(schema, instance) if isinstance(sub.get("items"), dict)]
    combined = {"allOf": items}
    _remember(_ITEMS, key, (schema, combined))
    return combined


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
    for key, default, sub in _plan(schema, instance).steps:
        if key not in out:
            continue
        if default is not _NO_DEFAULT and out[key] == default and type(out[key]) is type(default):
            del out[key]
        elif isinstance(out[key], dict):
            out[key] = strip_defaults(out[key], sub)
    return out


def job_spec_without_defaults(job: Mapping[str, Any], *, filled: bool = False) -> dict[str, Any]:
    """The job spec without the values the API would fill anyway; filling them again gives back
    exactly ``job_spec_defaults(job)`` (checked: where it would not, nothing is left out).
    ``filled``: ``job`` already has its defaults (a comparable form), so it is not filled again."""
    stripped = dict(strip_defaults(dict(job), get("job-spec")))
    if job_spec_defaults(stripped) != (dict(job) if filled else job_spec_defaults(job)):  # an if-branch moved
        return dict(job)
    return stripped
