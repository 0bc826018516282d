"""The plan: what apply would do, as a frozen value. Pure: no I/O; rendering and applying live in
their own modules and take a :class:`Plan` (apply never recomputes one).

Kinds (:class:`ActionKind`), decided per pair (see :mod:`reconciler.engine.pair`):

- ``create``  a manifest with no live definition of its name (or a previous name);
- ``update``  a live definition inside the scope whose fields differ from its manifest (also any
  match when the project declares no scope: nothing then is "outside");
- ``adopt``   a live definition OUTSIDE the scope that a manifest declares, with differences: it is
  updated in place and reported as adopted (the API has no labels, so ownership is the scope);
- ``rename``  a match through ``spec.previousNames``: a PATCH of the same id, never delete+create;
- ``delete``  a live definition inside the scope with no manifest, only with ``prune=True``
  (or every in-scope match with ``destroy=True``, unless its manifest says ``preventDestroy``
  (the plan is refused) or ``deletionPolicy: Orphan`` (left in place, listed as orphaned));
- ``noop``    matched and equal.

Live definitions outside the scope with no manifest are listed as ``unmanaged`` and never touched;
inside the scope without ``prune`` they are listed as ``orphans`` ("would be pruned").

Guards turn into ``errors`` (the plan is then not applyable): prune without a scope; deleting more
than ``max_delete_fraction`` of the live definitions in scope without ``force``; ``destroy`` of a
``preventDestroy`` manifest. Note that a manifest that was *removed* cannot protect itself with
``preventDestroy``: nothing records it once the file is gone; use ``deletionPolicy``/scope instead.

Total order of actions (documented, stable): by kind in :data:`KIND_ORDER` (renames first, so names
are settled before anything else; then adopt, update, create; deletes last, so that a failure
earlier stops the prune; noops at the end), then by definition name, then by live id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from reconciler.display import printable
from reconciler.engine import collector
from reconciler.engine import diff as diffs
from reconciler.engine import ignore as ignoring
from reconciler.engine.normalize import compare_view
from reconciler.engine.pair import MatchBy, pair
from reconciler.engine.select import Selection
from reconciler.engine.types import Desired, Live, Resolved, Scope
from reconciler.engine.verdicts import Verdict
from reconciler.engine.windows import WindowState

__all__ = ["KIND_ORDER", "Action", "ActionKind", "Fingerprint", "Plan", "PlanOrigin", "Summary", "Suspended", "build_plan",
           "check_digest", "content_digest", "fingerprint", "guard_delete_fraction", "stale_reasons"]

# 1.1: "target" (where the plan was made); 1.2: "digest" (over the content) and actions' "secret_roots";
# 1.3: actions' "references" (names resolved to ids); "policy" (the digest of the policy rules and the
# verdicts of the action rules, engine.policy)
# 1.3: actions' "ignored" differences, "suspended" definitions, "sync_window", their summary counts
FORMAT_VERSION: Final = "1.3"
DIGEST_PREFIX: Final = "sha256:"


class ActionKind(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"
    adopt = "adopt"
    rename = "rename"
    noop = "noop"


KIND_ORDER: Final = {ActionKind.rename: 0, ActionKind.adopt: 1, ActionKind.update: 2, ActionKind.create: 3,
                     ActionKind.delete: 4, ActionKind.noop: 5}
MARKERS: Final = {ActionKind.create: "+", ActionKind.update: "~", ActionKind.adopt: "~", ActionKind.rename: "~",
                  ActionKind.delete: "-", ActionKind.noop: " "}
WRITES: Final = frozenset({ActionKind.create, ActionKind.update, ActionKind.adopt, ActionKind.rename,
                           ActionKind.delete})


@dataclass(frozen=True, kw_only=True, slots=True)  # held once per definition: no __dict__ each
class Action:
    """One step. ``name`` is the definition's name after the step; ``previous_name`` its live name
    for a rename; ``body`` the create/PATCH body with secret references only (never values)."""

    kind: ActionKind
    name: str
    id: str | None = None
    previous_name: str | None = None
    changes: tuple[diffs.Change, ...] = ()
    body: Mapping[str, Any] | None = None
    source: str | None = None
    base_dir: str | None = None
    secret_roots: tuple[str, ...] = ()  # where the body's secret files may resolve (empty: base_dir)
    references: tuple[Resolved, ...] = ()  # names the manifest gave, and the ids they resolved to
    ignored: tuple[diffs.Change, ...] = ()  # differences under the manifest's ignoreChanges: not applied

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return (KIND_ORDER[self.kind], self.name, self.id or "")

    def line(self) -> str:
        """The action as one line: ``~ update demo-a (2 changes)``."""
        text = f"{MARKERS[self.kind]} {self.kind.value} {self.name}"
        if self.previous_name:
            text += f" (was {self.previous_name})"
        if self.id:
            text += f" [id {self.id}]"
        if self.kind in (ActionKind.update, ActionKind.adopt, ActionKind.rename):
            text += f" ({len(self.changes)} change{'s' if len(self.changes) != 1 else ''})"
        if self.ignored:
            text += f" ({_differences(len(self.ignored))} ignored)"
        return text


def _differences(count: int) -> str:
    return f"{count} difference{'s' if count != 1 else ''}"


@dataclass(frozen=True, kw_only=True, slots=True)  # held once per definition: no __dict__ each
class Suspended:
    """A definition whose manifest says ``suspend: true``: nothing is written for it. ``pending``
    is what apply would otherwise do (``create``, ``update``, ``rename``, ``delete``, or ``noop``)."""

    name: str
    id: str | None = None
    pending: str = "noop"
    changes: int = 0
    source: str | None = None

    def line(self) -> str:
        text = f"{self.name}" + (f" [id {self.id}]" if self.id else "")
        if self.pending != "noop":
            text += f" (would {self.pending}" + (f", {self.changes} change{'s' if self.changes != 1 else ''}"
                                                  if self.changes else "") + ")"
        return text


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Counts computed once; ``text`` is the public one-line summary (update counts adopt+rename)."""

    create: int = 0
    update: int = 0
    delete: int = 0
    adopt: int = 0
    rename: int = 0
    noop: int = 0
    ignored: int = 0  # differences not applied (ignoreChanges)
    suspended: int = 0  # definitions not reconciled (spec.suspend)

    @property
    def changes(self) -> int:
        return self.create + self.update + self.delete + self.adopt + self.rename

    @property
    def text(self) -> str:
        if not self.changes:
            text = "No changes. Live definitions match the manifests."
        else:
            text = (f"Plan: {self.create} to create, {self.update + self.adopt + self.rename} to update, "
                    f"{self.delete} to delete.")
        extra = ([f"{_differences(self.ignored)} ignored"] if self.ignored else []) + (
            [f"{self.suspended} definition{'s' if self.suspended != 1 else ''} suspended"] if self.suspended else [])
        return text + (" " + ", ".join(extra) + "." if extra else "")

    @classmethod
    def of(cls, actions: Iterable[Action], *, suspended: int = 0) -> Summary:
        counts = dict.fromkeys((k.value for k in ActionKind), 0)
        ignored = 0
        for action in actions:
            counts[action.kind.value] += 1
            ignored += len(action.ignored)
        return cls(**counts, ignored=ignored, suspended=suspended)


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """The live objects a plan was computed from: every live definition in scope or named by a
    manifest (``watched_names``), as ``(id, name, hash)``. A saved plan applied after any of them
    changed is stale."""

    digest: str
    objects: tuple[tuple[str, str, str], ...] = ()
    watched_names: tuple[str, ...] = ()

    def compare(self, other: Fingerprint) -> list[str]:
        """What changed from ``self`` (the plan's) to ``other`` (now), one line per object (live
        names printed escaped: :func:`reconciler.display.printable`)."""
        before = {oid: (name, h) for oid, name, h in self.objects}
        after = {oid: (name, h) for oid, name, h in other.objects}
        out = []
        for oid in sorted(before.keys() | after.keys()):
            if oid not in after:
                out.append(f"{printable(before[oid][0])} [id {oid}] was deleted")
            elif oid not in before:
                out.append(f"{printable(after[oid][0])} [id {oid}] appeared")
            elif before[oid] != after[oid]:
                out.append(f"{printable(after[oid][0])} [id {oid}] changed")
        return out


