"""Request bodies checked with the same JSON Schemas as manifests, and turned into stored records.

Pure: no storage, no HTTP objects. A body is validated against ``api-definition`` (the flattened
request form); the job spec that results (after a PATCH merge, too) is checked against
``job-spec``, which closes it and requires ``deploymentId`` and ``intakeSettings``. Defaults are
filled by :func:`reconciler.specs.model.job_spec_defaults`, the function the manifest side
uses, so a stored spec and a manifest's computed spec agree field by field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any, Final

from reconciler.contract import cron, keys, validators
from reconciler.contract.defaults import job_spec_defaults
from reconciler.contract.issues import Issue, check_instance
from reconciler.contract.refs import find_refs
from reconciler.service import errors
from reconciler.service.records import DefinitionRecord

DEFINITION_KEYS = frozenset({"name", "enabled", "schedule"})
_MISSING = re.compile(r"missing required field '([^']+)'")


def issues_to_errors(issues: Sequence[Issue]) -> dict[str, str]:
    """``{field: message}`` as the API's error body wants it; hints kept, YAML-isms dropped."""
    out: dict[str, str] = {}
    for issue in issues:
        if issue.severity != "error":
            continue
        field = issue.field
        hint = issue.hint
        missing = _MISSING.match(issue.message)
        if missing:
            field = f"{field}.{missing.group(1)}" if field else missing.group(1)
            hint = None
        text = issue.message + (f" ({hint})" if hint else "")
        key = field or "body"
        out[key] = f"{out[key]}; {text}" if key in out else text
    return out


def problems(body: dict[str, Any], schema_name: str) -> dict[str, str]:
    """Every schema problem of ``body`` as ``{field: message}``; empty when valid (fast path)."""
    if validators.fast_validator(schema_name).is_valid(body):
        return _references(body) if schema_name in ("api-definition", "job-spec") else {}
    found = issues_to_errors(check_instance(body, schema_name))
    if not found:  # the compiled validator and jsonschema disagree: report, never accept silently
        found = {"body": f"does not match the {schema_name} schema"}
    return found


def _references(job: dict[str, Any]) -> dict[str, str]:
    """A reference by name (``deploymentRef``...) is a manifest's: the API takes ids, so a request
    that still holds one is refused, naming the id field to send."""
    return {".".join(p for p in (place, field.ref) if p):
            f"references by name are resolved by reconciler before a request is sent; send {field.id}"
            for place, field, _ in find_refs(job)}


def _raise_if(found: dict[str, str], what: str) -> None:
    if found:
        raise errors.HTTPUnprocessable(f"invalid {what}: {len(found)} problem(s); see errors", errors=found)


# What the two official clients send that the stored form spells otherwise (contract section 11).
# The canonical form is the SDK's and the API reference's; responses always use it.
FIELD_ALIASES: Final = {"maxNGramExplanations": "maxNgramExplanations"}  # the Terraform provider's spelling
# localFile paths on the client's machine (the provider sends them; the SDK uploads or downloads
# the file itself and never sends them): accepted and not stored, as they mean nothing here.
CLIENT_PATHS: Final = {"intakeSettings": "file", "outputSettings": "path"}


