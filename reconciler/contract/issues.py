"""What a schema violation means, in words, at a place: the :class:`Issue` every part reports.

Why here, in the contract: the same explanation serves a manifest file (``reconciler validate``,
positions from the YAML loader), a custom resource (the operator) and an API request body (the
local service, no positions). Each keyword a schema uses gets a message saying what was expected
and what was found, and a hint where one helps ("did you mean `deploymentId`?", "write true").

A located document is anything with ``file``, ``data``, position tables and ``mark`` (the
:class:`Located` protocol): :class:`reconciler.specs.load.LoadedDocument` is one, and
:func:`check_instance` wraps plain data in one whose every position is 1:1.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import jsonschema

from reconciler.contract import keys, schemas
from reconciler.contract.validators import validator
from reconciler.display import printable

__all__ = ["Issue", "Located", "Mark", "Path_", "Severity", "Unlocated", "check_instance", "closest_key",
           "describe", "dotted", "issue_at", "schema_issues", "snake_to_camel", "suggest_key"]

Severity = Literal["error", "warning"]
Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """1-based line and column; ``raw`` keeps a plain scalar's text (YAML may read ``no`` as false)."""

    line: int
    col: int
    raw: str | None = None
    quoted: bool = False
    block: bool = False  # a literal (|) or folded (>) scalar: its text starts on the next line


@dataclass(frozen=True, slots=True)
class Issue:
    file: str
    line: int
    col: int
    field: str
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def format(self) -> str:
        """``file:line:col: field: message``, then the hint on its own line; each line printable
        (a key or value quoted in a message cannot break the line: :mod:`reconciler.display`)."""
        where = f"{self.file}:{self.line}:{self.col}: "
        what = f"{self.field}: " if self.field else ""
        tag = "warning: " if self.severity == "warning" else ""
        text = printable(f"{where}{tag}{what}{self.message}")
        if self.hint:
            text += f"\n    hint: {printable(self.hint)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.col, "field": self.field,
                "message": self.message, "hint": self.hint, "severity": self.severity}




class Located(Protocol):
    """A document with positions: where each value and key of ``data`` stands in its file."""

    @property
    def file(self) -> str: ...

    @property
    def data(self) -> Any: ...

    @property
    def values(self) -> Mapping[Path_, Mark]: ...

    def mark(self, path: Path_, *, key: bool = False) -> Mark: ...


@dataclass(frozen=True, slots=True)
class Unlocated:
    """Plain data that came from no file (an API request body): every position is 1:1."""

    file: str
    data: Any
    values: Mapping[Path_, Mark] = field(default_factory=dict)

    def mark(self, path: Path_, *, key: bool = False) -> Mark:
        return Mark(1, 1)


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def describe(value: Any) -> str:
    """A value as the user wrote it, with its JSON type when that is the surprise."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)  # pragma: no cover


# YAML 1.1's other booleans: text in YAML 1.2 (and so in the loader), named in the hint
_YAML11_BOOLEANS = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def closest_key(key: str, known: Iterable[str]) -> str | None:
    """The known key ``key`` most likely meant (snake_case, case or spelling slip), if any."""
    known = sorted(known)
    if "_" in key and snake_to_camel(key) in known:
        return snake_to_camel(key)
    lowered = {k.lower(): k for k in known}
    if key.lower() in lowered:
        return lowered[key.lower()]
    return _close(key, known)


def _close(key: str, known: list[str]) -> str | None:
    """A spelling slip; a snake_case key is compared in camelCase too, a little more loosely."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close and "_" in key:
        close = difflib.get_close_matches(snake_to_camel(key), known, n=1, cutoff=0.5)
    return close[0] if close else None


def _set_by_the_api(key: str) -> bool:
    """Keys the API sets and returns (the definition's readOnly fields, a job's ``links`` and
    ``status``): pasted from an API response into a manifest, they get a hint of their own instead
    of a far-fetched "did you mean"."""
    return key in keys.read_only_keys() or key in keys.read_only_job_keys() or key in ("links", "status")


def suggest_key(key: str, known: Iterable[str]) -> str | None:
    known = sorted(known)
    if not known:
        return None
    if "_" in key and snake_to_camel(key) in known:
        return f"did you mean `{snake_to_camel(key)}`? Fields use the API's camelCase names"
    lowered = {k.lower(): k for k in known}
    if key.lower() in lowered:
        return f"did you mean `{lowered[key.lower()]}`? Field names are case-sensitive"
    close = _close(key, known)
    if close:
        return f"did you mean `{close}`?"
    if _set_by_the_api(key):
        return f"remove it: the API sets '{key}' and returns it, a manifest cannot set it"
    return "allowed here: " + ", ".join(known)


def _custom(error: jsonschema.ValidationError, keyword: str) -> str | None:
    schema = error.schema
    if isinstance(schema, dict):
        messages = schema.get("errorMessage")
        if isinstance(messages, dict) and isinstance(messages.get(keyword), str):
            return str(messages[keyword])
    return None