def fingerprint(*, live: Sequence[Live], scope: Scope | None, watched_names: Iterable[str]) -> Fingerprint:
    watched = tuple(sorted(set(watched_names)))
    names = set(watched)
    objects = tuple(sorted((item.id, item.name, item.hash) for item in live
                           if item.name in names or (scope is not None and scope.contains(item.name))))
    digest = hashlib.sha256(json.dumps(objects, separators=(",", ":")).encode()).hexdigest()
    return Fingerprint(digest=digest, objects=objects, watched_names=watched)


def stale_reasons(plan: Plan, live: Sequence[Live]) -> list[str]:
    """What changed in the live state since ``plan`` was made (empty: still fresh). Pure."""
    now = fingerprint(live=live, scope=plan.scope, watched_names=plan.fingerprint.watched_names)
    if now.digest == plan.fingerprint.digest:
        return []
    return plan.fingerprint.compare(now) or ["the live state's fingerprint differs"]


def guard_delete_fraction(actions: Iterable[Action], *, live: Sequence[Live], scope: Scope | None,
                          max_delete_fraction: float, force: bool, errors: list[str], warnings: list[str]) -> None:
    """The guard against a mass deletion: more than ``max_delete_fraction`` of the live definitions
    in scope deleted is an error (the plan is not applyable) unless ``force``, then a warning."""
    deletes = sum(1 for a in actions if a.kind is ActionKind.delete)
    if not deletes or scope is None:
        return
    in_scope_total = sum(1 for item in live if scope.contains(item.name))
    if in_scope_total and deletes / in_scope_total > max_delete_fraction:
        message = (f"the plan deletes {deletes} of {in_scope_total} live definitions in scope "
                   f"({deletes / in_scope_total:.0%}), more than maxDeleteFraction {max_delete_fraction:.0%}")
        if force:
            warnings.append(message + "; allowed by --force")
        else:
            errors.append(message + "; check the manifests and the scope, or pass --force")