def canonical(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` in the canonical spelling: provider aliases renamed, client-side localFile paths
    dropped. An alias together with its canonical field is a 422 (no client sends both)."""
    out = dict(body)
    for alias, field in FIELD_ALIASES.items():
        if alias not in out:
            continue
        if field in out:
            raise errors.HTTPUnprocessable(f"{alias} and {field} are one field", errors={
                alias: f"the Terraform provider's spelling of {field}; send one of them"})
        out[field] = out.pop(alias)
    for side, key in CLIENT_PATHS.items():
        settings = out.get(side)
        if isinstance(settings, dict) and settings.get("type") == "localFile" and key in settings:
            if not isinstance(settings[key], str):
                raise errors.HTTPUnprocessable(f"invalid {side}.{key}", errors={
                    f"{side}.{key}": "expected a string: a path on the client's machine (not used by the service)"})
            out[side] = {name: value for name, value in settings.items() if name != key}
    return out


def split_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(definition keys, job-spec keys)``: the request flattens the job spec to the top level."""
    top = {k: v for k, v in body.items() if k in DEFINITION_KEYS}
    job = {k: v for k, v in body.items() if k not in DEFINITION_KEYS}
    return top, job


def normalized_schedule(schedule: dict[str, Any]) -> dict[str, list[int | str]]:
    """Names to numbers (``jan`` -> 1, ``Sunday`` -> 0), sorted: the form the API returns."""
    return {key: list(values) for key, values in cron.normalize_schedule(schedule).items()}


def filled_job(job: dict[str, Any], *, default_num_concurrent: int) -> dict[str, Any]:
    """A schema-valid job spec with its defaults explicit."""
    filled = job_spec_defaults(copy.deepcopy(job))
    filled.setdefault("numConcurrent", default_num_concurrent)
    return filled


def schedule_problem(enabled: bool, schedule: dict[str, Any] | None) -> dict[str, str]:
    if enabled and schedule is None:
        return {"schedule": "enabled: true needs a schedule; send a schedule or set enabled to false"}
    return {}


def new_definition(body: dict[str, Any], *, id_: str, name: str, now: str, user: dict[str, Any],
                   default_num_concurrent: int) -> DefinitionRecord:
    """The record a create request describes (``name`` is the body's or a generated one)."""
    body = canonical(body)
    found = problems(body, "api-definition")
    _raise_if(found, "job definition")
    top, job = split_body(body)
    enabled = bool(top.get("enabled", False))
    schedule = normalized_schedule(top["schedule"]) if "schedule" in top else None
    found = {**schedule_problem(enabled, schedule), **problems(job, "job-spec")}
    _raise_if(found, "job definition")
    return DefinitionRecord(
        id=id_, name=name, enabled=enabled, schedule=schedule,
        job=filled_job(job, default_num_concurrent=default_num_concurrent),
        created=now, updated=now, created_by=user, updated_by=user,
    )


def patched_definition(current: DefinitionRecord, body: dict[str, Any], *, now: str, user: dict[str, Any],
                       default_num_concurrent: int) -> DefinitionRecord:
    """Absent keys stay; each job-spec key given replaces the stored one (top-level merge).

    A PATCH repeating the whole create body (Terraform does that) is just a merge that changes
    nothing it does not mention.
    """
    body = canonical(body)
    found = problems(body, "api-definition")
    _raise_if(found, "job definition update")
    top, job_changes = split_body(body)
    schedule = normalized_schedule(top["schedule"]) if "schedule" in top else current.schedule
    enabled = bool(top["enabled"]) if "enabled" in top else current.enabled
    job = current.job
    found = schedule_problem(enabled, schedule)
    if job_changes:
        job = {**current.job, **job_changes}
        found.update(problems(job, "job-spec"))
    _raise_if(found, "job definition update")
    if job_changes:
        job = filled_job(job, default_num_concurrent=default_num_concurrent)
    return DefinitionRecord(
        id=current.id, name=str(top.get("name", current.name)), enabled=enabled, schedule=schedule, job=job,
        created=current.created, updated=now, created_by=current.created_by, updated_by=user,
        last_started_job_status=current.last_started_job_status,
        last_started_job_time=current.last_started_job_time,
        last_scheduled_run_time=current.last_scheduled_run_time,
        last_successful_run_time=current.last_successful_run_time,
        last_failed_run_time=current.last_failed_run_time,
    )


def public_job(job: dict[str, Any]) -> dict[str, Any]:
    """The job spec as returned: predictionInstance keys are write-only, as in the real API."""
    instance = job.get("predictionInstance")
    if isinstance(instance, dict) and any(key in instance for key in keys.write_only_instance_keys()):
        job = {**job, "predictionInstance": {k: v for k, v in instance.items() if k not in keys.write_only_instance_keys()}}
    return job
