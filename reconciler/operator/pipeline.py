"""One custom resource through the shared pipeline: validate → pair → plan → apply, against the API.

Nothing here is operator-specific logic of its own: validation is :mod:`reconciler.specs.validate`
on the resource body, the body and comparable forms come from :mod:`reconciler.engine.normalize`, the
decision is :func:`reconciler.engine.plan.build_plan` and the writes are
:func:`reconciler.engine.apply.apply_plan`, exactly as ``reconciler apply`` does for files.
What is specific is how *live* is chosen for one object:

- the id recorded in ``status.definitionId`` is its identity: that definition is the match even
  when someone renamed it behind the operator's back (the diff then shows the name as a change);
- without a recorded id (first sync, or the recorded one is gone) the definition is looked up by
  name and previous names, so an existing definition is adopted instead of duplicated, and an
  operator restart never creates a second one;
- definition names are global in the API but resource names are per namespace, so a definition
  another resource already manages (``claimed_by``, from the operator's index of every watched
  resource) is never adopted: that is a :class:`Conflict`, not two resources fighting over one
  definition at every resync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.api import errors
from reconciler.api.client import Client
from reconciler.api.secrets import resolver
from reconciler.contract import keys
from reconciler.engine import apply as engine_apply
from reconciler.engine.normalize import desired_from_manifest, live_from_api
from reconciler.engine.plan import Action, ActionKind, Plan, build_plan
from reconciler.engine.types import Desired, Live, Scope
from reconciler.operator import cache as live_cache
from reconciler.operator.status import Outcome, Result
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest
from reconciler.specs.validate import validate_documents

__all__ = ["ApplyFailed", "Conflict", "Decision", "Invalid", "Mode", "decide", "document_from_body", "finalize",
           "find_candidates", "parse", "reconcile"]

log = logging.getLogger("reconciler.operator")

_RESULTS = {ActionKind.create: Result.created, ActionKind.update: Result.updated,
            ActionKind.adopt: Result.adopted, ActionKind.rename: Result.renamed}


class Mode(StrEnum):
    apply = "apply"  # the spec changed (or the operator started): make live match it
    resync = "resync"  # periodic check: correct drift, or only report it (driftPolicy: Report)


class Invalid(Exception):
    """The resource's spec fails validation; ``str()`` lists every problem, one per line."""


class ApplyFailed(Exception):
    """An API write failed; the message is the API's error text (never the token)."""


class Conflict(Exception):
    """The live definition this resource would take belongs to another resource."""


# ``claimed_by(definition_id)``: the other resource (``namespace/name``) managing it, or None.
ClaimedBy = Callable[[str], str | None]


def _nobody(_: str) -> str | None:
    return None


def document_from_body(body: Mapping[str, Any]) -> LoadedDocument:
    """The custom resource as a manifest document, located as ``namespace/name`` in messages.

    Only the manifest's part of ``metadata`` is kept: the server's fields (uid, generation,
    managedFields, kopf's annotations) are not the user's and the manifest schema rejects them.
    """
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    data = {"apiVersion": body.get("apiVersion", keys.api_version()), "kind": body.get("kind", keys.kind()),
            "metadata": metadata, "spec": _plain(body.get("spec") or {})}
    return LoadedDocument(file=f"{namespace}/{name}", index=0, data=data, line=1, col=1)


