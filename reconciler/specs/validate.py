"""Validation: every loaded document against the JSON Schemas, then the checks a schema cannot
express (cron translation, schedules that never fire, duplicate names across files, values JSON
cannot carry, secret files outside the project). Pure, apart from resolving the paths of secret
file references (:mod:`reconciler.specs.secrets`) and reading the files ``validate_paths`` names.

Every problem becomes an :class:`Issue` located at ``file:line:col`` with the field path, a
message saying what was expected and what was found, and a hint where one helps. All documents
are checked and all issues reported, never only the first.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.contract import cron, schemas, validators
from reconciler.contract.issues import Issue, Path_, issue_at, schema_issues, suggest_key
from reconciler.specs import controls, secrets
from reconciler.specs.files import read_limited
from reconciler.specs.load import LoadedDocument, LoadError, load_paths, max_file_bytes
from reconciler.specs.notifications import notification_file_issues

MANIFEST_SCHEMA = "manifest"


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
        issues.append(issue_at(doc, (*path, "dayOfMonth") if "cron" not in schedule else (*path, "cron"), reason,
                             "add a day that exists in those months, or restrict dayOfWeek instead"))
    elif cron.leap_day_only(lists):
        issues.append(issue_at(doc, path, "fires only on 29 February, once every four years", None, severity="warning"))
    return issues, lists


def schedule_only_issues(doc: LoadedDocument) -> list[Issue]:
    """Schedule checks for a document that failed the schema elsewhere, so that one run reports both."""
    spec = doc.data.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("schedule"), dict):
        return []
    if not validators.fast_validator("manifest-schedule").is_valid(spec["schedule"]):
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
            issues.append(issue_at(doc, ("spec", "batchPredictionJob", side, "type"), message, hint,
                                 severity="error" if enabled else "warning"))
        if side == "intakeSettings" and settings and settings.get("type") == "dss":
            # reference §7: dss scores a leaderboard model (modelId) only, and the definitions
            # endpoint (which needs deploymentId) does not take it
            issues.append(issue_at(doc, ("spec", "batchPredictionJob", side, "type"),
                                 "intakeSettings type 'dss' scores a project's leaderboard model and cannot be used "
                                 "in a job definition, which scores a deployment",
                                 "read the data from s3, gcp, azure, jdbc or an AI Catalog dataset (type: dataset)"))
        known = _warn_only_keys(f"{side[:-8]}-{settings['type']}") if settings else None
        if known is not None:
            for key in settings:
                if key not in known:
                    issues.append(issue_at(doc, ("spec", "batchPredictionJob", side, key),
                                         f"unknown field '{key}' for type '{settings['type']}' (its field list is unverified, so this is a warning)",
                                         suggest_key(key, known), key=True, severity="warning"))
    issues += controls.manifest_issues(doc)
    ts = job.get("timeseriesSettings") or {}
    start, end = ts.get("predictionsStartDate"), ts.get("predictionsEndDate")
    start_at, end_at = _iso(start) if isinstance(start, str) else None, _iso(end) if isinstance(end, str) else None
    if start_at and end_at and start_at > end_at:
        issues.append(issue_at(doc, ("spec", "batchPredictionJob", "timeseriesSettings", "predictionsStartDate"),
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
                issues.append(issue_at(doc, path, f"definition name {candidate!r} is also declared at "
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
            issues.append(issue_at(doc, path, f"secret file {ref['file']!r} is outside the project: {problem[1]}",
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
    fast = validators.fast_validator(MANIFEST_SCHEMA)
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
    if validators.fast_validator("project").is_valid(docs[0].data):
        return problem_issues(docs[0]) + controls.config_issues(docs[0]) + notification_file_issues(docs[0])
    return _with_problems(schema_issues(docs[0], schema_name="project"), docs[0])


