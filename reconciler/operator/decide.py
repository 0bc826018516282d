"""What the operator should do for one custom resource: a pure decision over plain values.

Like kopf's own split between detecting a cause and acting on it: this module reads the resource
(:func:`parse`), and given the live candidates (found by :func:`reconciler.operator.act.find_candidates`)
returns a :class:`Decision` (create, update, adopt, noop, report, delete or keep) with the status
result it leads to; :mod:`reconciler.operator.act` performs it through the API. Nothing here does I/O.

How *live* is chosen for one object:

- the id recorded in ``status.definitionId`` is its identity: that definition is the match even
  when someone renamed it behind the operator's back (the diff then shows the name as a change);
- without a recorded id (first sync, or the recorded one is gone) the definition is looked up by
  name and previous names, so an existing definition is adopted instead of duplicated, and an
  operator restart never creates a second one;
- definition names are global in the API but resource names are per namespace, so a definition
  another resource already manages (``claimed_by``, from the operator's index of every watched
  resource) is never adopted: that is a :class:`ClaimedElsewhere`, not two resources fighting over one
  definition at every resync.

The plan is :func:`reconciler.engine.plan.build_plan`'s, with its guards, exactly as
``reconciler apply`` plans files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.contract import keys
from reconciler.engine.plan import Action, ActionKind, Plan, build_plan
from reconciler.engine.types import Desired, Live, Scope
from reconciler.engine.windows import WindowState
from reconciler.errors import InvalidInput, PlanError
from reconciler.operator import controls as operator_controls
from reconciler.operator.status import Reconciliation, Result
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest
from reconciler.specs.validate import validate_documents

__all__ = [
    "ClaimedBy",
    "ClaimedElsewhere",
    "Decision",
    "Invalid",
    "Mode",
    "Step",
    "decide",
    "decide_finalize",
    "document_from_body",
    "nobody",
    "parse",
    "written",
]

_RESULTS = {ActionKind.create: Result.created, ActionKind.update: Result.updated,
            ActionKind.adopt: Result.adopted, ActionKind.rename: Result.renamed}


class Mode(StrEnum):
    apply = "apply"  # the spec changed (or the operator started): make live match it
    resync = "resync"  # periodic check: correct drift, or only report it (driftPolicy: Report)


class Step(StrEnum):
    """What the decision asks of the API."""

    create = "create"
    update = "update"  # an update or a rename of the definition this resource manages
    adopt = "adopt"  # take over a definition found by name (written when it differs)
    noop = "noop"  # live matches the spec
    report = "report"  # differs, or is missing, under driftPolicy: Report: only said
    delete = "delete"  # the resource is going away: delete its definition
    keep = "keep"  # the resource is going away: leave the definition (Orphan, preventDestroy, not ours)
    defer = "defer"  # a write waits for a sync window (operator.controls)


class Invalid(InvalidInput):
    """The resource's spec fails validation; ``str()`` lists every problem, one per line."""


class ClaimedElsewhere(PlanError):
    """The live definition this resource would take belongs to another resource (status: the ``Conflict`` condition)."""


# ``claimed_by(definition_id)``: the other resource (``namespace/name``) managing it, or None.
ClaimedBy = Callable[[str], str | None]


def nobody(_: str) -> str | None:
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