def _plain(value: Any) -> Any:
    """kopf hands out read-only views; the validator and models want plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _secret_references(doc: LoadedDocument) -> list[str]:
    """``predictionInstance.apiKeyFrom``/``datarobotKeyFrom`` in a resource: refused.

    For ``reconciler apply`` they name the user's own environment variable or file. In the operator
    they would name the *operator's*: whoever may edit a resource could have the operator read its
    service-account token (or any file or variable it can see) and send it to the API, and on to a
    prediction server host the resource chooses. So a resource never makes the operator read one.
    """
    job = (doc.data.get("spec") or {}).get("batchPredictionJob")
    instance = job.get("predictionInstance") if isinstance(job, Mapping) else None
    if not isinstance(instance, Mapping):
        return []
    return [f"spec.batchPredictionJob.predictionInstance.{key}: not allowed in a custom resource: the operator "
            "never reads its own environment or files for a resource (that works with `reconciler apply` only); "
            "create this definition with `reconciler apply`, or use a prediction instance without keys"
            for key in ("apiKeyFrom", "datarobotKeyFrom") if key in instance]


def parse(body: Mapping[str, Any]) -> Manifest:
    """The validated manifest of a resource, or :class:`Invalid` with every problem found."""
    doc = document_from_body(body)
    report = validate_documents([doc], files=1)
    lines = []
    for issue in report.errors:
        text = f"{issue.field}: {issue.message}" if issue.field else issue.message
        lines.append(text + (f" ({issue.hint})" if issue.hint else ""))
    lines.extend(_secret_references(doc))
    if lines:
        raise Invalid("\n".join(lines))
    return Manifest.from_document(doc)


async def find_candidates(client: Client, desired: Desired, recorded_id: str | None) -> tuple[list[Live], dict[str, Any]]:
    """Candidates for pairing, and the raw API items by id (for status). The recorded id is the
    identity: that definition is the candidate whatever its live name (a rename is drift)."""
    raw: dict[str, Any] = {}
    if recorded_id:
        try:
            item = await client.get_definition(recorded_id)
        except errors.APINotFoundError:
            log.info("definition %s recorded in status is gone; looking it up by name", recorded_id)
        else:
            raw[str(item["id"])] = item
            return [live_from_api(item)], raw  # paired by its recorded id (decide), whatever its name
    candidates: list[Live] = []
    for name in (desired.name, *desired.previous_names):
        found = await client.find_by_name(name)
        if found is not None:
            raw[str(found["id"])] = found
            candidates.append(live_from_api(found))
    return candidates, raw


def _drift_paths(plan: Plan) -> tuple[str, ...]:
    return tuple(c.path for a in plan.actions for c in a.changes)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What to do for one resource: the plan (one action, built by engine.plan's own function,
    with its guards) and whether it is only reported (a resync under ``driftPolicy: Report``)."""

    plan: Plan
    action: Action
    report_only: bool


def decide(desired: Desired, candidates: Sequence[Live], *, recorded_id: str | None, mode: Mode,
           drift_policy: str | None,
           claimed_by: ClaimedBy = _nobody, live_names: Mapping[str, str] | None = None) -> Decision:
    """The decision for one resource over its live candidates (see :func:`find_candidates`). Pure.

    Raises :class:`Conflict` when a candidate is managed by another resource (``claimed_by``);
    ``live_names`` are the candidates' live names by id, for that message."""
    for candidate in candidates:
        owner = claimed_by(candidate.id)
        if owner is not None:
            live_name = (live_names or {}).get(candidate.id, desired.name)
            raise Conflict(f"live definition {candidate.id} ({live_name!r}) is already managed by "
                           f"{keys.kind()} {owner}; definition names are global in the API, so give one of "
                           "the two resources another metadata.name")
    # the recorded id is the identity: that definition is the match whatever its live name
    plan = build_plan(desired=[desired], live=candidates, scope=None,
                      identities={desired.name: recorded_id} if recorded_id else None)
    action = next(a for a in plan.actions if a.name == desired.name)
    return Decision(plan=plan, action=action, report_only=mode is Mode.resync and drift_policy == "Report")


