"""Secret references (``apiKeyFrom``/``datarobotKeyFrom``) resolved into the values they point at.

I/O: reads the environment or a secret file. Called by apply right before a request is sent
(never while planning); the result is never logged, stored or returned to a caller that prints.
A file must resolve inside the project (the directory of reconciler.yaml, else the manifests'
roots) or a directory ``secrets.allowedDirs`` names: :mod:`reconciler.specs.secrets`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.engine.normalize import SECRET_REFS
from reconciler.errors import SecretError  # raised here; re-exported for callers
from reconciler.specs import secrets
from reconciler.specs.files import SECRET_FILE_BYTES, read_limited

__all__ = ["SecretError", "resolve_ref", "resolve_secrets", "resolver"]


def resolve_secrets(body: Mapping[str, Any], *, base_dir: str | None = None,
                    environ: Mapping[str, str] | None = None, roots: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of ``body`` with ``apiKeyFrom``/``datarobotKeyFrom`` replaced by the values they point at.

    A file reference must resolve (symlinks followed) inside ``roots`` (the manifest's directory
    when empty; see :mod:`reconciler.specs.secrets`) and be a regular file of at most 64 KiB.
    I/O: reads the environment or a file. Called by apply right before sending; the result is
    never logged, stored or returned to a caller that prints.
    """
    out = dict(body)
    instance = out.get("predictionInstance")
    if not isinstance(instance, dict) or not any(key in instance for key in SECRET_REFS):
        return out
    env = os.environ if environ is None else environ
    resolved = {k: v for k, v in instance.items() if k not in SECRET_REFS}
    for ref_key, api_key in SECRET_REFS.items():
        ref = instance.get(ref_key)
        if not isinstance(ref, dict):
            continue
        if "env" in ref:
            value = env.get(ref["env"])
            if not value:
                raise SecretError(f"predictionInstance.{ref_key}: environment variable {ref['env']} is not set")
        else:
            value = _read_secret_file(str(ref["file"]), ref_key=ref_key, base_dir=base_dir, roots=roots)
        resolved[api_key] = value
    out["predictionInstance"] = resolved
    return out


def resolve_ref(ref: Mapping[str, Any], *, where: str, base_dir: str | None, roots: tuple[str, ...],
                environ: Mapping[str, str] | None = None) -> str:
    """The value a secret reference (``{env: NAME}`` or ``{file: path}``) points at, read as
    :func:`resolve_secrets` reads them; ``where`` names the field in messages."""
    if "env" in ref:
        value = (os.environ if environ is None else environ).get(str(ref["env"]))
        if not value:
            raise SecretError(f"{where}: environment variable {ref['env']} is not set")
        return value
    return _read_secret_file(str(ref["file"]), ref_key="", base_dir=base_dir, roots=roots, where=where)


def _read_secret_file(file: str, *, ref_key: str, base_dir: str | None, roots: tuple[str, ...],
                      where: str | None = None) -> str:
    where = where or f"predictionInstance.{ref_key}"
    escape = secrets.escape_problem(file, base_dir=base_dir, roots=roots)
    if escape is not None:
        raise SecretError(f"{where}: secret file {file!r} is not read: {escape[1]} (allow its directory in "
                          "reconciler.yaml with `secrets: {allowedDirs: [DIR]}`)")
    path = secrets.secret_path(file, base_dir=base_dir)
    try:
        # the path checked above, symlinks resolved: a link swapped in since would need its own check
        raw = read_limited(os.path.realpath(path), limit=SECRET_FILE_BYTES, what="secret file")
    except OSError as exc:
        raise SecretError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretError(f"{where}: {path} is not UTF-8 text; a secret file holds the key as text") from None


def resolver(environ: Mapping[str, str] | None = None) -> Callable[..., dict[str, Any]]:
    """The secret resolver apply takes (:class:`reconciler.engine.apply.SecretResolver`), reading
    ``environ`` (default: the process environment) and the project's secret files."""

    def resolve(body: Mapping[str, Any], *, base_dir: str | None, roots: tuple[str, ...]) -> dict[str, Any]:
        return resolve_secrets(body, base_dir=base_dir, environ=environ, roots=roots)

    return resolve