def _range_text(schema: dict[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    kind = "an integer" if schema.get("type") == "integer" else "a number"
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} >= {low}"
    return f"{kind} <= {high}"


def _type_hint(doc: Located, path: Path_, value: Any, wanted: list[str]) -> str | None:
    """Why YAML produced the wrong type, when that is the likely story."""
    mark = doc.values.get(path)
    if "boolean" in wanted and isinstance(value, str) and value.lower() in _YAML11_BOOLEANS and not (
            mark and mark.quoted):
        word = "true" if _YAML11_BOOLEANS[value.lower()] else "false"
        return (f"write {word}: YAML 1.2, which editors and check-jsonschema follow, reads {value!r} as text, "
                "not a boolean")
    if "string" in wanted and mark and mark.raw is not None and not isinstance(value, str):
        return f"YAML read {mark.raw!r} as {describe(value)}; quote it (\"{mark.raw}\") to keep it a string"
    if isinstance(value, str) and mark and mark.quoted:
        scalar: bool | float | None = (
            {"true": True, "false": False}.get(value.strip().lower()) if "boolean" in wanted else None)
        if scalar is None and {"integer", "number"} & set(wanted):
            try:
                scalar = int(value) if "integer" in wanted else float(value)
            except ValueError:
                scalar = None
        if scalar is not None:
            return f"remove the quotes: {value!r} in quotes is a string"
    if "array" in wanted and not isinstance(value, (list, dict)):
        written = mark.raw if mark and mark.raw is not None else json.dumps(value)
        return f"a single value is written as a one-element list: [{written}]"
    return None


def schema_issues(doc: Located, *, schema_name: str = "manifest", base: Path_ = ()) -> list[Issue]:
    """Every schema violation of ``doc.data`` (or of the part at ``base``), located and explained."""
    instance: Any = doc.data
    for part in base:
        instance = instance[part]
    errors = list(validator(schema_name).iter_errors(instance))
    # A value of the wrong type fails every other rule at its place too (an if/then that only
    # looks at mappings holds vacuously for a string): report the type alone.
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    errors = [e for e in errors if e.validator == "type" or tuple(e.absolute_path) not in wrong_type]
    # `DeploymentId` is reported as unknown with "did you mean `deploymentId`": the missing
    # `deploymentId` is the same mistake, so it is not reported again.
    meant: set[tuple[Path_, str]] = set()
    for error in errors:
        if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
            known = schemas.known_keys(error.schema if isinstance(error.schema, dict) else {})
            for extra in error.instance:
                if extra not in known and (guess := closest_key(extra, known)) is not None:
                    meant.add((tuple(error.absolute_path), guess))
    issues: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        for issue in _explain(error, doc, base, meant=meant):
            key = (issue.field, issue.message)
            if key not in seen:
                seen.add(key)
                issues.append(issue)
    return issues


def issue_at(doc: Located, path: Path_, message: str, hint: str | None = None, *,
           key: bool = False, severity: Severity = "error") -> Issue:
    mark = doc.mark(path, key=key)
    return Issue(doc.file, mark.line, mark.col, dotted(path), message, hint, severity)


_SECRET_REF = "secret-ref"


def _at_secret_ref(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` is a secret reference (``urlFrom``, ``apiKeyFrom``, ...) or one of its
    fields: what is written there in place of ``{env: NAME}`` may be the secret itself (a webhook
    URL with its token pasted in), so messages never quote it."""
    ref = schemas.get(_SECRET_REF)
    return schema.get("$id") == ref["$id"] or any(schema == field for field in ref["properties"].values())


def _redacted(value: Any) -> str:
    if isinstance(value, str):
        return "a string (not shown: it may be a secret)"
    return describe(value) if isinstance(value, (dict, list, bool)) or value is None else "a number (not shown)"


def _explain(error: jsonschema.ValidationError, doc: Located, base: Path_, *,
             meant: AbstractSet[tuple[Path_, str]] = frozenset()) -> list[Issue]:
    path: Path_ = (*base, *error.absolute_path)
    kw = str(error.validator)
    rule: Any = error.validator_value
    value: Any = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = _custom(error, kw)
    if _at_secret_ref(schema) and kw in ("type", "pattern"):
        field = bool(path) and path[-1] in ("env", "file")
        where = dotted(path[-2:-1] if field else path[-1:])
        expected = custom or ("expected a string" if field else "expected a reference {env: NAME} or {file: PATH}")
        return [issue_at(doc, path, f"{expected}, got {_redacted(value)}",
                         f"write {where}: {{env: NAME}} (NAME: the environment variable holding the value) or "
                         f"{where}: {{file: path/to/secret}}; never the secret itself")]

    if "propertyNames" in error.relative_schema_path and isinstance(value, str):
        # the error is about a key: point at it, and name it in the field path
        return [issue_at(doc, (*path, value), f"{custom or 'expected a key matching ' + str(rule)}, "
                       f"got {describe(value)}", key=True)]

    if kw in ("additionalProperties", "unevaluatedProperties") and isinstance(value, dict):
        known = schemas.known_keys(schema)
        extras = [k for k in value if k not in known]
        return [issue_at(doc, (*path, k), custom or f"unknown field '{k}'", None if custom else suggest_key(k, known),
                       key=True) for k in extras]
    if kw == "required" and isinstance(value, dict):
        missing = [k for k in rule if k not in value and (tuple(error.absolute_path), k) not in meant]
        return [issue_at(doc, path, custom or f"missing required field '{k}'",
                       None if custom else f"add '{k}:' under {dotted(path) or 'the document'}") for k in missing]
    if kw == "dependentRequired":
        return [issue_at(doc, path, custom or error.message)]
    if kw == "type":
        wanted: list[str] = [str(w) for w in (rule if isinstance(rule, list) else [rule])]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        hint = _type_hint(doc, path, value, wanted)
        return [issue_at(doc, path, f"{custom or 'expected ' + words}, got {describe(value)}", hint)]
    if kw == "enum":
        options = ", ".join(repr(o) for o in rule)
        hint = None
        if isinstance(value, str) and not custom:
            close = difflib.get_close_matches(value, [str(o) for o in rule], n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else None
        return [issue_at(doc, path, f"{custom or 'expected one of ' + options}, got {describe(value)}", hint)]
    if kw == "const":
        return [issue_at(doc, path, f"{custom}, got {describe(value)}" if custom else
                       f"expected {describe(rule)}, got {describe(value)}")]
    if kw == "pattern":
        return [issue_at(doc, path, f"{custom or 'expected a value matching ' + rule}, got {describe(value)}")]
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [issue_at(doc, path, f"expected {_range_text(schema)}, got {describe(value)}")]
    if kw in ("minLength", "maxLength"):
        if kw == "minLength" and value == "":
            return [issue_at(doc, path, custom or "expected a non-empty string")]
        limit = rule
        bound = f"at least {limit}" if kw == "minLength" else f"at most {limit}"
        return [issue_at(doc, path, custom or f"expected {bound} characters, got {len(value)}")]
    if kw in ("minItems", "maxItems"):
        limit = rule
        bound = f"at least {limit}" if kw == "minItems" else f"at most {limit}"
        return [issue_at(doc, path, custom or f"expected {bound} item(s), got {len(value)}")]
    if kw == "uniqueItems":
        dupes = sorted({json.dumps(v) for v in value if sum(1 for w in value if w == v) > 1})
        return [issue_at(doc, path, custom or f"list has duplicate items: {', '.join(dupes)}", "remove the repeats")]
    if kw in ("minProperties", "maxProperties"):
        return [issue_at(doc, path, custom or error.message)]
    if kw == "not":
        if custom and "secrets never sit" in custom:
            field_name = str(path[-1])
            return [issue_at(doc, path, f"{field_name} must not be written as a literal: {custom}",
                           f"write {field_name}From: {{env: VARIABLE}} or {field_name}From: {{file: path/to/secret}}",
                           key=True)]
        excluded = rule.get("required") if isinstance(rule, dict) else None
        if isinstance(excluded, list) and isinstance(value, dict) and all(k in value for k in excluded):
            # "a and b exclude each other": point at whichever of them comes last in the file
            last = max(excluded, key=lambda k: (doc.mark((*path, k), key=True).line, doc.mark((*path, k), key=True).col))
            return [issue_at(doc, (*path, last), custom or f"{', '.join(excluded)} exclude each other", key=True)]
        return [issue_at(doc, path, custom or f"{dotted(path[-1:])} is not allowed here", key=bool(path))]
    if kw == "anyOf" and isinstance(value, dict) and all(set(alt) == {"required"} for alt in rule):
        # "one of these keys" (an id or its reference by name): like a missing required field
        keys_ = [k for alt in rule for k in alt["required"]]
        if any((tuple(error.absolute_path), k) in meant for k in keys_):
            return []
        return [issue_at(doc, path, custom or f"missing one of: {', '.join(keys_)}",
                         f"add '{keys_[0]}:' under {dotted(path) or 'the document'}")]
    if kw in ("anyOf", "oneOf"):
        got = f", got {describe(value)}" if not isinstance(value, (dict, list)) else ""
        return [issue_at(doc, path, (custom or "does not match any allowed form") + got)]
    if kw == "format":
        expected = {"date-time": "an ISO-8601 date-time such as 2026-01-31T00:00:00Z", "uri": "a URL"}.get(
            str(rule), f"a {rule}")
        return [issue_at(doc, path, f"expected {expected}, got {describe(value)}")]
    if kw == "False" or kw == "None":  # a false schema  # pragma: no cover - schemas use {not: {}} instead
        return [issue_at(doc, path, f"{dotted(path[-1:])} is not allowed here", key=True)]
    return [issue_at(doc, path, custom or error.message)]  # pragma: no cover - every keyword we use is above


def check_instance(instance: Any, schema_name: str, *, file: str = "<request>") -> list[Issue]:
    """Schema issues of plain data that did not come from a file (an API request body, say).

    Positions mean nothing there, so every issue points at 1:1; ``field`` carries the location.
    """
    if not isinstance(instance, dict):
        return [Issue(file, 1, 1, "", f"expected a JSON object, got {describe(instance)}")]
    return schema_issues(Unlocated(file=file, data=instance), schema_name=schema_name)
