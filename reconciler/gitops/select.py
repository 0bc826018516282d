"""Selective runs: ``--selector label=value``, ``--only NAME`` and ``plan --changed-since REF``.

Why: in a large repository a pull request touches a few manifests, and a team wants to plan or
apply only its own. A selection narrows the run to some manifests *and* to the live definitions
those manifests name, so that a manifest left out is never mistaken for a removed one: nothing
outside the selection is updated, listed as an orphan or pruned.

* ``--selector KEY=VALUE`` (repeatable, or comma-separated ``a=1,b=2``): manifests whose
  ``metadata.labels`` have every pair. ``KEY!=VALUE`` excludes.
* ``--only NAME`` (repeatable): manifests whose ``metadata.name`` or definition name is ``NAME``.
  A name with no manifest still selects its live definition, so ``--only old --prune`` deletes it;
  a name that matches neither is an error (the plan is refused, exit 1).
* ``--changed-since REF``: manifests in files changed between the merge base of ``REF`` and
  ``HEAD`` and the working tree (untracked files included), manifests whose overlay changed, all
  of them when ``reconciler.yaml`` changed; and the definitions whose manifest was *removed* in
  that range (a deleted file, a document taken out of a file, a ``metadata.name`` changed without
  ``previousNames``). Those are deletions: listed as "in scope without a manifest", deleted with
  ``--prune``, like any removed manifest.

The filters combine with AND. :func:`select_documents` and :func:`build_selected_plan` are pure;
:func:`changed_since` runs ``git``.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.api.payload import Desired, Live
from reconciler.engine.plan import Plan, build_plan, fingerprint, guard_delete_fraction
from reconciler.specs.config import Scope
from reconciler.specs.environments import Scalar, substitute
from reconciler.specs.load import PROJECT_CONFIG_NAMES, LoadedDocument, load_bytes

__all__ = ["ChangedSet", "Removed", "Selection", "SelectionError", "build_selected_plan", "changed_since",
           "parse_selectors", "select_documents"]

MANIFEST_KIND = "BatchPredictionJobDefinition"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class SelectionError(ValueError):
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


def select_documents(docs: Sequence[LoadedDocument], desired: Sequence[Desired],
                     selection: Selection) -> list[Desired]:
    """The desired definitions of the selected manifests (``docs`` and ``desired`` run in parallel)."""
    return [want for doc, want in zip(docs, desired, strict=True) if selection.matches(doc, want)]


def build_selected_plan(*, desired: Sequence[Desired], selected: Sequence[Desired], live: Sequence[Live],
                        selection: Selection, scope: Scope | None, prune: bool = False, force: bool = False,
                        destroy: bool = False, max_delete_fraction: float = 0.5,
                        manifest_names: Iterable[str] = ()) -> Plan:
    """The plan of the selected manifests against the live definitions they (or a removal) name. Pure.

    ``desired`` is every manifest of the run: a removal that some other manifest still declares
    (moved to another file) is no removal. The delete guard and the saved plan's fingerprint are
    computed against the whole live state, as for a full plan. ``manifest_names`` are the
    manifests' ``metadata.name`` values, which ``--only`` also matches.
    """
    declared = {n for d in desired for n in (d.name, *d.previous_names)}
    removed = [r for r in selection.removed() if r.name not in declared]
    keep = {n for d in selected for n in (d.name, *d.previous_names)} | set(selection.names) | {r.name for r in removed}
    partial = build_plan(desired=selected, live=[item for item in live if item.name in keep], scope=scope,
                         prune=prune, force=force, destroy=destroy, max_delete_fraction=1.0)
    errors, warnings = list(partial.errors), list(partial.warnings)
    # the guard counts against the WHOLE live scope, not only the selection
    guard_delete_fraction(partial.actions, live=live, scope=scope, max_delete_fraction=max_delete_fraction,
                          force=force, errors=errors, warnings=warnings)
    known = declared | set(manifest_names) | {item.name for item in live}
    # a name that selects nothing is a mistake (a typo, the wrong directory): a plan that quietly
    # does nothing would pass for "no changes"
    errors.extend(f"--only {name}: no manifest declares it and no live definition has that name; check the "
                  "spelling (manifests match by metadata.name or spec.name)" for name in sorted(selection.names - known))
    warnings.append(f"partial plan ({selection.describe()}): {len(selected)} of {len(desired)} manifest(s)"
                    + (f" and {len(removed)} removed one(s)" if removed else "")
                    + "; other live definitions were not considered")
    return dataclasses.replace(partial, errors=tuple(errors), warnings=tuple(sorted(warnings)),
                               fingerprint=fingerprint(live=live, scope=scope, watched_names=keep))


# -- git ------------------------------------------------------------------------------------------

def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise SelectionError("--changed-since needs git on PATH") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise SelectionError(f"git {' '.join(args)}: {detail}")
    return done.stdout


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _manifest_names(data: bytes, *, file: str, variables: Mapping[str, Scalar]) -> list[Removed]:
    docs, _errors = load_bytes(data, file=file)
    out = []
    for doc in docs:
        if not isinstance(doc.data, dict) or doc.data.get("kind") != MANIFEST_KIND:
            continue
        meta, spec = _mapping(doc.data.get("metadata")), _mapping(doc.data.get("spec"))
        raw = spec.get("name") or meta.get("name")
        if not isinstance(raw, str) or not raw:
            continue
        name, problems = substitute(raw, variables)
        if problems or not isinstance(name, str):
            continue
        labels = _mapping(meta.get("labels"))
        out.append(Removed(name=name, labels={str(k): str(v) for k, v in labels.items()}, source=file))
    return out


def changed_since(ref: str, *, paths: Sequence[Path], overlays_dir: Path | None = None,
                  config_file: Path | None = None, current: Sequence[Desired] = (),
                  variables: Mapping[str, Scalar] | None = None) -> ChangedSet:
    """What changed between the merge base of ``ref`` and ``HEAD`` and the working tree, under ``paths``.

    ``current`` are the manifests of the run: a name they still declare is not a removal.
    """
    roots = [p.resolve() for p in paths]
    start = roots[0] if roots and roots[0].is_dir() else (roots[0].parent if roots else Path.cwd())
    try:
        top = Path(_git(start, "rev-parse", "--show-toplevel").strip())
    except SelectionError as exc:
        raise SelectionError(f"--changed-since {ref}: {start} is not in a git repository ({exc})") from None
    try:
        base = _git(top, "merge-base", ref, "HEAD").strip()
    except SelectionError as exc:
        raise SelectionError(f"--changed-since {ref}: git cannot find a common ancestor of {ref!r} and HEAD "
                             f"({exc}); fetch the ref first (in GitHub Actions: actions/checkout with "
                             "fetch-depth: 0)") from None
    listing = _git(top, "-c", "core.quotepath=off", "diff", "--name-status", "--no-renames", "-z", base, "--")
    fields = listing.split("\0")
    entries = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]
    untracked = _git(top, "-c", "core.quotepath=off", "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    entries += [("A", name) for name in untracked if name]
    overlay_root = overlays_dir.resolve() if overlays_dir is not None else None
    config_path = config_file.resolve() if config_file is not None else None
    files: set[str] = set()
    overlays: set[str] = set()
    config_changed = False
    old_names: list[Removed] = []
    for status, rel in entries:
        path = (top / rel).resolve()
        if not rel.endswith((".yaml", ".yml")):
            continue
        if config_path is not None and path == config_path:
            config_changed = True
            continue
        if overlay_root is not None and _under(path, [overlay_root]):
            overlays.add(path.stem)
            continue
        if not _under(path, roots) or path.name in PROJECT_CONFIG_NAMES:
            continue
        if status != "D":
            files.add(str(path))
        if status[:1] in ("M", "D", "T"):
            old = subprocess.run(["git", "show", f"{base}:{rel}"], cwd=top, capture_output=True, timeout=60,
                                 check=False)
            if old.returncode == 0:
                old_names.extend(_manifest_names(old.stdout, file=f"{rel}@{base[:12]}", variables=variables or {}))
    declared = {n for d in current for n in (d.name, *d.previous_names)}
    seen: set[str] = set()
    removed = []
    for item in old_names:
        if item.name not in declared and item.name not in seen:
            seen.add(item.name)
            removed.append(item)
    return ChangedSet(ref=ref, base=base, files=frozenset(files), overlay_names=frozenset(overlays),
                      config_changed=config_changed, removed=tuple(removed))


def selection_from_options(*, selector: Sequence[str] | None, only: Sequence[str] | None,
                           changed: ChangedSet | None = None) -> Selection:
    return Selection(labels=parse_selectors(selector or ()), names=frozenset(only or ()), changed=changed)



def selection_for(*, selector: Sequence[str] | None, only: Sequence[str] | None, changed_since_ref: str | None,
                  paths: Sequence[Path], config: Any, target_name: str | None, config_dir: Path | None,
                  desired: Sequence[Desired]) -> Selection | None:
    """The selection the command-line options ask for, or None for a full run.

    ``config`` is the :class:`~reconciler.specs.config.ProjectConfig`; the target's overlays
    directory and variables are needed to follow overlay changes and name removed manifests.
    """
    from reconciler.specs.environments import resolve_target

    if not selector and not only and changed_since_ref is None:
        return None
    for name in only or ():
        if not name.strip():
            raise SelectionError("--only needs a definition name, e.g. --only acme-churn-nightly")
    changed = None
    if changed_since_ref is not None:
        if not changed_since_ref.strip():
            raise SelectionError("--changed-since needs a git ref, e.g. --changed-since origin/main")
        target = resolve_target(config.targets, target_name) if target_name else None
        changed = changed_since(
            changed_since_ref, paths=paths,
            overlays_dir=target.overlays_dir(root=config_dir) if target is not None else None,
            config_file=Path(config.path) if getattr(config, "path", None) else None, current=desired,
            variables=target.variables if target is not None else None)
    return selection_from_options(selector=selector, only=only, changed=changed)


async def plan_against(client: Any, *, documents: Sequence[LoadedDocument], desired: Sequence[Desired],
                       selection: Selection, **options: Any) -> Plan:
    """List the live state once, then build the plan of the selection (pure)."""
    from reconciler.engine.apply import fetch_live

    live = await fetch_live(client)
    return build_selected_plan(desired=desired, selected=select_documents(documents, desired, selection),
                               live=live, selection=selection,
                               manifest_names=[str(_mapping(d.data.get("metadata")).get("name")) for d in documents],
                               **options)