async def reconcile(client: Client, manifest: Manifest, *, recorded_id: str | None, mode: Mode,
                    environ: Mapping[str, str] | None = None, claimed_by: ClaimedBy = _nobody,
                    cache: live_cache.LiveCache | None = None) -> Outcome:
    """Make the live definition match ``manifest`` (or, on a resync under driftPolicy Report, only
    say how it differs). Raises :class:`ApplyFailed` or an ``APIError`` when the API fails, and
    :class:`Conflict` when the matching definition is managed by another resource. ``cache``: the
    candidates come from the shared live snapshot, and what is written goes back into it."""
    desired = desired_from_manifest(manifest)
    if cache is None:
        candidates, raw = await find_candidates(client, desired, recorded_id)
    else:
        candidates, raw = await live_cache.find_candidates(client, cache, desired, recorded_id)
    decision = decide(desired, candidates, recorded_id=recorded_id, mode=mode, drift_policy=manifest.spec.driftPolicy, claimed_by=claimed_by,
                      live_names={i: str(item.get("name")) for i, item in raw.items()})
    plan, action, report_only = decision.plan, decision.action, decision.report_only

    if action.kind is ActionKind.noop:
        if recorded_id != action.id:  # found by name: this resource takes it over
            return Outcome(result=Result.adopted, definition_id=action.id, definition_name=desired.name,
                           live=raw.get(action.id or ""),
                           message=f"adopted existing definition {action.id} (it already matches the spec)")
        return Outcome(result=Result.unchanged, message="live definition matches the spec",
                       definition_id=action.id, definition_name=desired.name, live=raw.get(action.id or ""))
    if report_only:
        if action.kind is ActionKind.create:
            return Outcome(result=Result.missing_reported, definition_id=recorded_id, definition_name=desired.name,
                           message="the live definition is missing (driftPolicy: Report, so it is not recreated)",
                           drift=("<definition>",))
        paths = _drift_paths(plan)
        return Outcome(result=Result.drift_reported, definition_id=action.id, definition_name=desired.name,
                       live=raw.get(action.id or ""), drift=paths,
                       message=f"live definition differs from the spec in {', '.join(paths)} "
                               "(driftPolicy: Report, so it is not corrected)")

    # Never the operator's own environment (see _secret_references).
    applied = await engine_apply.apply_plan(plan, client=client, resolve=resolver({} if environ is None else environ))
    failed = applied.of(engine_apply.Outcome.failed)
    if failed:
        if cache is not None and action.id:
            cache.forget(action.id)  # the retry looks it up again (gone, renamed, changed meanwhile)
        raise ApplyFailed(failed[0].error or "the API write failed")
    result = applied.results[0]
    definition_id = result.id
    live: dict[str, Any] | None = await client.get_definition(definition_id) if definition_id else None
    if cache is not None and live is not None:
        cache.put(live)
    kind = _RESULTS.get(action.kind, Result.updated)
    adopted = action.kind is not ActionKind.create and recorded_id != action.id
    if adopted:
        kind = Result.adopted
    elif mode is Mode.resync and action.kind is not ActionKind.create:
        kind = Result.drift_corrected
    elif mode is Mode.resync:
        kind = Result.created  # recreated after it was deleted behind our back
    paths = _drift_paths(plan)
    message = {
        Result.created: f"created definition {definition_id}",
        Result.adopted: f"adopted existing definition {definition_id}"
                        + (f" and updated {', '.join(paths)}" if paths else ""),
        Result.drift_corrected: f"corrected drift in {', '.join(paths)}",
    }.get(kind, f"updated {', '.join(paths)}")
    return Outcome(result=kind, message=message, definition_id=definition_id, definition_name=desired.name,
                   live=live, drift=paths if kind is Result.drift_corrected else ())


async def finalize(client: Client, *, recorded_id: str | None, name: str, deletion_policy: str,
                   prevent_destroy: bool, claimed_by: ClaimedBy = _nobody,
                   cache: live_cache.LiveCache | None = None) -> tuple[bool, str]:
    """Delete the live definition on resource deletion unless Orphan/preventDestroy says otherwise.

    Only the recorded id is ever deleted: a definition the operator never recorded (the spec was
    invalid from the start) may belong to someone else, and so does one that another resource
    manages. Returns (deleted, message).
    """
    if not recorded_id:
        return False, "no live definition was recorded for this resource; nothing to delete"
    owner = claimed_by(recorded_id)
    if owner is not None:
        return False, f"definition {recorded_id} left in place (it is managed by {keys.kind()} {owner})"
    if deletion_policy == "Orphan":
        return False, f"definition {recorded_id} left in place (deletionPolicy: Orphan)"
    if prevent_destroy:
        return False, f"definition {recorded_id} left in place (preventDestroy: true)"
    desired = Desired(name=name, body={}, comparable={})
    live = Live(id=recorded_id, name=name, comparable={})
    # force: deleting the resource is the explicit intent for exactly this one definition.
    plan = build_plan(desired=[desired], live=[live], scope=Scope(names=frozenset({name})), destroy=True, force=True)
    applied = await engine_apply.apply_plan(plan, client=client, resolve=resolver({}))
    failed = applied.of(engine_apply.Outcome.failed)
    if cache is not None:
        cache.forget(recorded_id)
    if failed:
        raise ApplyFailed(failed[0].error or "the API delete failed")
    return True, f"deleted definition {recorded_id}"
