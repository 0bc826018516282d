"""Validation: every loaded document against the JSON Schemas, then the checks a schema cannot
express (cron translation, schedules that never fire, duplicate names across files, values JSON
cannot carry, secret files outside the project). Pure, apart from resolving the paths of secret
file references (:mod:`reconciler.specs.secrets`) and reading the files ``validate_paths`` names.

Every problem becomes an :class:`Issue` located at ``file:line:col`` with the field path, a
message saying what was expected and what was found, and a hint where one helps. All documents
are checked and all issues reported, never only the first.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import jsonschema

from reconciler import schemas
from reconciler.display import printable
from reconciler.specs import cron, secrets
from reconciler.specs.files import read_limited
from reconciler.specs.load import LoadedDocument, LoadError, Path_, load_paths, max_file_bytes

Severity = Literal["error", "warning"]
MANIFEST_SCHEMA = "manifest"


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


@dataclass(slots=True)
class ValidationReport:
    """Documents that passed, every issue found, and how many files were read."""

    documents: list[LoadedDocument] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    files: int = 0
    checked: int = 0

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def as_json(self) -> dict[str, Any]:
        """The report as ``validate --output json`` prints it (and ``plan -o json`` when manifests are invalid)."""
        return {"format_version": "1.0", "valid": self.ok, "files": self.files, "documents": self.checked,
                "errors": [i.as_dict() for i in self.errors], "warnings": [i.as_dict() for i in self.warnings]}

    @property
    def ok(self) -> bool:
        return not self.errors


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


# Keys the API sets and returns (reference §5, §6 redactedFields, §9): pasted from an API response
# into a manifest, they get a hint of their own instead of a far-fetched "did you mean".
READ_ONLY_KEYS = frozenset({
    "id", "created", "updated", "createdBy", "updatedBy", "lastStartedJobStatus", "lastStartedJobTime",
    "lastFailedRunTime", "lastSuccessfulRunTime", "lastScheduledRunTime", "nextScheduledRunTime",
    "redactedFields", "links", "status",
})


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
    if key in READ_ONLY_KEYS:
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


def _type_hint(doc: LoadedDocument, path: Path_, value: Any, wanted: list[str]) -> str | None:
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


def schema_issues(doc: LoadedDocument, *, schema_name: str = MANIFEST_SCHEMA, base: Path_ = ()) -> list[Issue]:
    """Every schema violation of ``doc.data`` (or of the part at ``base``), located and explained."""
    instance: Any = doc.data
    for part in base:
        instance = instance[part]
    errors = list(schemas.validator(schema_name).iter_errors(instance))
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


def _issue(doc: LoadedDocument, path: Path_, message: str, hint: str | None = None, *,
           key: bool = False, severity: Severity = "error") -> Issue:
    mark = doc.mark(path, key=key)
    return Issue(doc.file, mark.line, mark.col, dotted(path), message, hint, severity)


def _explain(error: jsonschema.ValidationError, doc: LoadedDocument, base: Path_, *,
             meant: AbstractSet[tuple[Path_, str]] = frozenset()) -> list[Issue]:
    path: Path_ = (*base, *error.absolute_path)
    kw = str(error.validator)
    rule: Any = error.validator_value
    value: Any = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = _custom(error, kw)

    if "propertyNames" in error.relative_schema_path and isinstance(value, str):
        # the error is about a key: point at it, and name it in the field path
        return [_issue(doc, (*path, value), f"{custom or 'expected a key matching ' + str(rule)}, "
                       f"got {describe(value)}", key=True)]

    if kw in ("additionalProperties", "unevaluatedProperties") and isinstance(value, dict):
        known = schemas.known_keys(schema)
        extras = [k for k in value if k not in known]
        return [_issue(doc, (*path, k), custom or f"unknown field '{k}'", None if custom else suggest_key(k, known),
                       key=True) for k in extras]
    if kw == "required" and isinstance(value, dict):
        missing = [k for k in rule if k not in value and (tuple(error.absolute_path), k) not in meant]
        return [_issue(doc, path, custom or f"missing required field '{k}'",
                       None if custom else f"add '{k}:' under {dotted(path) or 'the document'}") for k in missing]
    if kw == "dependentRequired":
        return [_issue(doc, path, custom or error.message)]
    if kw == "type":
        wanted: list[str] = [str(w) for w in (rule if isinstance(rule, list) else [rule])]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        hint = _type_hint(doc, path, value, wanted)
        return [_issue(doc, path, f"{custom or 'expected ' + words}, got {describe(value)}", hint)]
    if kw == "enum":
        options = ", ".join(repr(o) for o in rule)
        hint = None
        if isinstance(value, str) and not custom:
            close = difflib.get_close_matches(value, [str(o) for o in rule], n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else None
        return [_issue(doc, path, f"{custom or 'expected one of ' + options}, got {describe(value)}", hint)]
    if kw == "const":
        return [_issue(doc, path, f"{custom}, got {describe(value)}" if custom else
                       f"expected {describe(rule)}, got {describe(value)}")]
    if kw == "pattern":
        return [_issue(doc, path, f"{custom or 'expected a value matching ' + rule}, got {describe(value)}")]
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [_issue(doc, path, f"expected {_range_text(schema)}, got {describe(value)}")]
    if kw in ("minLength", "maxLength"):
        if kw == "minLength" and value == "":
            return [_issue(doc, path, custom or "expected a non-empty string")]
        limit = rule
        bound = f"at least {limit}" if kw == "minLength" else f"at most {limit}"
        return [_issue(doc, path, custom or f"expected {bound} characters, got {len(value)}")]
    if kw in ("minItems", "maxItems"):
        limit = rule
        bound = f"at least {limit}" if kw == "minItems" else f"at most {limit}"
        return [_issue(doc, path, custom or f"expected {bound} item(s), got {len(value)}")]
    if kw == "uniqueItems":
        dupes = sorted({json.dumps(v) for v in value if sum(1 for w in value if w == v) > 1})
        return [_issue(doc, path, custom or f"list has duplicate items: {', '.join(dupes)}", "remove the repeats")]
    if kw in ("minProperties", "maxProperties"):
        return [_issue(doc, path, custom or error.message)]
    if kw == "not":
        if custom and "secrets never sit" in custom:
            field_name = str(path[-1])
            return [_issue(doc, path, f"{field_name} must not be written as a literal: {custom}",
                           f"write {field_name}From: {{env: VARIABLE}} or {field_name}From: {{file: path/to/secret}}",
                           key=True)]
        excluded = rule.get("required") if isinstance(rule, dict) else None
        if isinstance(excluded, list) and isinstance(value, dict) and all(k in value for k in excluded):
            # "a and b exclude each other": point at whichever of them comes last in the file
            last = max(excluded, key=lambda k: (doc.mark((*path, k), key=True).line, doc.mark((*path, k), key=True).col))
            return [_issue(doc, (*path, last), custom or f"{', '.join(excluded)} exclude each other", key=True)]
        return [_issue(doc, path, custom or f"{dotted(path[-1:])} is not allowed here", key=bool(path))]
    if kw in ("anyOf", "oneOf"):
        got = f", got {describe(value)}" if not isinstance(value, (dict, list)) else ""
        return [_issue(doc, path, (custom or "does not match any allowed form") + got)]
    if kw == "format":
        expected = {"date-time": "an ISO-8601 date-time such as 2026-01-31T00:00:00Z", "uri": "a URL"}.get(
            str(rule), f"a {rule}")
        return [_issue(doc, path, f"expected {expected}, got {describe(value)}")]
    if kw == "False" or kw == "None":  # a false schema  # pragma: no cover - schemas use {not: {}} instead
        return [_issue(doc, path, f"{dotted(path[-1:])} is not allowed here", key=True)]
    return [_issue(doc, path, custom or error.message)]  # pragma: no cover - every keyword we use is above


def _schedule_issues(doc: LoadedDocument) -> tuple[list[Issue], dict[str, cron.ScheduleValue] | None]:
    spec = doc.data["spec"]
    schedule = spec.get("schedule")
    if schedule is None:
        return [], None
    path: Path_ = ("spec", "schedule")
    if "cron" in schedule:
        text = schedule["cron"]
        try:
            lists = cron.cron_to_schedule(text)
        except cron.CronError as exc:
            mark = doc.mark((*path, "cron"))
            # a block scalar (`cron: >-`) starts on a later line: point at its indicator instead
            col = mark.col if mark.block else mark.col + (1 if mark.quoted else 0) + exc.offset
            return [Issue(doc.file, mark.line, col, "spec.schedule.cron", f"cannot translate {text!r}: {exc.message}",
                          exc.hint)], None
    else:
        lists = cron.normalize_schedule(schedule)
    issues = []
    reason = cron.never_fires(lists)
    if reason:
        issues.append(_issue(doc, (*path, "dayOfMonth") if "cron" not in schedule else (*path, "cron"), reason,
                             "add a day that exists in those months, or restrict dayOfWeek instead"))
    elif cron.leap_day_only(lists):
        issues.append(_issue(doc, path, "fires only on 29 February, once every four years", None, severity="warning"))
    return issues, lists


def schedule_only_issues(doc: LoadedDocument) -> list[Issue]:
    """Schedule checks for a document that failed the schema elsewhere, so that one run reports both."""
    spec = doc.data.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("schedule"), dict):
        return []
    if not schemas.fast_validator("manifest-schedule").is_valid(spec["schedule"]):
        return []
    return _schedule_issues(doc)[0]


@functools.cache
def _warn_only_keys(schema_name: str) -> frozenset[str] | None:
    """Known keys of an adapter whose unknown keys are only warnings (``x-unknownKeys: warn``), else None."""
    schema = schemas.get(schema_name)
    return frozenset(schemas.known_keys(schema)) if schema.get("x-unknownKeys") == "warn" else None


def semantic_issues(doc: LoadedDocument) -> list[Issue]:
    """Checks on one schema-valid manifest that a JSON Schema cannot express."""
    issues, _ = _schedule_issues(doc)
    spec = doc.data["spec"]
    job = spec["batchPredictionJob"]
    enabled = spec.get("enabled", False)
    for side in ("intakeSettings", "outputSettings"):
        settings = job.get(side)
        if settings and settings.get("type") == "localFile":
            message = f"{side} type 'localFile' needs a client to upload or download the data, and a scheduled run has none"
            hint = ("use s3, gcp, azure, jdbc, dataset or a warehouse adapter for a job definition" if side == "intakeSettings"
                    else "use s3, gcp, azure, jdbc or a warehouse adapter for a job definition")
            issues.append(_issue(doc, ("spec", "batchPredictionJob", side, "type"), message, hint,
                                 severity="error" if enabled else "warning"))
        if side == "intakeSettings" and settings and settings.get("type") == "dss":
            # reference §7: dss scores a leaderboard model (modelId) only, and the definitions
            # endpoint (which needs deploymentId) does not take it
            issues.append(_issue(doc, ("spec", "batchPredictionJob", side, "type"),
                                 "intakeSettings type 'dss' scores a project's leaderboard model and cannot be used "
                                 "in a job definition, which scores a deployment",
                                 "read the data from s3, gcp, azure, jdbc or an AI Catalog dataset (type: dataset)"))
        known = _warn_only_keys(f"{side[:-8]}-{settings['type']}") if settings else None
        if known is not None:
            for key in settings:
                if key not in known:
                    issues.append(_issue(doc, ("spec", "batchPredictionJob", side, key),
                                         f"unknown field '{key}' for type '{settings['type']}' (its field list is unverified, so this is a warning)",
                                         suggest_key(key, known), key=True, severity="warning"))
    ts = job.get("timeseriesSettings") or {}
    start, end = ts.get("predictionsStartDate"), ts.get("predictionsEndDate")
    start_at, end_at = _iso(start) if isinstance(start, str) else None, _iso(end) if isinstance(end, str) else None
    if start_at and end_at and start_at > end_at:
        issues.append(_issue(doc, ("spec", "batchPredictionJob", "timeseriesSettings", "predictionsStartDate"),
                             f"predictionsStartDate {start} is after predictionsEndDate {end}", "swap the two dates"))
    return issues


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def definition_name(data: dict[str, Any]) -> str:
    spec = data.get("spec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return str(name) if name else str((data.get("metadata") or {}).get("name", ""))


def _declared_names(data: dict[str, Any]) -> list[tuple[Path_, str]]:
    """The names a document claims, with where: ``spec.name`` (else ``metadata.name``), then
    ``spec.previousNames``. Read defensively: the document may be invalid in any other way."""
    raw_spec, raw_meta = data.get("spec"), data.get("metadata")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    out: list[tuple[Path_, str]] = []
    if isinstance(spec.get("name"), str) and spec["name"]:
        out.append((("spec", "name"), spec["name"]))
    elif isinstance(meta.get("name"), str) and meta["name"]:
        out.append((("metadata", "name"), meta["name"]))
    previous = spec.get("previousNames")
    if isinstance(previous, list):
        out.extend((("spec", "previousNames", i), name) for i, name in enumerate(previous)
                   if isinstance(name, str) and name)
    return out


def duplicate_name_issues(docs: Sequence[LoadedDocument]) -> list[Issue]:
    """The same definition name (or a name listed in previousNames) in two places is ambiguous.

    Every document that declares a name counts, valid or not, so that a duplicate is reported
    alongside the documents' other errors instead of only once they are fixed."""
    first: dict[str, tuple[LoadedDocument, Path_]] = {}
    issues = []
    for doc in docs:
        for path, candidate in _declared_names(doc.data):
            if candidate in first and first[candidate][0] is not doc:
                other, where = first[candidate]
                mark = other.mark(where)
                issues.append(_issue(doc, path, f"definition name {candidate!r} is also declared at "
                                     f"{other.file}:{mark.line}:{mark.col}",
                                     "names are unique in the organization: rename one of them"))
            else:
                first.setdefault(candidate, (doc, path))
    return issues