@dataclass(frozen=True, kw_only=True)
class PlanOrigin:
    """Where a plan was computed: a saved plan is only applied to the same place. ``endpoint`` is
    the API's URL, or None for the embedded local service over ``local_db``."""

    name: str | None = None
    endpoint: str | None = None
    local_db: str | None = None

    def describe(self) -> str:
        where = self.endpoint or f"the embedded local service ({self.local_db})"
        return f"target {self.name!r} ({where})" if self.name else where

    def same_place(self, other: PlanOrigin) -> bool:
        return (self.endpoint, None if self.endpoint else self.local_db) == (
            other.endpoint, None if other.endpoint else other.local_db)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Everything apply needs and every renderer shows. ``errors`` make it not applyable."""

    actions: tuple[Action, ...]
    summary: Summary
    unmanaged: tuple[str, ...] = ()
    orphans: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    scope: Scope | None = None
    prune: bool = False
    force: bool = False
    destroy: bool = False
    fingerprint: Fingerprint = field(default_factory=lambda: Fingerprint(digest=""))
    origin: PlanOrigin | None = None
    policy: tuple[Verdict, ...] = ()  # the action rules' verdicts; a deny is also in ``errors``
    # the project's rules the plan was judged by (engine.policy.Policies.digest); a saved plan is
    # applied only while they are the same
    policy_digest: str | None = None
    suspended: tuple[Suspended, ...] = ()  # spec.suspend: listed, never written
    window: WindowState | None = None  # the sync windows when planned (apply checks them again)

    @property
    def has_changes(self) -> bool:
        return self.summary.changes > 0

    @property
    def errored(self) -> bool:
        return bool(self.errors)

    @property
    def applyable(self) -> bool:
        return not self.errors

    def of_kind(self, *kinds: ActionKind) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind in kinds)

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind in WRITES)


def _unclearable(change: diffs.Change) -> bool:
    """A top-level job field set live but absent from the manifest: PATCH merges top-level keys
    and rejects nulls, so no request can clear it. Reported as a warning, not as a change that
    would be "applied" again on every run."""
    parts = change.path.split(".")
    return change.op is diffs.Op.remove and len(parts) == 2 and parts[0] == "batchPredictionJob"


@collector.pausing  # one action and its changes per definition, all acyclic (engine.collector)
def build_plan(*, desired: Sequence[Desired], live: Sequence[Live], scope: Scope | None, prune: bool = False,
               force: bool = False, destroy: bool = False, max_delete_fraction: float = 0.5,
               selection: Selection | None = None, selected: Sequence[Desired] | None = None,
               manifest_names: Iterable[str] = (), origin: PlanOrigin | None = None,
               identities: Mapping[str, str] | None = None, window: WindowState | None = None) -> Plan:
    """Pair, diff and decide; then apply the guards. Deterministic for the same inputs.

    With an active ``selection`` (``--selector``/``--only``/``--changed-since``) only the
    ``selected`` manifests and the live definitions they (or a removal, or ``--only``) name are
    considered; ``desired`` is still every manifest of the run (a removal some other manifest
    still declares is no removal), and the delete guard and the fingerprint count the WHOLE live
    state, as for a full plan. ``manifest_names`` are the manifests' ``metadata.name`` values,
    which ``--only`` also matches. ``identities`` (name -> recorded live id) pair before names
    (:func:`reconciler.engine.pair.pair`). A suspended manifest (``spec.suspend``) gets no action,
    only a :class:`Suspended` entry; each manifest's ``ignore_changes`` are left out of its diff
    and of its update body (:mod:`reconciler.engine.ignore`). ``window``: the sync windows' state,
    shown with the plan (apply decides on it again when it writes: :func:`reconciler.engine.windows.gate`).
    """
    actions: list[Action] = []
    held: list[Suspended] = []
    unmanaged: list[str] = []
    orphans: list[str] = []
    errors: list[str] = []
    warnings: list[str] = []
    if (prune or destroy) and scope is None:
        errors.append("pruning needs an ownership scope: declare scope.namePrefix or scope.names in reconciler.yaml")
    live_by_name = {item.name: item for item in live}
    desired_names = {d.name for d in desired}
    declared = {n for d in desired for n in (d.name, *d.previous_names)}
    considered_desired, considered_live = desired, live
    watched: set[str] = declared
    removed: list[str] = []
    partial = selection is not None and selection.active
    if partial:
        assert selection is not None
        considered_desired = desired if selected is None else selected
        removed = [r.name for r in selection.removed() if r.name not in declared]
        watched = ({n for d in considered_desired for n in (d.name, *d.previous_names)} | set(selection.names)
                   | set(removed))
        considered_live = [item for item in live if item.name in watched]
    for p in pair(desired=considered_desired, live=considered_live, identities=identities):
        want, have = p.desired, p.live
        if want is not None and want.suspend:
            held.append(_suspended(want, have, by=p.by, destroy=destroy))
            continue
        if want is not None and have is None:
            if destroy:
                continue
            actions.append(Action(kind=ActionKind.create, name=want.name, changes=diffs.diff({}, want.comparable),
                                  body=dict(want.body), source=want.source, base_dir=want.base_dir,
                                  secret_roots=want.secret_roots))
            continue
        if want is None and have is not None:
            if scope is not None and scope.contains(have.name):
                if prune and not destroy:
                    actions.append(Action(kind=ActionKind.delete, name=have.name, id=have.id))
                elif not destroy:
                    orphans.append(have.name)
            else:
                unmanaged.append(have.name)
            continue
        assert want is not None and have is not None
        in_scope = scope is None or scope.contains(have.name)
        if p.by is MatchBy.name and not destroy:
            for old in want.previous_names:
                other = live_by_name.get(old)
                if other is not None and old not in desired_names and other.id != have.id:
                    errors.append(
                        f"{want.name}: previousNames says it was renamed from {old!r}, but both are live "
                        f"({old} [id {other.id}], {want.name} [id {have.id}]), so the rename cannot be carried out "
                        f"without losing one of them: delete the one you do not want (or drop {old!r} from "
                        "previousNames to manage only the new name)" + (f" ({want.source})" if want.source else ""))
        if destroy:
            if not in_scope:
                unmanaged.append(have.name)
            elif want.prevent_destroy:
                errors.append(f"{want.name}: preventDestroy is set, so the plan may not delete it"
                              + (f" ({want.source})" if want.source else ""))
            elif want.deletion_policy == "Orphan":
                orphans.append(have.name)
            else:
                actions.append(Action(kind=ActionKind.delete, name=have.name, id=have.id, source=want.source))
            continue
        # equal forms (the same exact bytes: engine.exact) have no differences: the usual case, told
        # without unpacking or walking either form
        same_form = want.exact is not None and want.exact == have.exact
        differences = () if same_form else diffs.diff(compare_view(want.comparable, have.comparable), want.comparable)
        if not differences and p.by is not MatchBy.previous_name:  # equal: what the steps below give, sooner
            actions.append(Action(kind=ActionKind.noop, name=want.name, id=have.id, source=want.source,
                                  base_dir=want.base_dir))
            continue
        found, ignored = ignoring.split(differences, want.ignore_changes)
        changes = tuple(c for c in found if not _unclearable(c))
        warnings.extend(f"{want.name}: {c.path} is set live ({json.dumps(c.old)}) but not in the manifest; "
                        "the API cannot clear a field, so it stays (set it explicitly to manage it)"
                        for c in found if _unclearable(c))
        if p.by is MatchBy.previous_name:
            kind = ActionKind.rename
        elif not changes:
            kind = ActionKind.noop
        elif not in_scope:
            kind = ActionKind.adopt
        else:
            kind = ActionKind.update
        if kind is not ActionKind.noop and scope is not None and not scope.contains(want.name):
            warnings.append(f"{want.name}: the manifest's name is outside the scope ({scope.describe()}); "
                            "after apply it will not be pruned or counted as owned")
        actions.append(Action(
            kind=kind, name=want.name, id=have.id,
            previous_name=have.name if kind is ActionKind.rename else None, changes=changes,
            body=ignoring.strip_body(want.body, want.ignore_changes, have.comparable) if kind is not ActionKind.noop
            else None,
            source=want.source, base_dir=want.base_dir,
            secret_roots=want.secret_roots if kind is not ActionKind.noop else (), ignored=ignored))
    # the guard counts against the WHOLE live scope, also for a selection
    guard_delete_fraction(actions, live=live, scope=scope, max_delete_fraction=max_delete_fraction, force=force,
                          errors=errors, warnings=warnings)
    if partial:
        assert selection is not None
        known = declared | set(manifest_names) | set(live_by_name)
        # a name that selects nothing is a mistake (a typo, the wrong directory): a plan that quietly
        # does nothing would pass for "no changes"
        errors.extend(f"--only {name}: no manifest declares it and no live definition has that name; check the "
                      "spelling (manifests match by metadata.name or spec.name)"
                      for name in sorted(selection.names - known))
        warnings.append(f"partial plan ({selection.describe()}): {len(considered_desired)} of {len(desired)} "
                        "manifest(s)" + (f" and {len(removed)} removed one(s)" if removed else "")
                        + "; other live definitions were not considered")
    actions.sort(key=lambda a: a.sort_key)
    held.sort(key=lambda s: (s.name, s.id or ""))
    return Plan(actions=tuple(actions), summary=Summary.of(actions, suspended=len(held)),
                unmanaged=tuple(sorted(unmanaged)),
                orphans=tuple(sorted(orphans)), errors=tuple(errors), warnings=tuple(sorted(warnings)),
                scope=scope, prune=prune, force=force, destroy=destroy,
                fingerprint=fingerprint(live=live, scope=scope, watched_names=watched), origin=origin,
                suspended=tuple(held), window=window)


def _suspended(want: Desired, have: Live | None, *, by: MatchBy, destroy: bool) -> Suspended:
    """What a suspended manifest's definition would get, for the plan to show; nothing is written."""
    if have is None:
        return Suspended(name=want.name, pending="noop" if destroy else "create", source=want.source)
    if destroy:
        return Suspended(name=want.name, id=have.id, pending="delete", source=want.source)
    found, _ = ignoring.split(diffs.diff(compare_view(want.comparable, have.comparable), want.comparable),
                              want.ignore_changes)
    changes = [c for c in found if not _unclearable(c)]
    pending = "rename" if by is MatchBy.previous_name else ("update" if changes else "noop")
    return Suspended(name=want.name, id=have.id, pending=pending, changes=len(changes), source=want.source)


