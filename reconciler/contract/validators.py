"""Validators over the contract's schemas: ``jsonschema`` (precise, every error with its path) and
``jsonschema_rs`` (compiled, only answers valid/invalid). Valid documents, the common case, take
the fast path; only invalid ones pay for precise messages.

Patterns are read as JSON Schema reads them (ECMA-262), not as Python does: see
:func:`python_regex`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reconciler.contract.schemas import all_schemas, bundle, get

__all__ = ["fast_validator", "python_regex", "registry", "validator"]


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


@functools.cache
def fast_validator(name: str) -> Any:
    """Compiled validator (jsonschema-rs) over the bundled schema; answers valid or not, fast."""
    return jsonschema_rs.validator_for(bundle(name), validate_formats=True)


