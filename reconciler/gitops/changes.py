"""What git says changed since a ref, for ``plan --changed-since REF``: the manifests in files
changed between the merge base of ``REF`` and ``HEAD`` and the working tree (untracked files
included), manifests whose overlay changed, all of them when ``reconciler.yaml`` changed; and the
definitions whose manifest was *removed* in that range (a deleted file, a document taken out of a
file, a ``metadata.name`` changed without ``previousNames``).

The result is a :class:`~reconciler.engine.select.ChangedSet`; what it selects is decided by the
pure :mod:`reconciler.engine.select`. This module runs ``git``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.contract import keys
from reconciler.engine.select import ChangedSet, Removed, SelectionError
from reconciler.engine.types import Desired
from reconciler.specs.environments import Scalar, substitute
from reconciler.specs.load import PROJECT_CONFIG_NAMES, load_bytes

__all__ = ["changed_since"]

def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
        if not isinstance(doc.data, dict) or doc.data.get("kind") != keys.kind():
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
