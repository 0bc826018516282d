"""Where a secret file may live: inside the project, or in a directory the project config allows.

Why: a manifest is written by whoever opens a pull request, and apply sends the file an
``apiKeyFrom: {file: ...}`` names as the prediction server's key to the manifest's ``hostName``.
A reference that leaves the project (``../../etc/passwd``, an absolute path, a symlink pointing
out) would send any file the CI runner can read to a host of the author's choosing. So a
reference must resolve, symlinks followed, into one of the *secret roots*:

* the project root: the directory of ``reconciler.yaml``, or, when there is none, the manifest
  roots named on the command line (a directory, or the directory of a file);
* each directory listed in ``reconciler.yaml`` under ``secrets: {allowedDirs: [...]}`` (relative
  to that file), for secrets mounted elsewhere (``/run/secrets``).

Validation reports a reference that escapes, located at the field; apply checks again right
before it reads the file (a saved plan carries the roots it was made with). With no roots known
(an API body, a manifest built in memory) the manifest's own directory is the only root, and
with no directory either, no file reference resolves.

I/O: resolves paths (reads symlinks), never reads a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["escape_problem", "manifest_roots", "secret_path", "secret_roots"]


def manifest_roots(paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The roots of the manifests named on the command line: each directory, or a file's directory."""
    out: list[str] = []
    for raw in paths:
        path = Path(raw)
        root = str((path if path.is_dir() else path.parent).resolve())
        if root not in out:
            out.append(root)
    return tuple(out)


def secret_roots(*, config_path: str | os.PathLike[str] | None, allowed_dirs: Sequence[str] = (),
                 paths: Iterable[str | os.PathLike[str]] = ()) -> tuple[str, ...]:
    """The directories secret files may resolve into, absolute and resolved (see the module doc)."""
    if config_path is None:
        return manifest_roots(paths)
    base = Path(config_path).resolve().parent
    out = [str(base)]
    for raw in allowed_dirs:
        allowed = Path(raw).expanduser()
        resolved = str((allowed if allowed.is_absolute() else base / allowed).resolve())
        if resolved not in out:
            out.append(resolved)
    return tuple(out)


def secret_path(file: str, *, base_dir: str | os.PathLike[str] | None) -> Path:
    """The file a reference names: relative to the manifest's directory, as written otherwise."""
    path = Path(file)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def escape_problem(file: str, *, base_dir: str | os.PathLike[str] | None,
                   roots: Sequence[str | os.PathLike[str]]) -> tuple[Path, str] | None:
    """``(resolved path, why)`` when the reference resolves outside every root; None when inside.

    ``roots`` empty: the manifest's directory (``base_dir``) is the only root.
    """
    allowed = [Path(r) for r in roots] or ([Path(base_dir)] if base_dir is not None else [])
    if not allowed:
        return Path(file), "no project directory is known here, so no secret file can be read"
    target = secret_path(file, base_dir=base_dir)
    resolved = Path(os.path.realpath(target))
    for root in allowed:
        if resolved.is_relative_to(Path(os.path.realpath(root))):
            return None
    shown = " or ".join(str(Path(os.path.realpath(r))) for r in allowed)
    through = " (through a symbolic link)" if ".." not in Path(file).parts and not Path(file).is_absolute() else ""
    return resolved, f"it resolves to {resolved}{through}, outside {shown}"
