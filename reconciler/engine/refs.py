"""References by name resolved to ids, pure: a manifest's ``deploymentRef: {name: ...}`` (and
``credentialRef``/``dataStoreRef`` in intake and output settings) becomes the id of the one live
resource of that name, in the create/PATCH body and in the comparable form, before the diff; the
plan's actions then show the name and the id it resolved to (:class:`reconciler.engine.types.Resolved`).

The catalog (every resource of a kind as ``(id, name)``) is listed by :mod:`reconciler.api.refs`,
one list call per kind and run; a missing or ambiguous name is a plan error listing close matches.
``export --refs`` goes the other way (:func:`to_references`): an id becomes a reference where
its name is unique.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.contract.refs import ref_fields
from reconciler.display import printable
from reconciler.engine.plan import ActionKind, Plan
from reconciler.engine.types import Desired, Resolved

__all__ = ["Catalog", "ResolvedRun", "annotate", "kinds_wanted", "resolve_all", "to_references"]

Catalog = Mapping[str, Sequence[tuple[str, str]]]  # kind -> [(id, name)]
_JOB_KEYS_OUTSIDE = ("name", "enabled", "schedule")  # a body holds the job's fields at its top level

_WHAT = {"deployment": "deployment (by label)", "credential": "credential", "dataStore": "data store (by canonicalName)"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResolvedRun:
    """The manifests with every reference replaced by its id, what each resolved to (by
    definition name), and the names that did not resolve (plan errors)."""

    desired: tuple[Desired, ...]
    references: Mapping[str, tuple[Resolved, ...]]
    errors: tuple[str, ...] = ()


def kinds_wanted(desired: Sequence[Desired]) -> set[str]:
    """The kinds some manifest references (only those are listed)."""
    fields = ref_fields()
    keys = tuple(dict.fromkeys(f.ref for declared in fields.values() for f in declared))  # once each
    wanted: set[str] = set()
    for item in desired:
        if not item.may_hold(keys):  # decided without decoding the body
            continue
        for place, declared in fields.items():
            node = item.body if not place else item.body.get(place)
            if isinstance(node, Mapping):
                wanted.update(f.kind for f in declared if f.ref in node)
    return wanted


def _lookup(kind: str, name: str, catalog: Catalog) -> tuple[str | None, str | None]:
    """``(id, None)`` for a unique name, ``(None, why)`` otherwise (close matches listed)."""
    items = catalog.get(kind, ())
    ids = [rid for rid, rname in items if rname == name]
    if len(ids) == 1:
        return ids[0], None
    if ids:
        return None, (f"{len(ids)} {kind}s are named {name!r} ({', '.join(sorted(ids))}); a reference must name "
                      "exactly one: rename one of them, or use the id")
    names = sorted({rname for _, rname in items})
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    close += [n for n in names if n.casefold() == name.casefold() and n not in close]
    hint = (f"close matches: {', '.join(repr(c) for c in close)}" if close
            else f"the target has {len(names)} {kind}(s)" + (f": {', '.join(repr(n) for n in names[:10])}"
                                                             + (", ..." if len(names) > 10 else "") if names else ""))
    return None, f"no {_WHAT.get(kind, kind)} named {name!r}; {hint}"


def _substitute(job: dict[str, Any], catalog: Catalog, *, prefix: str) -> tuple[list[Resolved], list[str]]:
    """Replace every reference in ``job`` (in place) by its id; what resolved and what did not."""
    resolved: list[Resolved] = []
    problems: list[str] = []
    for place, declared in ref_fields().items():
        node = job if not place else job.get(place)
        if not isinstance(node, dict):
            continue
        for field in declared:
            if field.ref not in node:
                continue
            value = node.pop(field.ref)
            name = str(value.get("name")) if isinstance(value, Mapping) else str(value)
            path = ".".join(p for p in (prefix, place, field.ref) if p)
            rid, why = _lookup(field.kind, name, catalog)
            if rid is None:
                problems.append(f"{path}: {why}")
                # the plan is refused; the diff shows the id as unresolved rather than guessing one
                node[field.id] = f"(unresolved {field.ref} {name!r})"
                continue
            node[field.id] = rid
            resolved.append(Resolved(path=path, kind=field.kind, name=name, id=rid))
    return resolved, problems


def resolve_one(item: Desired, catalog: Catalog) -> tuple[Desired, tuple[Resolved, ...], list[str]]:
    """One manifest with its references replaced by ids, in its body and its comparable form."""
    if not kinds_wanted([item]):
        return item, (), []
    body = copy.deepcopy(dict(item.body))
    job = {k: v for k, v in body.items() if k not in _JOB_KEYS_OUTSIDE}
    resolved, problems = _substitute(job, catalog, prefix="batchPredictionJob")
    new_body = {k: v for k, v in body.items() if k in _JOB_KEYS_OUTSIDE}
    new_body.update(job)
    comparable = copy.deepcopy(dict(item.comparable))
    comparable_job = dict(comparable.get("batchPredictionJob") or {})
    _substitute(comparable_job, catalog, prefix="batchPredictionJob")
    comparable["batchPredictionJob"] = comparable_job
    where = f" ({item.source})" if item.source else ""
    errors = [printable(f"{item.name}: {problem}{where}") for problem in problems]
    return dataclasses.replace(item, body=new_body, comparable=comparable), tuple(resolved), errors


def resolve_all(desired: Sequence[Desired], catalog: Catalog) -> ResolvedRun:
    """Every manifest resolved against one catalog (the same listing for all of them)."""
    out: list[Desired] = []
    references: dict[str, tuple[Resolved, ...]] = {}
    errors: list[str] = []
    for item in desired:
        new, resolved, problems = resolve_one(item, catalog)
        out.append(new)
        if resolved:
            references[item.name] = resolved
        errors.extend(problems)
    return ResolvedRun(desired=tuple(out), references=references, errors=tuple(errors))


def annotate(plan: Plan, run: ResolvedRun) -> Plan:
    """The plan with each action's resolved references, and the names that did not resolve as
    errors (the plan is then refused: nothing is applied)."""
    if not run.references and not run.errors:
        return plan
    actions = tuple(a if a.kind is ActionKind.delete or a.name not in run.references
                    else dataclasses.replace(a, references=run.references[a.name]) for a in plan.actions)
    return dataclasses.replace(plan, actions=actions, errors=plan.errors + run.errors)


def to_references(job: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    """A live job spec with each id whose name is unique in ``catalog`` written as a reference
    (``export --refs``); other ids stay as they are."""
    out = copy.deepcopy(dict(job))
    for place, declared in ref_fields().items():
        node = out if not place else out.get(place)
        if not isinstance(node, dict):
            continue
        for field in declared:
            rid = node.get(field.id)
            if not isinstance(rid, str):
                continue
            names = [rname for iid, rname in catalog.get(field.kind, ()) if iid == rid]
            if len(names) != 1 or sum(1 for _, rname in catalog.get(field.kind, ()) if rname == names[0]) != 1:
                continue
            items = list(node.items())
            index = [k for k, _ in items].index(field.id)
            items[index] = (field.ref, {"name": names[0]})
            node.clear()
            node.update(items)
    return out