def _drift_paths(plan: Plan) -> tuple[str, ...]:
    return tuple(c.path for a in plan.actions for c in a.changes)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What to do for one resource: ``plan`` (built by engine.plan's own function, with its
    guards) and its ``action`` for this resource; ``result`` is what status will say (its
    conditions derive from it). ``outcome`` is the whole status outcome when nothing is written
    (for a write, :func:`written` makes it once the API answered). A finalizer that keeps the
    definition has no plan."""

    step: Step
    result: Result | None = None  # None: a finalizer's decision (no status is written)
    plan: Plan | None = None
    action: Action | None = None
    outcome: Reconciliation | None = None
    message: str = ""

    @property
    def writes(self) -> bool:
        return self.plan is not None and self.outcome is None


def decide(desired: Desired, candidates: Sequence[Live], *, recorded_id: str | None, mode: Mode,
           drift_policy: str | None,
           claimed_by: ClaimedBy = nobody, live_names: Mapping[str, str] | None = None,
           window: WindowState | None = None, fallback_delay: float = 300.0) -> Decision:
    """The decision for one resource over its live candidates. Pure.

    Raises :class:`ClaimedElsewhere` when a candidate is managed by another resource (``claimed_by``);
    ``live_names`` are the candidates' live names by id, for that message and the status.
    ``window``: the sync windows' state now; a write while it is closed is deferred (retried when
    writes are next allowed, or after ``fallback_delay`` seconds)."""
    for candidate in candidates:
        owner = claimed_by(candidate.id)
        if owner is not None:
            live_name = (live_names or {}).get(candidate.id, desired.name)
            raise ClaimedElsewhere(f"live definition {candidate.id} ({live_name!r}) is already managed by "
                           f"{keys.kind()} {owner}; definition names are global in the API, so give one of "
                           "the two resources another metadata.name")
    # the recorded id is the identity: that definition is the match whatever its live name
    plan = build_plan(desired=[desired], live=candidates, scope=None,
                      identities={desired.name: recorded_id} if recorded_id else None)
    action = next(a for a in plan.actions if a.name == desired.name)
    name = desired.name
    if action.kind is ActionKind.noop:
        if recorded_id != action.id:  # found by name: this resource takes it over
            return Decision(step=Step.adopt, result=Result.adopted, plan=plan, action=action, outcome=Reconciliation(
                result=Result.adopted, definition_id=action.id, definition_name=name,
                message=f"adopted existing definition {action.id} (it already matches the spec)"))
        return Decision(step=Step.noop, result=Result.unchanged, plan=plan, action=action, outcome=Reconciliation(
            result=Result.unchanged, message="live definition matches the spec", definition_id=action.id,
            definition_name=name))
    if mode is Mode.resync and drift_policy == "Report":
        if action.kind is ActionKind.create:
            return Decision(step=Step.report, result=Result.missing_reported, plan=plan, action=action,
                            outcome=Reconciliation(
                result=Result.missing_reported, definition_id=recorded_id, definition_name=name,
                message="the live definition is missing (driftPolicy: Report, so it is not recreated)",
                drift=("<definition>",)))
        paths = _drift_paths(plan)
        return Decision(step=Step.report, result=Result.drift_reported, plan=plan, action=action,
                        outcome=Reconciliation(
            result=Result.drift_reported, definition_id=action.id, definition_name=name, drift=paths,
            message=f"live definition differs from the spec in {', '.join(paths)} "
                    "(driftPolicy: Report, so it is not corrected)"))
    deferred = operator_controls.deferral(action, window, definition_id=action.id or recorded_id, name=name,
                                          fallback=fallback_delay)
    if deferred is not None:
        return Decision(step=Step.defer, result=Result.deferred, plan=plan, action=action, outcome=deferred)
    result = _RESULTS.get(action.kind, Result.updated)
    step = Step.create if action.kind is ActionKind.create else Step.update
    if action.kind is not ActionKind.create and recorded_id != action.id:
        result, step = Result.adopted, Step.adopt
    elif mode is Mode.resync and action.kind is not ActionKind.create:
        result = Result.drift_corrected
    elif mode is Mode.resync:
        result = Result.created  # recreated after it was deleted behind our back
    return Decision(step=step, result=result, plan=plan, action=action)


def written(decision: Decision, *, name: str, definition_id: str | None, live: Mapping[str, Any] | None) -> Reconciliation:
    """The status outcome of a decision whose write succeeded (``definition_id``: what the API
    returned; ``live``: the definition read back). Pure."""
    if not decision.writes or decision.plan is None or decision.result is None:
        raise ValueError(f"a {decision.step} decision writes nothing, so it has no written outcome")
    paths = _drift_paths(decision.plan)
    kind = decision.result
    message = {
        Result.created: f"created definition {definition_id}",
        Result.adopted: f"adopted existing definition {definition_id}"
                        + (f" and updated {', '.join(paths)}" if paths else ""),
        Result.drift_corrected: f"corrected drift in {', '.join(paths)}",
    }.get(kind, f"updated {', '.join(paths)}")
    return Reconciliation(result=kind, message=message, definition_id=definition_id, definition_name=name,
                   live=live, drift=paths if kind is Result.drift_corrected else ())


def decide_finalize(*, recorded_id: str | None, name: str, deletion_policy: str, prevent_destroy: bool,
                    claimed_by: ClaimedBy = nobody, suspended: bool = False) -> Decision:
    """On resource deletion: delete the live definition unless Orphan/preventDestroy says otherwise.

    Only the recorded id is ever deleted: a definition the operator never recorded (the spec was
    invalid from the start) may belong to someone else, and so does one that another resource
    manages. Pure; ``message`` says what was decided (for a delete: what it will have done)."""
    def keep(message: str) -> Decision:
        return Decision(step=Step.keep, message=message)

    if not recorded_id:
        return keep("no live definition was recorded for this resource; nothing to delete")
    owner = claimed_by(recorded_id)
    if owner is not None:
        return keep(f"definition {recorded_id} left in place (it is managed by {keys.kind()} {owner})")
    if suspended:
        return keep(f"definition {recorded_id} left in place (spec.suspend: true)")
    if deletion_policy == "Orphan":
        return keep(f"definition {recorded_id} left in place (deletionPolicy: Orphan)")
    if prevent_destroy:
        return keep(f"definition {recorded_id} left in place (preventDestroy: true)")
    desired = Desired(name=name, body={}, comparable={})
    live = Live(id=recorded_id, name=name, comparable={})
    # force: deleting the resource is the explicit intent for exactly this one definition.
    plan = build_plan(desired=[desired], live=[live], scope=Scope(names=frozenset({name})), destroy=True, force=True)
    return Decision(step=Step.delete, plan=plan, action=plan.actions[0],
                    message=f"deleted definition {recorded_id}")