def problem_issues(doc: LoadedDocument) -> list[Issue]:
    """The values the loader found the API cannot take (``.nan``, huge integers), as issues."""
    return [Issue(doc.file, p.line, p.col, p.field, p.message, p.hint) for p in doc.problems]


def _with_problems(issues: list[Issue], doc: LoadedDocument) -> list[Issue]:
    """Schema issues and value problems, one per field: the schema's word wins ("expected a
    string, got 1234…; quote it" says more than "does not fit in 64 bits"), except for a value
    that could not be read at all, which the schema only saw as text."""
    unreadable = {p.field for p in doc.problems if p.unreadable}
    kept = [i for i in issues if i.field not in unreadable]
    covered = {i.field for i in kept}
    return kept + [i for i in problem_issues(doc) if i.field not in covered]


def secret_file_issues(doc: LoadedDocument, *, roots: Sequence[str | os.PathLike[str]]) -> list[Issue]:
    """Secret file references that resolve outside the secret roots (:mod:`reconciler.specs.secrets`);
    with no roots, outside the manifest's own directory (as apply assumes when it is given none)."""
    job = (doc.data.get("spec") or {}).get("batchPredictionJob") if isinstance(doc.data.get("spec"), dict) else None
    instance = job.get("predictionInstance") if isinstance(job, dict) else None
    if not isinstance(instance, dict):
        return []
    base_dir = str(Path(doc.file).parent)
    issues = []
    for ref_key in ("apiKeyFrom", "datarobotKeyFrom"):
        ref = instance.get(ref_key)
        if not isinstance(ref, dict) or not isinstance(ref.get("file"), str):
            continue
        problem = secrets.escape_problem(ref["file"], base_dir=base_dir, roots=roots)
        if problem is not None:
            path: Path_ = ("spec", "batchPredictionJob", "predictionInstance", ref_key, "file")
            issues.append(_issue(doc, path, f"secret file {ref['file']!r} is outside the project: {problem[1]}",
                                 "keep secret files inside the project (the directory of reconciler.yaml), or "
                                 "allow their directory in reconciler.yaml: `secrets: {allowedDirs: [DIR]}`"))
    return issues


