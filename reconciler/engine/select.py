"""Selective runs, the pure part: ``--selector label=value``, ``--only NAME`` and the removals
``--changed-since REF`` found (what git says changed is :mod:`reconciler.gitops.changes`).

Why: in a large repository a pull request touches a few manifests, and a team wants to plan or
apply only its own. A selection narrows the run to some manifests *and* to the live definitions
those manifests name, so that a manifest left out is never mistaken for a removed one: nothing
outside the selection is updated, listed as an orphan or pruned. The plan of a selection is built
by :func:`reconciler.engine.plan.build_plan` like any other (one function, every guard once).

* ``--selector KEY=VALUE`` (repeatable, or comma-separated ``a=1,b=2``): manifests whose
  ``metadata.labels`` have every pair. ``KEY!=VALUE`` excludes.
* ``--only NAME`` (repeatable): manifests whose ``metadata.name`` or definition name is ``NAME``.
  A name with no manifest still selects its live definition, so ``--only old --prune`` deletes it;
  a name that matches neither is an error (the plan is refused, exit 1).
* removals (``--changed-since``): definitions whose manifest was removed in the range; they are
  deletions, listed as "in scope without a manifest", deleted with ``--prune``.

The filters combine with AND.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.engine.types import Desired
from reconciler.errors import UsageError

if TYPE_CHECKING:  # a document is only read here (its data and file): the loader is not imported
    from reconciler.specs.load import LoadedDocument

__all__ = ["ChangedSet", "Removed", "Selection", "SelectionError", "parse_selectors", "select_documents",
           "selection_from_options"]


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class SelectionError(UsageError, ValueError):
    """A selector or ref the user gave cannot be used; the message says why and what to write."""


@dataclass(frozen=True, kw_only=True)
class Removed:
    """A definition whose manifest was removed in the ``--changed-since`` range."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # path@ref, for messages


@dataclass(frozen=True, kw_only=True)
class ChangedSet:
    """What ``git`` says changed since the base: files (absolute paths), overlay names, removals."""

    ref: str
    base: str
    files: frozenset[str] = frozenset()
    overlay_names: frozenset[str] = frozenset()
    config_changed: bool = False
    removed: tuple[Removed, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Selection:
    labels: tuple[tuple[str, str, bool], ...] = ()  # (key, value, equal)
    names: frozenset[str] = frozenset()
    changed: ChangedSet | None = None

    @property
    def active(self) -> bool:
        return bool(self.labels or self.names or self.changed is not None)

    def describe(self) -> str:
        parts = [f"--selector {k}{'=' if eq else '!='}{v}" for k, v, eq in self.labels]
        parts += [f"--only {n}" for n in sorted(self.names)]
        if self.changed is not None:
            parts.append(f"--changed-since {self.changed.ref}")
        return " ".join(parts)

    def _labels_match(self, labels: Mapping[str, Any]) -> bool:
        return all((str(labels.get(k)) == v if k in labels else False) == eq for k, v, eq in self.labels)

    def matches(self, doc: LoadedDocument, desired: Desired) -> bool:
        meta = _mapping(doc.data.get("metadata"))
        if not self._labels_match(_mapping(meta.get("labels"))):
            return False
        if self.names and not ({meta.get("name"), desired.name} & self.names):
            return False
        if self.changed is not None and not self.changed.config_changed:
            in_changed_file = str(Path(doc.file).resolve()) in self.changed.files
            if not in_changed_file and meta.get("name") not in self.changed.overlay_names:
                return False
        return True

    def removed(self) -> list[Removed]:
        """The removals that pass the label and name filters."""
        if self.changed is None:
            return []
        return [r for r in self.changed.removed
                if self._labels_match(r.labels) and (not self.names or r.name in self.names)]


def parse_selectors(values: Iterable[str]) -> tuple[tuple[str, str, bool], ...]:
    """``["team=growth", "tier!=batch,env=prod"]`` as ``(key, value, equal)`` triples."""
    out: list[tuple[str, str, bool]] = []
    for value in values:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            negate = "!=" in part
            key, sep, wanted = part.partition("!=" if negate else "=")
            key, wanted = key.strip(), wanted.strip()
            if not sep or not key or not wanted or "=" in wanted:
                raise SelectionError(f"--selector {part!r}: expected LABEL=VALUE or LABEL!=VALUE, "
                                     "e.g. --selector team=growth (several: team=growth,tier=nightly)")
            out.append((key, wanted, not negate))
    return tuple(out)


def selection_from_options(*, selector: Sequence[str] | None, only: Sequence[str] | None,
                           changed: ChangedSet | None = None) -> Selection:
    """The selection the options ask for (it may be inactive: a full run)."""
    for name in only or ():
        if not name.strip():
            raise SelectionError("--only needs a definition name, e.g. --only acme-churn-nightly")
    return Selection(labels=parse_selectors(selector or ()), names=frozenset(only or ()), changed=changed)


def select_documents(docs: Sequence[LoadedDocument], desired: Sequence[Desired],
                     selection: Selection) -> list[Desired]:
    """The desired definitions of the selected manifests (``docs`` and ``desired`` run in parallel)."""
    return [want for doc, want in zip(docs, desired, strict=True) if selection.matches(doc, want)]
