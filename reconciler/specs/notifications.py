"""The notification channels' file references in ``reconciler.yaml`` (``urlFrom: {file: ...}``,
``secretFrom: {file: ...}``), checked where the config is checked, located at the field.

Why: a channel whose URL cannot be read is skipped when a notification is sent (a notification
never fails a command), so a reference that leaves the project, names a directory or a FIFO, a
file over 64 KiB or one this user cannot read would otherwise only show as a log line when it is
too late. The same rules as the reader (:func:`reconciler.api.secrets.resolve_ref`): inside the
project or ``secrets.allowedDirs``, symlinks followed; a regular file of at most 64 KiB. A file
that is not there at all is a warning: it may be mounted where the commands run (CI, a pod).

I/O: resolves paths and reads file status, never a file's contents.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.specs import secrets
from reconciler.specs.files import SECRET_FILE_BYTES

if TYPE_CHECKING:
    from reconciler.contract.issues import Issue, Located

__all__ = ["notification_file_issues"]

_ALLOW_HINT = "keep it inside the project, or allow its directory with `secrets: {allowedDirs: [DIR]}`"


def _file_problem(file: str, *, base_dir: Path, roots: tuple[str, ...]) -> tuple[str, str, bool] | None:
    """``(message, hint, is_error)`` for a reference that cannot be read, else None."""
    escape = secrets.escape_problem(file, base_dir=base_dir, roots=roots)
    if escape is not None:
        return f"secret file {file!r} is outside the project: {escape[1]}", _ALLOW_HINT, True
    path = secrets.secret_path(file, base_dir=base_dir)
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return (f"secret file {str(path)!r} does not exist (now): the channel is skipped while it is missing",
                "create it, or mount it where the commands run", False)
    except OSError as exc:
        return f"cannot look at secret file {str(path)!r}: {exc.strerror or exc}", "check the path", True
    if not stat.S_ISREG(found.st_mode):
        return (f"secret file {str(path)!r} is not a regular file", "name a file holding the value as text", True)
    if found.st_size > SECRET_FILE_BYTES:
        return (f"secret file {str(path)!r} is {found.st_size} bytes, over the {SECRET_FILE_BYTES}-byte limit",
                "a URL or a key is a few hundred bytes: check that the path names the right file", True)
    if not os.access(path, os.R_OK):
        return (f"secret file {str(path)!r} cannot be read by this user (permission denied)",
                "make it readable by the user that runs reconciler (e.g. chmod 0400 and the right owner)", True)
    return None


def notification_file_issues(doc: Located) -> list[Issue]:
    """Located problems of a schema-valid project config's notification file references."""
    from reconciler.contract.issues import issue_at

    data = doc.data if isinstance(doc.data, dict) else {}
    channels = data.get("notifications") or ()
    if not channels:
        return []
    allowed = (data.get("secrets") or {}).get("allowedDirs") or ()
    roots = secrets.secret_roots(config_path=doc.file, allowed_dirs=tuple(allowed))
    base_dir = Path(doc.file).parent
    issues: list[Issue] = []
    for i, channel in enumerate(channels):
        for kind in ("webhook", "apprise"):
            for key in ("urlFrom", "secretFrom"):
                ref = (channel.get(kind) or {}).get(key)
                if not isinstance(ref, dict) or not isinstance(ref.get("file"), str):
                    continue
                problem = _file_problem(ref["file"], base_dir=base_dir, roots=roots)
                if problem is not None:
                    message, hint, error = problem
                    issues.append(issue_at(doc, ("notifications", i, kind, key, "file"), message, hint,
                                           severity="error" if error else "warning"))
    return issues