def validate_documents(docs: Sequence[LoadedDocument], load_errors: Sequence[LoadError] = (), *, files: int = 0,
                       secret_roots: Sequence[str | os.PathLike[str]] | None = None,
                       refused: Sequence[LoadedDocument] = ()) -> ValidationReport:
    """Every issue of every document. ``secret_roots``: where secret files may resolve (see
    :func:`secret_file_issues`); None for documents that come from no directory (the operator's
    resources, which refuse file references outright), then not checked. ``refused``: documents
    already refused by an earlier step (a target's variables or overlay), not checked again but
    counted for duplicate names."""
    report = ValidationReport(files=files)
    report.issues.extend(Issue(e.file, e.line, e.col, e.field, e.message, e.hint) for e in load_errors)
    fast = schemas.fast_validator(MANIFEST_SCHEMA)
    good = []
    for doc in docs:
        report.checked += 1
        problems = problem_issues(doc)
        if not fast.is_valid(doc.data):
            issues = _with_problems(schema_issues(doc), doc)
            if issues:
                report.issues.extend(issues)
                report.issues.extend(schedule_only_issues(doc))
                continue
        report.issues.extend(problems)
        sem = semantic_issues(doc)
        if secret_roots is not None:
            sem += secret_file_issues(doc, roots=secret_roots)
        report.issues.extend(sem)
        if not problems and not any(i.severity == "error" for i in sem):
            good.append(doc)
    report.issues.extend(duplicate_name_issues([*docs, *refused]))
    report.documents = good
    report.issues.sort(key=lambda i: (i.file, i.line, i.col, i.field))
    return report


