"""The operator's own ownership scope: which definition names it may create, adopt, change or delete. Pure.

Why: the API has no labels, so a live definition's owner is read off its name (the same
:class:`~reconciler.specs.scope.Scope` a project declares in ``reconciler.yaml``). Without a scope
of its own the operator adopts any live definition a resource names, including one that a CLI
project manages, and the two then undo each other's changes at every apply and resync. With
disjoint scopes (``scope.namePrefix: "team-"`` in the project, ``--scope-prefix k8s-`` for the
operator) each definition has exactly one writer: a resource naming a definition outside the
operator's scope is reported as a ``Conflict`` and nothing is read or written for it.

A resource's names are its ``metadata.name`` (the definition it creates or adopts) and its
``spec.previousNames`` (definitions it would rename into itself): all of them must be in scope.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.contract import keys
from reconciler.operator.status import Reconciliation, Result
from reconciler.specs.model import Manifest
from reconciler.specs.scope import Scope

__all__ = ["conflict", "describe", "outside_scope"]


def describe(scope: Scope | None) -> str:
    """For the operator's start-up log line."""
    if scope is None:
        return "no ownership scope (every definition a resource names may be adopted)"
    return f"ownership scope: {scope.describe()}"


def outside_scope(name: str, previous_names: Sequence[str], scope: Scope | None) -> str | None:
    """Why this resource's definition belongs to another scope (the ``Conflict`` message), or None.

    ``None`` scope: the operator owns every name (the behaviour before scopes existed)."""
    if scope is None:
        return None
    if not scope.contains(name):
        return (f"definition {name!r} is outside this operator's ownership scope ({scope.describe()}), so "
                "another scope (a `reconciler apply` project) may manage it: nothing was read or written. "
                f"Rename the {keys.kind()} into the operator's scope, or manage the definition from its project")
    foreign = [old for old in previous_names if not scope.contains(old)]
    if foreign:
        names = ", ".join(repr(old) for old in foreign)
        return (f"spec.previousNames {names} outside this operator's ownership scope ({scope.describe()}): "
                "renaming it would take a definition another scope manages; nothing was read or written. "
                "Remove it from previousNames, or rename the definition in its project first")
    return None


def conflict(manifest: Manifest, scope: Scope | None) -> Reconciliation | None:
    """The ``Conflict`` outcome to report instead of reconciling a valid resource, or None. Checked
    before any API call: a resource of another scope costs no request and is never retried (a spec
    edit, or the operator restarted with another scope, brings it back)."""
    message = outside_scope(manifest.definition_name, manifest.spec.previousNames, scope)
    return None if message is None else Reconciliation(result=Result.conflict, message=message)