# -- versioned JSON: the --output json document and the saved plan file are the same ------------

def _change_dict(change: diffs.Change) -> dict[str, Any]:
    return {"path": change.path, "op": change.op.value, "old": change.old, "new": change.new}


def content_digest(data: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` over a plan's JSON data, every key but ``digest`` itself, in a canonical form
    (sorted keys, no spaces, ASCII): the same for the data ``plan`` wrote and for that file read
    back, different as soon as any value was edited."""
    content = {key: value for key, value in data.items() if key != "digest"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return DIGEST_PREFIX + hashlib.sha256(text.encode("ascii")).hexdigest()


def check_digest(data: Mapping[str, Any]) -> None:
    """Refuse (``ValueError``) a saved plan whose content no longer matches what ``plan`` wrote.

    Apply shows a saved plan's changes and sends its bodies; an edited file could show one thing
    and send another, so it is not applied at all (as Terraform refuses an edited plan file). A
    digest detects edits and damage; it is not a signature: keep plan files where only the
    pipeline can write them."""
    written = data.get("digest")
    if not isinstance(written, str) or not written.startswith(DIGEST_PREFIX):
        raise ValueError(f"the plan has no digest (format_version {data.get('format_version')!r}, written by an "
                         "older reconciler), so whether it was edited cannot be checked; plans are saved with a "
                         "digest since format 1.2")
    if content_digest(data) != written:
        raise ValueError("the plan was changed after `reconciler plan` wrote it (its digest does not match its "
                         "content); a saved plan is applied exactly as it was planned or not at all")


def to_dict(plan: Plan, *, version: str = "") -> dict[str, Any]:
    """The plan as JSON data (schemas/plan.schema.json); keys in a stable order, ``digest`` last."""
    data = _content(plan, version=version)
    data["digest"] = content_digest(data)
    return data


def _content(plan: Plan, *, version: str) -> dict[str, Any]:
    s = plan.summary
    return {
        "format_version": FORMAT_VERSION,
        "reconciler_version": version,
        "applyable": plan.applyable,
        "errored": plan.errored,
        "has_changes": plan.has_changes,
        "summary": {"create": s.create, "update": s.update, "delete": s.delete, "adopt": s.adopt,
                    "rename": s.rename, "noop": s.noop, "ignored": s.ignored, "suspended": s.suspended,
                    "text": s.text},
        "options": {"prune": plan.prune, "force": plan.force, "destroy": plan.destroy},
        "scope": plan.scope.as_dict() if plan.scope else None,
        "errors": list(plan.errors),
        "warnings": list(plan.warnings),
        "actions": [{
            "kind": a.kind.value, "name": a.name, "id": a.id, "previous_name": a.previous_name,
            "source": a.source, "changes": [_change_dict(c) for c in a.changes],
            "body": dict(a.body) if a.body is not None else None, "base_dir": a.base_dir,
            "secret_roots": list(a.secret_roots), "ignored": [_change_dict(c) for c in a.ignored],
            "references": [{"path": r.path, "kind": r.kind, "name": r.name, "id": r.id} for r in a.references],
        } for a in plan.actions],
        "unmanaged": list(plan.unmanaged),
        "orphans": list(plan.orphans),
        "fingerprint": {"digest": plan.fingerprint.digest,
                        "watched_names": list(plan.fingerprint.watched_names),
                        "objects": [{"id": i, "name": n, "hash": h} for i, n, h in plan.fingerprint.objects]},
        "target": None if plan.origin is None else {"name": plan.origin.name, "endpoint": plan.origin.endpoint,
                                                    "local_db": plan.origin.local_db},
        "policy": {"rules_digest": plan.policy_digest, "verdicts": [v.as_dict() for v in plan.policy]},
        "suspended": [{"name": h.name, "id": h.id, "pending": h.pending, "changes": h.changes, "source": h.source}
                      for h in plan.suspended],
        "sync_window": plan.window.as_dict() if plan.window is not None else None,
    }


def from_dict(data: Mapping[str, Any]) -> Plan:
    """A plan read back from its JSON form (a saved plan file), refused when edited (:func:`check_digest`)."""
    if str(data.get("format_version", "")).split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ValueError(f"plan format_version {data.get('format_version')!r} is not supported "
                         f"(this reconciler reads {FORMAT_VERSION})")
    check_digest(data)
    scope_raw = data.get("scope")
    scope = Scope(name_prefix=scope_raw.get("name_prefix"), names=frozenset(scope_raw.get("names") or ())) \
        if scope_raw else None
    actions = tuple(Action(
        kind=ActionKind(a["kind"]), name=a["name"], id=a.get("id"), previous_name=a.get("previous_name"),
        changes=tuple(diffs.Change(c["path"], diffs.Op(c["op"]), c.get("old"), c.get("new")) for c in a["changes"]),
        body=a.get("body"), source=a.get("source"), base_dir=a.get("base_dir"),
        secret_roots=tuple(a.get("secret_roots") or ()),
        references=tuple(Resolved(path=r["path"], kind=r["kind"], name=r["name"], id=r["id"])
                         for r in a.get("references") or ()),
        ignored=tuple(diffs.Change(c["path"], diffs.Op(c["op"]), c.get("old"), c.get("new"))
                      for c in a.get("ignored") or ()),
    ) for a in data["actions"])
    held = tuple(Suspended(name=h["name"], id=h.get("id"), pending=h.get("pending", "noop"),
                           changes=int(h.get("changes", 0)), source=h.get("source"))
                 for h in data.get("suspended") or ())
    window_raw = data.get("sync_window")
    fp = data.get("fingerprint") or {}
    options = data.get("options") or {}
    origin_raw = data.get("target")  # "target" in the file format; absent in 1.0 files
    origin = PlanOrigin(name=origin_raw.get("name"), endpoint=origin_raw.get("endpoint"),
                        local_db=origin_raw.get("local_db")) if origin_raw else None
    return Plan(
        origin=origin, policy=tuple(Verdict.from_dict(v) for v in (data.get("policy") or {}).get("verdicts", ())),
        policy_digest=(data.get("policy") or {}).get("rules_digest"),
        suspended=held, window=WindowState.from_dict(window_raw) if window_raw else None,
        actions=actions, summary=Summary.of(actions, suspended=len(held)), unmanaged=tuple(data.get("unmanaged", ())),
        orphans=tuple(data.get("orphans", ())), errors=tuple(data.get("errors", ())),
        warnings=tuple(data.get("warnings", ())), scope=scope, prune=bool(options.get("prune")),
        force=bool(options.get("force")), destroy=bool(options.get("destroy")),
        fingerprint=Fingerprint(digest=fp.get("digest", ""),
                                objects=tuple((o["id"], o["name"], o["hash"]) for o in fp.get("objects", ())),
                                watched_names=tuple(fp.get("watched_names", ()))))