def validate_paths(paths: Iterable[str | os.PathLike[str]], *,
                   secret_roots: Sequence[str | os.PathLike[str]] | None = None) -> ValidationReport:
    """Load and validate every manifest under ``paths``: the pure core of ``reconciler validate``.

    ``secret_roots`` default: the manifest roots ``paths`` name (there is no project config)."""
    paths = list(paths)
    loaded = load_paths(paths)
    roots = secrets.manifest_roots(paths) if secret_roots is None else secret_roots
    report = validate_documents(loaded.documents, loaded.errors, files=loaded.files, secret_roots=roots)
    if loaded.files == 0 and not loaded.errors:  # an empty directory validates nothing: say so rather than a bare "OK"
        report.issues.append(Issue(", ".join(str(p) for p in paths) or ".", 1, 1, "",
                                   "no manifest files (*.yaml or *.yml) found", "check the path; "
                                   "hidden directories and reconciler.yaml are skipped", "warning"))
    return report


def project_config_issues(path: str | os.PathLike[str]) -> list[Issue]:
    """Every problem of a project config (``reconciler.yaml``), located like a manifest's.

    ``reconciler validate`` reports these with the manifests' issues, so that a config that
    ``plan`` would refuse never passes validation.
    """
    from reconciler.specs.load import load_bytes

    file = str(path)
    try:
        raw = read_limited(path, limit=max_file_bytes(), what="project config")
    except OSError as exc:
        return [Issue(file, 1, 1, "", f"cannot read the project config: {exc.strerror or exc}",
                      getattr(exc, "hint", None) or "check the path given to --config")]
    docs, load_errors = load_bytes(raw, file=file)
    if load_errors:
        return [Issue(e.file, e.line, e.col, e.field, e.message, e.hint) for e in load_errors]
    if len(docs) != 1:
        line = docs[1].line if len(docs) > 1 else 1
        return [Issue(file, line, 1, "", f"expected exactly one YAML document in the project config, found {len(docs)}",
                      "keep one config per project; manifests go in their own files")]
    if schemas.fast_validator("project").is_valid(docs[0].data):
        return problem_issues(docs[0])
    return _with_problems(schema_issues(docs[0], schema_name="project"), docs[0])


def check_instance(instance: Any, schema_name: str, *, file: str = "<request>") -> list[Issue]:
    """Schema issues of plain data that did not come from a file (an API request body, say).

    Positions mean nothing there, so every issue points at 1:1; ``field`` carries the location.
    """
    if not isinstance(instance, dict):
        return [Issue(file, 1, 1, "", f"expected a JSON object, got {describe(instance)}")]
    doc = LoadedDocument(file=file, index=0, data=instance, line=1, col=1)
    return schema_issues(doc, schema_name=schema_name)
